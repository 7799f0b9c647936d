"""The capture loop every camera shares: one thread, one newest-frame slot, reconnect with backoff.

Backends only know how to open a stream and read the next picture from it (:class:`Stream`); what
to do when that fails, when a camera freezes, which frame a consumer gets and what the lane reports
about the camera is decided here, once, so that an RTSP camera and a USB camera behave alike.
"""

from __future__ import annotations

import abc
import collections
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from drivers.camera.base import CameraHealth, CameraState, Frame, FrameSource
from edge.config import redact_url
from edge.errors import CameraError

log = logging.getLogger(__name__)

Truth = tuple[dict[str, Any], ...]


class EndOfStream(CameraError):
    """The stream ended on purpose (a file without looping): don't reconnect."""


class Stream(abc.ABC):
    """One open connection to a camera; discarded and reopened whole when anything goes wrong."""

    live: bool = True
    """A camera's clock sets the pace; False for files and the simulator, which pace themselves and
    may legitimately wait longer than the stall timeout between frames."""

    @abc.abstractmethod
    def read(self) -> tuple[np.ndarray, float, Truth]:
        """Block for the next picture: ``(image, capture wall time, truth)``.

        Raises :class:`CameraError` naming the cause when the stream errs or ends; a backend must not
        block much longer than the stall timeout it was opened with.
        """

    @abc.abstractmethod
    def close(self) -> None: ...

    def interrupt(self) -> None:  # noqa: B027 - optional hook, most backends cannot
        """Unblock a ``read`` in progress from another thread, where the backend can (sockets)."""

    def info(self) -> dict[str, Any]:
        """Backend facts for health and probe (codec, nominal fps)."""
        return {}


Opener = Callable[[], Stream]


