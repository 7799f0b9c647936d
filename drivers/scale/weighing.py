"""From a stream of indicator readings to weighings: one per vehicle, taken only when it is sound.

A weighing is taken when the indicator says the weight is stable *and* our own window agrees: every
reading over the last ``stable_window_s`` seconds was flagged stable, stayed within
``stable_tolerance`` and above ``min_vehicle_weight``, with no gap in the readings. The indicator's
flag alone is not enough (some indicators call a slowly creeping load stable); our window alone is
not enough either (the indicator knows its own filter). Overload, underload and a zero that has
wandered off are reported as alarms and never become weights.

Axle mode is for a short platform that a long vehicle crosses axle group by axle group: each group's
stable plateau is one axle weight, the platform empties between groups, and the vehicle is complete
when the platform has stayed empty for ``axle_gap_s``. If any group had no stable plateau (or two
groups were on the platform at once) the vehicle gets an alarm instead of an incomplete sum.

The detector is pure: no threads, no clock; time is the readings' timestamps, so tests can feed it
recorded or synthetic streams and get the same answer every time.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from drivers.scale.base import Reading
from edge.config import ScaleSection

log = logging.getLogger(__name__)

_TO_KG = {"kg": 1.0, "t": 1000.0, "g": 0.001, "lb": 0.45359237}


@dataclass(frozen=True)
class Weighing:
    """One legally relevant weighing with the evidence to reconstruct it on its own."""

    gross: float
    tare: float
    net: float
    unit: str
    taken_at: float
    stable_span_s: float
    """How long the weight had been stable (indicator flag and our window) when it was taken."""
    spread: float
    """Max minus min of the weights over that span, in ``unit``."""
    readings: tuple[bytes, ...]
    """The raw indicator frames the weighing was taken from, oldest first."""
    scale_id: str
    protocol: str
    axles: tuple[float, ...] = ()
    window_start: float = 0.0
    stable_window_s: float = 0.0
    tolerance: float = 0.0
    zero_before: float | None = None
    """The stable empty-platform reading before this vehicle drove on, if one was seen."""

    def as_dict(self, frames: bool = True) -> dict[str, Any]:
        """JSON-friendly form; frames as hex strings (``frames=False``: just their count)."""
        out: dict[str, Any] = {
            "gross": self.gross, "tare": self.tare, "net": self.net, "unit": self.unit,
            "taken_at": self.taken_at, "stable_span_s": round(self.stable_span_s, 3),
            "spread": self.spread, "scale_id": self.scale_id, "protocol": self.protocol,
            "axles": list(self.axles), "window_start": self.window_start,
            "stable_window_s": self.stable_window_s, "tolerance": self.tolerance,
            "zero_before": self.zero_before,
        }
        out["readings"] = [r.hex() for r in self.readings] if frames else len(self.readings)
        return out


@dataclass(frozen=True)
class VehicleOn:
    t: float


@dataclass(frozen=True)
class Weighed:
    weighing: Weighing


@dataclass(frozen=True)
class VehicleOff:
    t: float


@dataclass(frozen=True)
class ScaleAlarm:
    kind: str
    """"zero_drift", "overload", "underload" or "no_stable_weight"."""
    message: str
    t: float


ScaleEvent = VehicleOn | Weighed | VehicleOff | ScaleAlarm


@dataclass
class _Sample:
    t: float
    load: float  # gross, in the config's unit: for thresholds
    stable: bool
    reading: Reading


@dataclass
class _Axle:
    weighing: Weighing | None = None
    overlap: bool = False


@dataclass
class _Vehicle:
    on_t: float
    weighing: Weighing | None = None
    below_since: float | None = None
    axles: list[Weighing] = field(default_factory=list)
    axle: _Axle | None = None
    between_since: float | None = None
    missing_axles: int = 0
    overlap: bool = False
    gaps: list[float] = field(default_factory=list)  # pauses in the readings while it stood there, in s
    blanks: int = 0  # readings without a weight while it stood there
    loaded: int = 0  # readings with the whole load on the platform, before a weight was taken
    moving: int = 0  # of those, how many the indicator flagged as in motion
    run_start: float | None = None  # when the current run of readings flagged stable began
    longest_run: float = 0.0  # the longest such run, in s
    least_spread: float | None = None  # the smallest spread of a full window of stable readings

    def why_unstable(self, needed_s: float, tolerance: float, unit: str) -> str:
        """What broke the stability evidence, for the alarm: a technician's first question.

        It tells apart a link that paused, an indicator that never settled, a vehicle that did not
        stand still for the window, and a weight that wandered beyond the tolerance.
        """
        parts = []
        if self.gaps:
            parts.append(f"the readings paused {len(self.gaps)} time(s), the longest {max(self.gaps):.1f} s")
        if self.blanks:
            parts.append(f"{self.blanks} reading(s) came without a weight")
        if self.loaded:
            parts.append(f"the indicator flagged motion in {self.moving} of {self.loaded} reading(s)")
            parts.append(f"the longest stable run lasted {self.longest_run:.1f} s of the {needed_s:g} s needed")
        if self.least_spread is not None:
            parts.append(f"over a full window the weight wandered at least {self.least_spread:g} {unit} "
                         f"(tolerance {tolerance:g})")
        return f" ({'; '.join(parts)})" if parts else ""

    def track(self, sample: _Sample) -> None:
        """Keeps the evidence for :meth:`why_unstable` while the vehicle waits for its weight."""
        self.loaded += 1
        if not sample.stable:
            self.moving += 1
            self.run_start = None
            return
        if self.run_start is None:
            self.run_start = sample.t
        self.longest_run = max(self.longest_run, sample.t - self.run_start)


class WeighingDetector:
    """Feed it every reading of one scale, in order; it returns what happened."""

    def __init__(
        self,
        cfg: ScaleSection,
        scale_id: str,
        *,
        off_delay_s: float = 0.5,
        axle_gap_s: float | None = None,
        max_gap_s: float = 1.0,
    ) -> None:
        self.cfg = cfg
        self.scale_id = scale_id
        self.off_delay_s = off_delay_s
        """The load must stay under min_vehicle_weight this long before the vehicle counts as gone."""
        self.axle_gap_s = cfg.axle_gap_s if axle_gap_s is None else axle_gap_s
        self.max_gap_s = max_gap_s
        """A longer silence between readings breaks the stability evidence (the link may have dropped)."""
        self._window: deque[_Sample] = deque()
        self._vehicle: _Vehicle | None = None
        self._alarmed: set[str] = set()
        self._zero: float | None = None
        self._unknown_units: set[str] = set()
        self._last_t: float | None = None

    @property
    def vehicle_on(self) -> bool:
        return self._vehicle is not None

    # ------------------------------------------------------------------ feeding

    def feed(self, reading: Reading) -> list[ScaleEvent]:
        t = reading.timestamp
        events: list[ScaleEvent] = []
        if self._vehicle is not None and self._last_t is not None and t - self._last_t > self.max_gap_s:
            self._vehicle.gaps.append(t - self._last_t)
            self._vehicle.run_start = None
        self._last_t = t
        if reading.overload or reading.underload:
            kind = "overload" if reading.overload else "underload"
            self._alarm(events, kind, f"scale {self.scale_id}: indicator reports {kind}; no weight", t)
            self._window.clear()
            return events
        if reading.weight is None:
            self._window.clear()  # the indicator answered without a weight: continuity is broken
            if self._vehicle is not None:
                self._vehicle.blanks += 1
                self._vehicle.run_start = None
            return events
        load = self._load(reading)
        if load > self.cfg.max_capacity:
            self._alarm(events, "overload",
                        f"scale {self.scale_id}: {load:g} {self.cfg.unit} is above capacity "
                        f"{self.cfg.max_capacity:g}", t)
            self._window.clear()
            return events
        self._alarmed.discard("overload")
        self._alarmed.discard("underload")
        if self._window and t - self._window[-1].t > self.max_gap_s:
            self._window.clear()
        self._window.append(_Sample(t, load, reading.stable and not reading.extra.get("expanded"), reading))
        while len(self._window) >= 2 and self._window[1].t <= t - self.cfg.stable_window_s:
            self._window.popleft()
        if self.cfg.mode == "axle":
            self._feed_axle(load, t, events)
        else:
            self._feed_static(load, t, events)
        return events

    def _feed_static(self, load: float, t: float, events: list[ScaleEvent]) -> None:
        v = self._vehicle
        if v is None:
            if load >= self.cfg.min_vehicle_weight:
                self._vehicle = _Vehicle(on_t=t)
                self._vehicle.track(self._window[-1])
                events.append(VehicleOn(t))
            else:
                self._watch_zero(load, t, events)
            return
        if load < self.cfg.min_vehicle_weight:
            v.run_start = None
            if v.below_since is None:
                v.below_since = t
            if t - v.below_since >= self.off_delay_s:
                if v.weighing is None:
                    self._alarm(events, "no_stable_weight",
                                f"scale {self.scale_id}: vehicle left without a stable weight{self._why(v)}", t,
                                once=False)
                events.append(VehicleOff(v.below_since))
                self._vehicle = None
            return
        v.below_since = None
        if v.weighing is None:
            v.track(self._window[-1])
            w = self._stable_weighing(t)
            if w is not None:
                v.weighing = w
                events.append(Weighed(w))

    def _feed_axle(self, load: float, t: float, events: list[ScaleEvent]) -> None:
        v = self._vehicle
        loaded = load >= self.cfg.min_vehicle_weight
        if v is None:
            if loaded:
                self._vehicle = _Vehicle(on_t=t, axle=_Axle())
                self._vehicle.track(self._window[-1])
                events.append(VehicleOn(t))
            else:
                self._watch_zero(load, t, events)
            return
        if not loaded:
            v.run_start = None
        if v.axle is None:  # between axle groups
            assert v.between_since is not None
            if loaded:
                v.axle = _Axle()
                v.below_since = None
            elif t - v.between_since >= self.axle_gap_s:
                self._finish_axles(v, t, events)
            return
        if not loaded:
            if v.below_since is None:
                v.below_since = t
            if t - v.below_since >= self.off_delay_s:
                if v.axle.weighing is None:
                    v.missing_axles += 1
                else:
                    v.axles.append(v.axle.weighing)
                v.overlap = v.overlap or v.axle.overlap
                v.axle = None
                v.between_since = v.below_since
            return
        v.below_since = None
        if v.axle.weighing is None:
            v.track(self._window[-1])
        w = self._stable_weighing(t)
        if w is None:
            return
        if v.axle.weighing is None:
            v.axle.weighing = w
        elif abs(w.gross - v.axle.weighing.gross) > max(self.cfg.stable_tolerance, 1e-9):
            v.axle.overlap = True  # a second plateau: another group rolled on before this one left

    def _finish_axles(self, v: _Vehicle, t: float, events: list[ScaleEvent]) -> None:
        off_t = v.between_since if v.between_since is not None else t
        self._vehicle = None
        if v.missing_axles or v.overlap or not v.axles:
            why = (f"{v.missing_axles} axle group(s) had no stable weight" if v.missing_axles
                   else "axle groups overlapped on the platform")
            self._alarm(events, "no_stable_weight",
                        f"scale {self.scale_id}: {why}; no vehicle weight{self._why(v)}", t, once=False)
            events.append(VehicleOff(off_t))
            return
        first, last = v.axles[0], v.axles[-1]
        axles = tuple(a.gross for a in v.axles)
        gross = round(sum(axles), 6)
        w = Weighing(
            gross=gross, tare=0.0, net=gross, unit=first.unit, taken_at=last.taken_at,
            stable_span_s=min(a.stable_span_s for a in v.axles), spread=max(a.spread for a in v.axles),
            readings=tuple(r for a in v.axles for r in a.readings), scale_id=self.scale_id,
            protocol=first.protocol, axles=axles, window_start=first.window_start,
            stable_window_s=self.cfg.stable_window_s, tolerance=self.cfg.stable_tolerance,
            zero_before=first.zero_before,
        )
        events.append(Weighed(w))
        events.append(VehicleOff(off_t))

    # ------------------------------------------------------------------ helpers

    def _stable_weighing(self, t: float) -> Weighing | None:
        win = self._window
        if not win or t - win[0].t < self.cfg.stable_window_s - 1e-6:
            return None
        if not all(s.stable for s in win):
            return None
        if any(s.load < self.cfg.min_vehicle_weight for s in win):
            return None
        loads = [s.load for s in win]
        spread = max(loads) - min(loads)
        if spread > self.cfg.stable_tolerance:
            v = self._vehicle
            if v is not None:
                v.least_spread = round(spread if v.least_spread is None else min(v.least_spread, spread), 6)
            return None
        r = win[-1].reading
        assert r.weight is not None
        tare = r.tare or 0.0
        if r.net:
            net, gross = r.weight, round(r.weight + tare, 6)
        else:
            gross, net = r.weight, round(r.weight - tare, 6)
        weights = [s.reading.weight or 0.0 for s in win]
        return Weighing(
            gross=gross, tare=tare, net=net, unit=r.unit, taken_at=t, stable_span_s=t - win[0].t,
            spread=round(max(weights) - min(weights), 6), readings=tuple(s.reading.raw for s in win),
            scale_id=self.scale_id, protocol=r.protocol, window_start=win[0].t,
            stable_window_s=self.cfg.stable_window_s, tolerance=self.cfg.stable_tolerance,
            zero_before=self._zero,
        )

    def _why(self, v: _Vehicle) -> str:
        return v.why_unstable(self.cfg.stable_window_s, self.cfg.stable_tolerance, self.cfg.unit)

    def _watch_zero(self, load: float, t: float, events: list[ScaleEvent]) -> None:
        win = self._window
        covered = bool(win) and t - win[0].t >= self.cfg.stable_window_s - 1e-6
        if not covered or not all(s.stable for s in win):
            return
        loads = [s.load for s in win]
        if max(loads) - min(loads) > self.cfg.stable_tolerance:
            return
        self._zero = win[-1].reading.weight
        if all(abs(x) > self.cfg.zero_tolerance for x in loads):
            self._alarm(events, "zero_drift",
                        f"scale {self.scale_id}: empty platform reads {load:g} {self.cfg.unit}, beyond the zero "
                        f"tolerance of {self.cfg.zero_tolerance:g}; re-zero the indicator", t)
        elif all(abs(x) <= self.cfg.zero_tolerance for x in loads):
            self._alarmed.discard("zero_drift")

    def _alarm(self, events: list[ScaleEvent], kind: str, message: str, t: float, once: bool = True) -> None:
        if once:
            if kind in self._alarmed:
                return
            self._alarmed.add(kind)
        log.warning("%s", message)
        events.append(ScaleAlarm(kind, message, t))

    def _load(self, r: Reading) -> float:
        assert r.weight is not None
        gross = r.weight + (r.tare or 0.0) if r.net else r.weight
        if r.unit == self.cfg.unit or not r.unit:
            return gross
        src, dst = _TO_KG.get(r.unit), _TO_KG.get(self.cfg.unit)
        if src is None or dst is None:
            if r.unit not in self._unknown_units:
                self._unknown_units.add(r.unit)
                log.warning("scale %s: unit %r unknown; thresholds applied as %s", self.scale_id, r.unit,
                            self.cfg.unit)
            return gross
        return gross * src / dst
