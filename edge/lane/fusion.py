"""Lane fusion: plate reads from a lane's cameras and the scale's weighing become one event per crossing.

The scale is the better judge of when a vehicle is in the lane (a plate can be missed, a truck cannot
weigh nothing), so on a lane with a scale a crossing runs from the platform loading (minus a pre-roll,
for the plate seen while the truck drives up) to the platform emptying (plus a post-roll). On a lane
without a scale a crossing is a plate track: reads of one plate until it has been unseen for
``idle_gap_s``.

Pure logic driven by the timestamps it is given, so tests can replay a crossing without threads or
clocks; :class:`edge.lane.runtime.Lane` feeds it from the devices.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from drivers.scale.weighing import Weighing
from edge.config import CrossingSection
from edge.events import VehicleEvent, iso_time
from edge.recognition.containers import is_valid as iso6346_valid
from edge.recognition.types import PlateRead
from edge.recognition.voting import vote_codes

log = logging.getLogger(__name__)


class Voter(Protocol):
    """Fuses the reads of one crossing into one best read (see :mod:`edge.recognition.voting`)."""

    def add(self, read: PlateRead) -> None: ...

    def best(self) -> tuple[PlateRead, float, int] | None: ...


def weighing_payload(w: Weighing, record_id: str | None) -> dict[str, Any]:
    """The event's summary of a weighing; the raw frames stay in the weighing record it names."""
    return {
        "gross": w.gross,
        "tare": w.tare,
        "net": w.net,
        "unit": w.unit,
        "stable_span_s": round(w.stable_span_s, 3),
        "spread": w.spread,
        "readings": len(w.readings),
        "record_id": record_id,
        "scale": w.scale_id,
        "axles": list(w.axles),
    }


@dataclass
class _Crossing:
    opened: float
    first_seen: float
    loaded: bool = False
    off_at: float | None = None
    weighing: Weighing | None = None
    record_id: str | None = None
    reads: list[tuple[PlateRead, str]] = field(default_factory=list)
    last_read: float = 0.0


Screening = Callable[[VehicleEvent], None]
"""Hook run on each finished event before it is made durable (watchlist, declared weight)."""


