"""Low-cost gating: read a frame only when something moved in the lane's region (``MotionGate``),
and look for far plates at full resolution only where that can still find one (``FarLook``).

An empty lane costs the reader a coarse and a full-resolution detector pass per frame (~100-200 ms on
2 cores); a parked truck's plate does not change between frames either. Comparing a small grey
thumbnail of the region with the last one read costs well under a millisecond, so a lane can keep
its camera's frame rate and spend the reader only on frames that can tell it something new.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from edge.recognition.ocr import ensure_bgr


class MotionGate:
    """``should_read(frame)`` is True when the region changed since the last frame read, or when
    ``max_idle_s`` passed without a read (so a scene that changed too slowly is still looked at).

    ``threshold`` is the fraction of thumbnail pixels whose grey level moved by more than
    ``pixel_delta``: sensor noise moves a few pixels by a few levels, a vehicle moves many by a lot.
    Not thread-safe: one gate per camera.
    """

    def __init__(
        self,
        roi: tuple[int, int, int, int] | None = None,
        threshold: float = 0.01,
        pixel_delta: int = 18,
        max_idle_s: float = 2.0,
        thumb_width: int = 160,
    ) -> None:
        self.roi = roi
        self.threshold = threshold
        self.pixel_delta = pixel_delta
        self.max_idle_s = max_idle_s
        self.thumb_width = thumb_width
        self._last: np.ndarray | None = None
        self._last_read = float("-inf")

    def _thumb(self, frame: np.ndarray) -> np.ndarray:
        img = ensure_bgr(frame)
        if self.roi is not None:
            x, y, w, h = self.roi
            img = img[max(0, y) : max(0, y) + h, max(0, x) : max(0, x) + w]
            if img.size == 0:
                raise ValueError(f"ROI {self.roi} leaves nothing of a {frame.shape[1]}x{frame.shape[0]} frame")
        h, w = img.shape[:2]
        tw = min(self.thumb_width, w)
        th = max(1, round(h * tw / w))
        small = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return cv2.GaussianBlur(grey, (3, 3), 0)

    def motion(self, frame: np.ndarray) -> float:
        """Fraction of the region that changed since the last frame read (1.0 for the first)."""
        thumb = self._thumb(frame)
        if self._last is None or self._last.shape != thumb.shape:
            return 1.0
        diff = cv2.absdiff(thumb, self._last)
        return float(np.count_nonzero(diff > self.pixel_delta)) / diff.size

    def should_read(self, frame: np.ndarray, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        thumb = self._thumb(frame)
        if self._last is None or self._last.shape != thumb.shape:
            changed = True
        else:
            diff = cv2.absdiff(thumb, self._last)
            changed = bool(np.count_nonzero(diff > self.pixel_delta) / diff.size >= self.threshold)
        if changed or now - self._last_read >= self.max_idle_s:
            self._last = thumb
            self._last_read = now
            return True
        return False


class FarLook:
    """Whether a lane camera's next frame may have the reader's look for far plates: a pass at full
    resolution wherever the coarse pass found no convincing plate (``PlateReader.read(far=...)``).

    That look is most of a lane's reading time, and where it found nothing, the next frames show
    nearly the same picture: a vehicle leaving with its plate out of view, one whose plate is hidden,
    a scene the motion gate let through. An approaching plate grows into the coarse pass's reach
    anyway. So after a far look that read nothing, the next ``rest`` frames are read coarse only;
    anything read ends the rest. On the synthetic lane (60 s, 5 vehicles, 4 frames a second,
    motion gate on), ``rest=2`` cut the reader's time by 23% (16.5 -> 12.7 s), and the same vehicles
    were read, each first right in the same frame. ``rest=0`` looks far on every frame.
    Not thread-safe: one per camera.
    """

    def __init__(self, rest: int = 2) -> None:
        if rest < 0:
            raise ValueError(f"rest must be >= 0 frames, got {rest}")
        self.rest = rest
        self._left = 0

    def allowed(self) -> bool:
        return self._left == 0

    def seen(self, read: bool) -> None:
        """After each frame read: whether it gave anything (a whole plate, a container code...)."""
        if read:
            self._left = 0
        elif self._left:
            self._left -= 1
        else:
            self._left = self.rest