class CaptureSource(FrameSource):
    """A :class:`FrameSource` over a backend's ``open`` function.

    ``stall_timeout_s``: no frame for this long while connected is a frozen camera: it is reported
    as stalled and the connection is dropped and reopened. Reopening backs off exponentially from
    ``backoff_initial_s`` to ``backoff_max_s`` so a camera that is down isn't hammered.
    """

    def __init__(
        self,
        url: str,
        name: str,
        opener: Opener,
        *,
        stall_timeout_s: float = 5.0,
        open_timeout_s: float = 10.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        retry: bool = True,
    ) -> None:
        self.url = url
        self.name = name
        self.safe_url = redact_url(url)
        self.stall_timeout_s = stall_timeout_s
        self.open_timeout_s = open_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.retry = retry
        self._opener = opener
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream: Stream | None = None
        # Everything below is guarded by _cond.
        self._frame: Frame | None = None
        self._taken_seq = -1
        self._seq = -1
        self._frames = 0
        self._dropped = 0
        self._opens = 0
        self._phase = CameraState.CONNECTING
        self._last_error: str | None = None
        self._last_frame_mono: float | None = None
        self._times: collections.deque[float] = collections.deque(maxlen=120)
        self._size: tuple[int, int] = (0, 0)
        self._info: dict[str, Any] = {}
        self._ended = False
        self._dead = False

    # -- consumer side -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._dead = False
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()

    def latest(self, after_seq: int = -1, timeout: float = 1.0) -> Frame | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._frame is None or self._frame.seq <= after_seq:
                left = deadline - time.monotonic()
                if left <= 0 or self._ended or self._dead or self._stop.is_set():
                    return None
                self._cond.wait(left)
            frame = self._frame
            self._taken_seq = max(self._taken_seq, frame.seq)
            return frame

    def wait_frame(self, timeout: float | None = None, *, fail_fast: bool = False) -> Frame:
        """The newest frame, or a :class:`CameraError` naming why none came (for probes and startup).

        ``fail_fast``: give up at the first failed open instead of waiting out ``timeout`` while
        the source retries (a technician probing a URL wants the cause now).
        """
        limit = self.open_timeout_s + self.stall_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + limit
        with self._cond:
            while self._frame is None:
                left = deadline - time.monotonic()
                failed = fail_fast and self._phase is CameraState.FAILED
                if left <= 0 or failed or self._ended or self._dead or self._stop.is_set():
                    break
                self._cond.wait(left)
            frame = self._frame
            if frame is not None:
                self._taken_seq = max(self._taken_seq, frame.seq)
                return frame
            cause = self._last_error or f"no frame within {limit:.1f} s"
        raise CameraError(f"camera {self.name} ({self.safe_url}): {cause}")

    @property
    def ended(self) -> bool:
        """A non-looping file has played to its end."""
        return self._ended

    def health(self) -> CameraHealth:
        now = time.monotonic()
        with self._cond:
            age = None if self._last_frame_mono is None else now - self._last_frame_mono
            state = self._phase
            if state is CameraState.STREAMING and age is not None and age > self.stall_timeout_s:
                state = CameraState.STALLED
            fps = 0.0
            recent = [t for t in self._times if now - t <= 5.0][-31:]
            if len(recent) >= 3 and state is CameraState.STREAMING:
                # The median interval: a stream (re)opening delivers its probe buffer in a burst,
                # which a plain count would report as hundreds of fps.
                gaps = sorted(b - a for a, b in itertools.pairwise(recent))
                mid = gaps[len(gaps) // 2]
                fps = 1.0 / mid if mid > 0 else 0.0
            extra = dict(self._info)
            if self._ended:
                extra["ended"] = True
            return CameraHealth(
                name=self.name,
                url=self.safe_url,
                state=state,
                fps=round(fps, 2),
                width=self._size[0],
                height=self._size[1],
                frames=self._frames,
                dropped=self._dropped,
                reconnects=max(0, self._opens - 1),
                last_frame_age_s=None if age is None else round(age, 3),
                last_error=self._last_error,
                extra=extra,
            )

    def close(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.interrupt()
        with self._cond:
            self._dead = True
            self._cond.notify_all()
        t = self._thread
        if t is not None:
            t.join(timeout=self.stall_timeout_s + self.open_timeout_s + 2.0)
            if t.is_alive():
                log.warning("camera %s (%s): capture thread did not stop in time", self.name, self.safe_url)
        self._thread = None
        with self._cond:
            self._phase = CameraState.CLOSED

    # -- capture side --------------------------------------------------------------------------------

    def _set(self, **kw: Any) -> None:
        with self._cond:
            for k, v in kw.items():
                setattr(self, k, v)
            self._cond.notify_all()

    def _publish(self, image: np.ndarray, ts: float, truth: Truth) -> None:
        now = time.monotonic()
        with self._cond:
            self._seq += 1
            prev = self._frame
            if prev is not None and prev.seq > self._taken_seq:
                self._dropped += 1  # replaced before anyone took it
            self._frame = Frame(image=image, seq=self._seq, timestamp=ts, camera=self.name, truth=truth)
            self._frames += 1
            self._last_frame_mono = now
            self._times.append(now)
            h, w = image.shape[:2]
            if self._size != (w, h):
                if self._size != (0, 0):
                    log.info("camera %s (%s): resolution changed %dx%d -> %dx%d",
                             self.name, self.safe_url, *self._size, w, h)
                self._size = (w, h)
            self._phase = CameraState.STREAMING
            self._cond.notify_all()

    def _run(self) -> None:
        backoff = self.backoff_initial_s
        down_since: float | None = None  # set while the camera is lost: log once, not per attempt
        ever_streamed = False
        while not self._stop.is_set():
            try:
                with self._cond:
                    self._opens += 1
                stream = self._opener()
            except EndOfStream:
                self._set(_ended=True, _phase=CameraState.CLOSED)
                break
            except Exception as exc:  # whatever a backend raises, the camera retries
                err = exc if isinstance(exc, CameraError) else CameraError(f"cannot open: {exc!r}")
                self._set(_last_error=str(err), _phase=CameraState.FAILED)
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning("camera %s (%s) unavailable: %s", self.name, self.safe_url, err)
                else:
                    log.debug("camera %s: reopen failed: %s", self.name, err)
                if not self.retry:
                    break
                self._stop.wait(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            self._stream = stream
            info = stream.info()
            with self._cond:
                self._info.update(info)
            got_frame = False
            prev = time.monotonic()
            cause: str
            try:
                while not self._stop.is_set():
                    image, ts, truth = stream.read()
                    now = time.monotonic()
                    if stream.live and got_frame and now - prev >= self.stall_timeout_s:
                        # A backend whose read timed out may still hand back a picture (FFmpeg's
                        # interrupt); after a gap this long the connection is not to be trusted.
                        raise CameraError(f"read blocked for {now - prev:.1f} s")
                    prev = now
                    if not got_frame:
                        got_frame = True
                        backoff = self.backoff_initial_s
                        if down_since is not None:
                            log.info("camera %s (%s) recovered after %.1f s", self.name, self.safe_url,
                                     time.monotonic() - down_since)
                            down_since = None
                        elif not ever_streamed:
                            log.info("camera %s (%s) streaming", self.name, self.safe_url)
                        ever_streamed = True
                    self._publish(image, ts, truth)
                cause = "closed"
            except EndOfStream:
                self._set(_ended=True, _phase=CameraState.CLOSED)
                break
            except CameraError as err:
                cause = str(err)
            except Exception as err:  # a backend bug must not kill the lane's camera for good
                log.exception("camera %s: unexpected capture error", self.name)
                cause = f"unexpected error: {err!r}"
            finally:
                self._stream = None
                try:
                    stream.close()
                except Exception:
                    log.debug("camera %s: error while closing stream", self.name, exc_info=True)
            if self._stop.is_set():
                break
            # Frozen: connected, yet nothing new came for the stall time (from the last frame, or
            # from opening when the camera never sent one on this connection).
            frozen = stream.live and time.monotonic() - prev >= self.stall_timeout_s
            if frozen:
                cause = f"no new frame for {self.stall_timeout_s:g} s (stream frozen): {cause}"
            self._set(_last_error=cause, _phase=CameraState.STALLED if frozen else CameraState.CONNECTING)
            if down_since is None:
                down_since = time.monotonic()
                log.warning("camera %s (%s) lost: %s; reconnecting", self.name, self.safe_url, cause)
            if not got_frame:
                self._stop.wait(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.backoff_max_s)
        with self._cond:
            self._dead = True
            self._cond.notify_all()