class CrossingAssembler:
    """Collects one lane's reads and weighings; ``tick`` returns the crossings that have ended."""

    MAX_CROPS = 600

    def __init__(
        self,
        post_id: str,
        lane_id: str,
        crossing: CrossingSection,
        *,
        has_scale: bool,
        voter_factory: Callable[[], Voter],
        camera_roles: dict[str, str] | None = None,
        models: dict[str, str] | None = None,
        screening: Iterable[Screening] = (),
        evidence: Callable[[np.ndarray], str] | None = None,
    ) -> None:
        self.post_id = post_id
        self.lane_id = lane_id
        self.cfg = crossing
        self.has_scale = has_scale
        self._voter_factory = voter_factory
        self._roles = camera_roles or {}
        self._models = models or {}
        self._screening = list(screening)
        self._evidence = evidence
        self._crops: dict[tuple[str, int, tuple[int, int, int, int]], np.ndarray] = {}
        """Plate crops of the open crossing: only the best read's crop is kept as evidence."""
        self._overviews: dict[str, tuple[float, np.ndarray]] = {}
        """Per camera, the downscaled frame of its most confident read so far: the overview evidence."""
        self._current: _Crossing | None = None
        self._recent: deque[tuple[PlateRead, str]] = deque(maxlen=2000)
        """Reads seen while no crossing was open, kept for the pre-roll of the next one."""
        self._claimed_until = 0.0
        self._pending_close: _Crossing | None = None
        """A crossing whose post-roll was cut short by the next vehicle loading the platform."""
        self.crossings = 0

    # -- inputs -------------------------------------------------------------------------------------

    def add_read(
        self,
        read: PlateRead,
        role: str | None = None,
        crop: np.ndarray | None = None,
        overview: np.ndarray | None = None,
    ) -> None:
        role = role or self._roles.get(read.camera, "front")
        t = read.timestamp
        if overview is not None and self._evidence is not None:
            best = self._overviews.get(read.camera)
            if best is None or read.confidence >= best[0]:
                self._overviews[read.camera] = (read.confidence, overview)
        if crop is not None and self._evidence is not None:
            self._crops[(read.camera, read.frame_seq, read.box)] = crop
            while len(self._crops) > self.MAX_CROPS:  # reads no crossing claimed: drop the oldest
                del self._crops[next(iter(self._crops))]
        cur = self._current
        if cur is not None:
            cur.reads.append((read, role))
            cur.last_read = max(cur.last_read, t)
            cur.first_seen = min(cur.first_seen, t)
            return
        if self.has_scale:
            if t > self._claimed_until:
                self._recent.append((read, role))
            return
        self._current = _Crossing(opened=t, first_seen=t, reads=[(read, role)], last_read=t)

    def vehicle_on(self, t: float) -> None:
        if self._current is not None and self._current.loaded and self._current.off_at is None:
            return  # another axle group rolled on: same vehicle
        if self._current is not None:
            # The previous vehicle's post-roll is cut short by the next one arriving.
            self._pending_close = self._current
        cur = _Crossing(opened=t, first_seen=t, loaded=True)
        horizon = t - self.cfg.pre_roll_s
        for read, role in self._recent:
            if read.timestamp >= max(horizon, self._claimed_until):
                cur.reads.append((read, role))
                cur.first_seen = min(cur.first_seen, read.timestamp)
                cur.last_read = max(cur.last_read, read.timestamp)
        self._recent.clear()
        self._current = cur

    def weighed(self, w: Weighing, record_id: str | None = None) -> None:
        cur = self._current
        if cur is None:
            cur = _Crossing(opened=w.taken_at, first_seen=w.taken_at, loaded=True)
            self._current = cur
        if cur.weighing is None:
            cur.weighing, cur.record_id = w, record_id
        else:
            log.warning("lane %s: a second weighing in one crossing ignored (record %s)", self.lane_id, record_id)

    def vehicle_off(self, t: float) -> None:
        cur = self._current
        if cur is not None and cur.off_at is None:
            cur.off_at = t

    # -- output -------------------------------------------------------------------------------------

    def tick(self, now: float) -> list[VehicleEvent]:
        out: list[VehicleEvent] = []
        if self._pending_close is not None:
            out.append(self._finish(self._pending_close, self._pending_close.off_at or now))
            self._pending_close = None
        cur = self._current
        if cur is None:
            return out
        end: float | None = None
        if self.has_scale:
            if cur.off_at is not None and now >= cur.off_at + self.cfg.post_roll_s:
                end = cur.off_at
        elif now - cur.last_read >= self.cfg.idle_gap_s:
            end = cur.last_read
        if end is None and now - cur.opened >= self.cfg.max_duration_s:
            log.warning("lane %s: crossing open for %.0f s, closing it", self.lane_id, now - cur.opened)
            end = now
        if end is not None:
            self._current = None
            self._claimed_until = end + (self.cfg.post_roll_s if self.has_scale else 0.0)
            out.append(self._finish(cur, end))
        return out

    def flush(self, now: float) -> list[VehicleEvent]:
        """Close whatever is open (on shutdown), so a crossing in progress is not lost."""
        out = self.tick(now)
        if self._current is not None:
            cur, self._current = self._current, None
            out.append(self._finish(cur, cur.off_at or now))
        return out

    def _finish(self, cur: _Crossing, left_at: float) -> VehicleEvent:
        self.crossings += 1
        plate, trailer, per_camera = self._fuse(cur)
        # Each container code once, as its most confident read, less any chance-verifying misread
        # of it (vote_codes); each orange plate ("hazard/UN") once, as its most confident read.
        containers = [
            {"code": r.text, "valid": iso6346_valid(r.text), "confidence": conf, "camera": r.camera}
            for r, conf, _ in vote_codes(r for r, _role in cur.reads if r.kind == "container")
        ]
        adr: dict[str, dict[str, Any]] = {}
        for r, _role in cur.reads:
            if (parts := r.hazard_un) is not None:
                entry = {"hazard": parts[0], "un": parts[1], "confidence": round(r.confidence, 4), "camera": r.camera}
                _keep_most_confident(adr, r.text, entry)
        self._store_crops(plate, trailer)
        ev = VehicleEvent(
            post_id=self.post_id,
            lane_id=self.lane_id,
            first_seen=cur.first_seen,
            left_at=max(left_at, cur.first_seen),
            weighed_at=cur.weighing.taken_at if cur.weighing else None,
            plate=plate,
            reads=per_camera,
            trailer_plate=trailer,
            containers=containers,
            adr=list(adr.values()),
            weighing=weighing_payload(cur.weighing, cur.record_id) if cur.weighing else None,
            models=dict(self._models),
        )
        for hook in self._screening:
            try:
                hook(ev)
            except Exception:  # a screening bug must not lose the crossing
                log.exception("lane %s: screening hook failed; event kept unscreened", self.lane_id)
        return ev

    def _store_crops(self, *plates: dict[str, Any] | None) -> None:
        crops, self._crops = self._crops, {}
        overviews, self._overviews = self._overviews, {}
        if self._evidence is None:
            return
        for plate in plates:
            if plate is None:
                continue
            crop = crops.get((plate["camera"], plate["frame_seq"], tuple(plate["box"])))
            overview = overviews.get(plate["camera"])
            try:
                if crop is not None:
                    plate["crop_sha256"] = self._evidence(crop)
                if overview is not None:
                    plate["overview_sha256"] = self._evidence(overview[1])
            except Exception:  # evidence is best effort; the event itself must go on
                log.exception("lane %s: evidence image could not be stored", self.lane_id)

    def _fuse(
        self, cur: _Crossing
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, list[dict[str, Any]]]:
        by_camera: dict[str, tuple[str, Voter, int]] = {}
        by_role: dict[str, Voter] = {}
        for read, role in cur.reads:
            # A container camera looks at a container's side: what it takes for a plate there is
            # the container's print, and it must not outvote the plate cameras.
            if read.kind != "plate" or role == "container":
                continue
            cam = by_camera.get(read.camera)
            if cam is None:
                cam = (role, self._voter_factory(), 0)
            cam[1].add(read)
            by_camera[read.camera] = (cam[0], cam[1], cam[2] + 1)
            group = "trailer" if role == "trailer" else "vehicle"
            by_role.setdefault(group, self._voter_factory()).add(read)
        per_camera: list[dict[str, Any]] = []
        for name, (role, voter, frames) in sorted(by_camera.items()):
            best = voter.best()
            if best is None:
                continue
            read, conf, _ = best
            per_camera.append(
                {
                    "camera": name,
                    "role": role,
                    "text": read.text,
                    "display": read.display or read.text,
                    "country": read.country,
                    "syntax": read.syntax,
                    "confidence": round(conf, 4),
                    "frames": frames,
                }
            )
        return (
            _plate_payload(by_role.get("vehicle")),
            _plate_payload(by_role.get("trailer")),
            per_camera,
        )


def _plate_payload(voter: Voter | None) -> dict[str, Any] | None:
    if voter is None:
        return None
    best = voter.best()
    if best is None:
        return None
    read, conf, votes = best
    return {
        "text": read.text,
        "display": read.display or read.text,
        "country": read.country,
        "syntax": read.syntax,
        "confidence": round(conf, 4),
        "camera": read.camera,
        "frame_seq": read.frame_seq,
        "seen_at": iso_time(read.timestamp),
        "box": list(read.box),
        "votes": votes,
        "crop_sha256": None,
        "overview_sha256": None,
    }


def _keep_most_confident(kept: dict[str, dict[str, Any]], key: str, entry: dict[str, Any]) -> None:
    """A plate read in many frames is reported once, from the frame that read it best (its camera
    and confidence belong together)."""
    if key not in kept or entry["confidence"] > kept[key]["confidence"]:
        kept[key] = entry
