"""The weighing detector on synthetic reading streams (pure: driven by the readings' timestamps)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from drivers.scale.base import Reading
from drivers.scale.protocols import get_protocol
from drivers.scale.simulator import ScaleSimulator
from drivers.scale.weighing import ScaleAlarm, ScaleEvent, Weighed, WeighingDetector
from drivers.sim.traffic import Traffic
from edge.config import ScaleSection
from tests.scale.helpers import scale_cfg

HZ = 10.0


def stream(load: Callable[[float], float], t1: float, protocol: str = "ascii", seed: int = 3,
           noise: float = 2.0, t0: float = 0.0) -> list[Reading]:
    """Readings an indicator would send for ``load``: noise, division, its own motion flag, real bytes."""
    sim = ScaleSimulator(protocol, weight_fn=load, noise_kg=noise, seed=seed)  # not started: model only
    parser = get_protocol(protocol)
    out: list[Reading] = []
    n = int((t1 - t0) * HZ)
    for i in range(n):
        t = t0 + i / HZ
        items, _ = parser.parse(parser.encode(sim.reading_at(t)) + (b"\x02" if "mettler" in protocol else b""), t)
        out.extend(x for x in items if isinstance(x, Reading))
    return out


def run(cfg: ScaleSection, readings: list[Reading]) -> list[ScaleEvent]:
    det = WeighingDetector(cfg, "scale1")
    events: list[ScaleEvent] = []
    for r in readings:
        events.extend(det.feed(r))
    return events


def kinds(events: list[ScaleEvent]) -> list[str]:
    return [type(e).__name__ if not isinstance(e, ScaleAlarm) else f"alarm:{e.kind}" for e in events]


CFG = scale_cfg(url="loop://", stable_window_s=1.0, stable_tolerance=20.0)


def test_one_weighing_per_vehicle_from_traffic() -> None:
    traffic = Traffic(seed=7, epoch=0.0, period_s=12.0)
    events = run(CFG, stream(traffic.weight_at, 12.0 * 3))
    assert kinds(events) == ["VehicleOn", "Weighed", "VehicleOff"] * 3
    for i, e in enumerate(x for x in events if isinstance(x, Weighed)):
        w = e.weighing
        assert w.gross == pytest.approx(traffic.vehicle(i).gross_kg, abs=20)
        assert w.net == w.gross and w.tare == 0.0 and w.unit == "kg"
        assert w.stable_span_s >= 1.0 and w.spread <= 20.0
        assert w.readings and all(r.startswith(b"ST,GS,") for r in w.readings)
        assert traffic.vehicle(i).loaded <= w.taken_at < traffic.vehicle(i).depart
        assert w.scale_id == "scale1" and w.protocol == "ascii"


def test_indicator_flag_alone_is_not_enough() -> None:
    """A slow creep the indicator calls stable (steps within one division) is refused by our window."""
    rs = [Reading(20000.0 + 10 * (i // 2), "kg", True, timestamp=i / HZ, raw=b"x") for i in range(80)]
    rs += [Reading(0.0, "kg", True, timestamp=8 + i / HZ, raw=b"x") for i in range(10)]
    events = run(CFG, rs)
    assert kinds(events) == ["VehicleOn", "alarm:no_stable_weight", "VehicleOff"]
    # The alarm says the indicator was content and the weight wandered: a creeping load, not motion.
    message = events[1].message  # type: ignore[union-attr]
    assert "motion in 0 of 80 reading(s)" in message and "lasted 7.9 s of the 1 s needed" in message
    assert "wandered at least 50 kg (tolerance 20)" in message


def test_our_window_alone_is_not_enough() -> None:
    """A steady weight the indicator flags as in motion is not taken."""
    rs = [Reading(20000.0, "kg", False, timestamp=i / HZ, raw=b"x") for i in range(50)]
    rs += [Reading(0.0, "kg", True, timestamp=5 + i / HZ, raw=b"x") for i in range(10)]
    events = run(CFG, rs)
    assert kinds(events) == ["VehicleOn", "alarm:no_stable_weight", "VehicleOff"]
    message = events[1].message  # type: ignore[union-attr]
    assert "motion in 50 of 50 reading(s); the longest stable run lasted 0.0 s" in message
    assert "wandered" not in message


def test_the_alarm_names_a_vehicle_that_did_not_stand_still_long_enough() -> None:
    """The indicator settles, but the vehicle leaves before the window is full: the run says so."""
    rs = [Reading(20000.0, "kg", i >= 5, timestamp=i / HZ) for i in range(13)]
    rs += [Reading(0.0, "kg", True, timestamp=1.3 + i / HZ) for i in range(10)]
    events = run(CFG, rs)
    assert kinds(events) == ["VehicleOn", "alarm:no_stable_weight", "VehicleOff"]
    message = events[1].message  # type: ignore[union-attr]
    assert "motion in 5 of 13 reading(s); the longest stable run lasted 0.7 s of the 1 s needed" in message


def test_settling_oscillation_is_waited_out() -> None:
    def settle(t: float) -> float:
        if t < 1 or t > 8:
            return 0.0
        return 30000.0 + 900.0 * math.exp(-(t - 1) * 2.0) * math.cos((t - 1) * 12.0)

    events = run(CFG, stream(settle, 10.0))
    (w,) = [e.weighing for e in events if isinstance(e, Weighed)]
    assert w.gross == pytest.approx(30000.0, abs=20)
    assert w.taken_at > 3.0  # only once the swing died down


def test_gap_in_readings_breaks_stability_evidence() -> None:
    rs = [Reading(20000.0, "kg", True, timestamp=i / HZ, raw=b"x") for i in range(8)]
    rs += [Reading(20000.0, "kg", True, timestamp=3 + i / HZ, raw=b"x") for i in range(5)]
    events = run(CFG, rs)
    assert kinds(events) == ["VehicleOn"]  # 0.7 s, a 2.3 s hole, 0.4 s: never 1 s of continuous evidence


def test_the_alarm_says_what_broke_the_stability_evidence() -> None:
    # A vehicle stands 3.5 s, but the readings pause twice (a starved reader, a cable) and one frame
    # comes without a weight: never 1 s of continuous evidence, and the alarm says why.
    rs = [Reading(20000.0, "kg", True, timestamp=i / HZ) for i in range(8)]
    rs += [Reading(20000.0, "kg", True, timestamp=2.0 + i / HZ) for i in range(5)]
    rs += [Reading(None, "kg", False, timestamp=2.5)]
    rs += [Reading(20000.0, "kg", True, timestamp=3.8 + i / HZ) for i in range(5)]
    rs += [Reading(0.0, "kg", True, timestamp=4.3 + i / HZ) for i in range(10)]
    events = run(CFG, rs)
    assert kinds(events) == ["VehicleOn", "alarm:no_stable_weight", "VehicleOff"]
    message = events[1].message  # type: ignore[union-attr]
    assert "paused 2 time(s), the longest 1.3 s" in message and "1 reading(s) came without a weight" in message


def test_overload_and_underload_alarm_once_and_never_weigh() -> None:
    rs = [Reading(None, "kg", False, overload=True, timestamp=i / HZ) for i in range(30)]
    rs += [Reading(90000.0, "kg", True, timestamp=3 + i / HZ) for i in range(30)]  # above max_capacity
    rs += [Reading(None, "kg", False, underload=True, timestamp=6 + i / HZ) for i in range(5)]
    rs += [Reading(0.0, "kg", True, timestamp=7 + i / HZ) for i in range(5)]
    rs += [Reading(None, "kg", False, overload=True, timestamp=8 + i / HZ) for i in range(5)]
    events = run(CFG, rs)
    assert kinds(events) == ["alarm:overload", "alarm:underload", "alarm:overload"]
    assert "capacity" not in events[0].message  # type: ignore[union-attr]


def test_zero_drift_is_reported_not_weighed() -> None:
    events = run(CFG, stream(lambda t: 120.0 if t > 2 else 0.0, 6.0))
    assert kinds(events) == ["alarm:zero_drift"]
    assert "re-zero" in events[0].message  # type: ignore[union-attr]
    # within tolerance: silent
    assert run(CFG, stream(lambda t: 30.0, 6.0)) == []


def test_net_readings_give_gross_tare_net() -> None:
    rs = [Reading(0.0, "kg", True, net=True, tare=0.0, timestamp=i / HZ) for i in range(5)]
    rs += [Reading(15000.0, "kg", True, net=True, tare=2000.0, timestamp=1 + i / HZ, raw=b"n") for i in range(20)]
    rs += [Reading(-2000.0, "kg", True, net=True, tare=2000.0, timestamp=3 + i / HZ) for i in range(10)]
    (w,) = [e.weighing for e in run(CFG, rs) if isinstance(e, Weighed)]
    assert (w.gross, w.tare, w.net) == (17000.0, 2000.0, 15000.0)


def test_units_are_converted_for_thresholds() -> None:
    rs = [Reading(25.34, "t", True, timestamp=i / HZ, raw=b"t") for i in range(20)]
    (w,) = [e.weighing for e in run(CFG, rs) if isinstance(e, Weighed)]
    assert (w.gross, w.unit) == (25.34, "t")


def test_vehicle_off_needs_the_load_gone_for_a_while() -> None:
    rs = [Reading(20000.0, "kg", True, timestamp=i / HZ) for i in range(20)]
    rs += [Reading(0.0, "kg", True, timestamp=2.0)]  # one glitch frame
    rs += [Reading(20000.0, "kg", True, timestamp=2.1 + i / HZ) for i in range(10)]
    rs += [Reading(0.0, "kg", True, timestamp=3.1 + i / HZ) for i in range(10)]
    events = run(CFG, rs)
    assert kinds(events) == ["VehicleOn", "Weighed", "VehicleOff"]
    assert events[-1].t == pytest.approx(3.1)  # type: ignore[union-attr]


# ---------------------------------------------------------------- axle mode

AXLE = scale_cfg(url="loop://", mode="axle", stable_window_s=0.8, stable_tolerance=20.0)


def axle_load(
    groups: list[float], on_s: float = 2.0, gap_s: float = 1.5, start: float = 1.0
) -> Callable[[float], float]:
    """A vehicle crossing a short platform: one axle group on at a time, empty between groups."""
    def load(t: float) -> float:
        x = t - start
        if x < 0:
            return 0.0
        i = int(x // (on_s + gap_s))
        if i >= len(groups):
            return 0.0
        within = x - i * (on_s + gap_s)
        if within < 0.2 or within > on_s:
            return 0.0
        return groups[i] + 300.0 * math.exp(-(within - 0.2) * 8) * math.cos(within * 15)

    return load


def test_axle_mode_sums_axle_groups() -> None:
    groups = [6500.0, 9800.0, 8200.0, 8150.0]
    events = run(AXLE, stream(axle_load(groups), 1.0 + 4 * 3.5 + 6.0))
    assert kinds(events) == ["VehicleOn", "Weighed", "VehicleOff"]
    w = events[1].weighing  # type: ignore[union-attr]
    assert len(w.axles) == 4
    assert all(a == pytest.approx(g, abs=20) for a, g in zip(w.axles, groups, strict=True))
    assert w.gross == pytest.approx(sum(groups), abs=60) and w.gross == pytest.approx(sum(w.axles))


def test_axle_mode_refuses_incomplete_sum() -> None:
    def load(t: float) -> float:
        base = axle_load([6500.0, 9800.0])(t)
        if 4.5 <= t <= 6.5 and base:  # second group never settles
            return base + 400.0 * math.sin(t * 9)
        return base

    events = run(AXLE, stream(load, 14.0))
    assert kinds(events) == ["VehicleOn", "alarm:no_stable_weight", "VehicleOff"]


def test_the_simulated_indicator_filters_noise_so_a_truck_standing_still_stays_stable() -> None:
    """Ten minutes of a truck standing still: the display never flags motion (noise 2 kg, division 10).

    Without the filter every real indicator has, the noise alone flipped the display a division up
    and down often enough to raise the motion flag: a demo truck went unweighed that way.
    """
    def flags(filter_s: float) -> int:
        sim = ScaleSimulator("ascii", weight_fn=lambda t: 37980.0, noise_kg=2.0, seed=11, filter_s=filter_s)
        return sum(not sim.reading_at(i / HZ).stable for i in range(10, 6000))

    assert flags(ScaleSimulator("ascii").filter_s) == 0
    assert flags(0.0) > 0
