"""A running lane: camera threads feed the plate reader, the scale feeds the weighing detector, and
both feed the lane's :class:`~edge.lane.fusion.CrossingAssembler`.

Every device error stays inside its own thread: a camera that drops or a scale that goes away is
reported in ``health()`` and reconnects in its driver, while the lane keeps assembling crossings from
whatever still works.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from typing import Any

import cv2
import numpy as np

from drivers.camera import open_camera
from drivers.camera.base import Frame, FrameSource
from drivers.scale import open_scale
from drivers.scale.base import Reading, ScaleDriver
from drivers.scale.weighing import ScaleAlarm, VehicleOff, VehicleOn, Weighed, WeighingDetector
from edge import __version__
from edge.config import CameraSection, LaneSection
from edge.events import VehicleEvent
from edge.lane.fusion import CrossingAssembler, Screening
from edge.recognition.gating import FarLook, MotionGate
from edge.recognition.reader import PlateReader, cut_by_edge
from edge.recognition.types import PlateRead
from edge.recognition.voting import PlateVoter
from edge.weighing.records import WeighingRecords

log = logging.getLogger(__name__)

EventSink = Callable[[VehicleEvent], None]


def _roi_pixels(cfg: CameraSection, frame: Frame) -> tuple[int, int, int, int] | None:
    if cfg.roi is None:
        return None
    h, w = frame.image.shape[:2]
    x, y, rw, rh = cfg.roi
    return int(x * w), int(y * h), max(1, int(rw * w)), max(1, int(rh * h))


class Lane:
    def __init__(
        self,
        post_id: str,
        cfg: LaneSection,
        reader: PlateReader,
        reader_lock: threading.Lock,
        on_event: EventSink,
        *,
        records: WeighingRecords | None = None,
        screening: Iterable[Screening] = (),
        evidence: Callable[[np.ndarray], str] | None = None,
    ) -> None:
        self.post_id = post_id
        self.cfg = cfg
        self.id = cfg.id
        self._reader = reader
        self._reader_lock = reader_lock
        self._on_event = on_event
        self._records = records
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.cameras: dict[str, FrameSource] = {}
        self.scale: ScaleDriver | None = None
        self._detector = (
            WeighingDetector(cfg.scale, scale_id=f"{post_id}/{cfg.id}/scale") if cfg.scale else None
        )
        self.assembler = CrossingAssembler(
            post_id,
            cfg.id,
            cfg.crossing,
            has_scale=cfg.scale is not None,
            voter_factory=partial(PlateVoter, reader.crossing_book),
            camera_roles={c.name: c.role for c in cfg.cameras},
            models=reader.model_versions(),
            screening=screening,
            evidence=evidence,
        )
        self.stats: dict[str, Any] = {"frames_read": 0, "frames_skipped": 0, "plates": 0, "events": 0,
                                      "weighings": 0, "alarms": 0, "read_ms_last": None, "plates_cut_by_edge": 0,
                                      "frames_without_far_look": 0}
        self.alarms: list[dict[str, Any]] = []
        self._last_loop = time.monotonic()

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        for cam_cfg in self.cfg.cameras:
            src = open_camera(cam_cfg)
            src.start()
            self.cameras[cam_cfg.name] = src
            self._spawn(f"lane-{self.id}-cam-{cam_cfg.name}", self._camera_loop, cam_cfg, src)
        if self.cfg.scale is not None:
            self.scale = open_scale(self.cfg.scale, name=f"{self.id}-scale")
            self.scale.start(self._on_reading)
        self._spawn(f"lane-{self.id}-fusion", self._fusion_loop)
        log.info("lane %s started: %d camera(s)%s", self.id, len(self.cameras),
                 ", scale" if self.scale else ", no scale")

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop devices, then close any open crossing so that no vehicle already seen is lost."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        for src in self.cameras.values():
            src.close()
        if self.scale is not None:
            self.scale.close()
        with self._lock:
            events = self.assembler.flush(time.time())
        for ev in events:
            self._emit(ev)

    def alive(self) -> bool:
        """True while the fusion loop turns: the watchdog restarts a controller whose lane hung."""
        return time.monotonic() - self._last_loop < 10.0

    # -- cameras ------------------------------------------------------------------------------------

    def _camera_loop(self, cam_cfg: CameraSection, src: FrameSource) -> None:
        gate: MotionGate | None = None
        far = FarLook(cam_cfg.far_rest_frames)
        period = 1.0 / cam_cfg.read_fps
        last_seq = -1
        next_at = 0.0
        while not self._stop.is_set():
            wait = next_at - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            next_at = time.monotonic() + period
            try:
                frame = src.latest(after_seq=last_seq, timeout=1.0)
            except Exception as err:  # the driver reconnects; the lane must not die with it
                log.debug("lane %s camera %s: %s", self.id, cam_cfg.name, err)
                continue
            if frame is None:
                continue
            last_seq = frame.seq
            roi = _roi_pixels(cam_cfg, frame)
            if gate is None or gate.roi != roi:  # the camera may change resolution on a reconnect
                gate = MotionGate(roi=roi)
            if not gate.should_read(frame.image):
                self.stats["frames_skipped"] += 1
                continue
            t0 = time.perf_counter()
            try:
                looked_far = far.allowed()
                with self._reader_lock:
                    reads = self._reader.read(frame.image, roi=roi, far=looked_far)
            except Exception:
                log.exception("lane %s camera %s: plate reader failed on frame %d", self.id, cam_cfg.name,
                              frame.seq)
                continue
            self.stats["read_ms_last"] = round((time.perf_counter() - t0) * 1000, 1)
            self.stats["frames_read"] += 1
            # A plate half out of view reads as a shorter, often still valid, plate: never vote with it.
            view = roi or (0, 0, frame.image.shape[1], frame.image.shape[0])
            whole = [r for r in reads if not cut_by_edge(r.box, view)]
            self.stats["plates_cut_by_edge"] += len(reads) - len(whole)
            reads = whole
            far.seen(bool(reads))  # a container code or an ADR plate read is as good as a plate here
            self.stats["frames_without_far_look"] += not looked_far
            overview = _overview(frame.image) if reads else None
            with self._lock:
                for r in reads:
                    stamped = _stamp(r, cam_cfg.name, frame)
                    self.stats["plates"] += 1
                    self.assembler.add_read(stamped, cam_cfg.role, crop=_crop(frame.image, r.box), overview=overview)

    # -- scale --------------------------------------------------------------------------------------

    def _on_reading(self, reading: Reading) -> None:
        assert self._detector is not None
        try:
            events = self._detector.feed(reading)
        except Exception:
            log.exception("lane %s: weighing detector failed on %r", self.id, reading.raw)
            return
        for ev in events:
            if isinstance(ev, VehicleOn):
                with self._lock:
                    self.assembler.vehicle_on(ev.t)
            elif isinstance(ev, VehicleOff):
                with self._lock:
                    self.assembler.vehicle_off(ev.t)
            elif isinstance(ev, Weighed):
                self._on_weighed(ev)
            elif isinstance(ev, ScaleAlarm):
                self.stats["alarms"] += 1
                self.alarms = [*self.alarms[-19:], {"kind": ev.kind, "message": ev.message, "t": ev.t}]
                log.warning("lane %s scale alarm %s: %s", self.id, ev.kind, ev.message)

    def _on_weighed(self, ev: Weighed) -> None:
        w = ev.weighing
        record_id: str | None = None
        if self._records is not None:
            try:
                record_id = self._records.append(w, lane_id=self.id, software_version=__version__)
            except Exception:
                log.exception("lane %s: weighing record could not be stored", self.id)
        self.stats["weighings"] += 1
        with self._lock:
            self.assembler.weighed(w, record_id)

    # -- fusion -------------------------------------------------------------------------------------

    def _fusion_loop(self) -> None:
        while not self._stop.wait(0.2):
            self._last_loop = time.monotonic()
            with self._lock:
                events = self.assembler.tick(time.time())
            for ev in events:
                self._emit(ev)

    def _emit(self, ev: VehicleEvent) -> None:
        self.stats["events"] += 1
        try:
            self._on_event(ev)
        except Exception:
            log.exception("lane %s: event %s could not be handed on", self.id, ev.event_id)

    def health(self) -> dict[str, Any]:
        return {
            "lane": self.id,
            "cameras": [src.health().as_dict() for src in self.cameras.values()],
            "scale": self.scale.health().as_dict() if self.scale else None,
            "stats": dict(self.stats),
            "alarms": list(self.alarms),
            "alive": self.alive(),
        }


def _overview(image: np.ndarray, width: int = 640) -> np.ndarray:
    """The whole scene, small: enough to see the vehicle and the lane, a few tens of kB as JPEG."""
    h, w = image.shape[:2]
    if w <= width:
        return image.copy()
    return cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def _crop(image: np.ndarray, box: tuple[int, int, int, int], pad: float = 0.15) -> np.ndarray:
    """The plate with a margin around it, copied so the frame buffer can be reused."""
    x, y, w, h = box
    px, py = int(w * pad), int(h * pad)
    hh, ww = image.shape[:2]
    x0, y0 = max(0, x - px), max(0, y - py)
    x1, y1 = min(ww, x + w + px), min(hh, y + h + py)
    return image[y0:y1, x0:x1].copy()


def _stamp(read: PlateRead, camera: str, frame: Frame) -> PlateRead:
    return replace(read, camera=camera, frame_seq=frame.seq, timestamp=frame.timestamp)
