"""Simulator -> real transport -> driver -> weighing detector -> records: one weighing per vehicle.

The simulator weighs the trucks of a ``Traffic`` schedule (the one the synthetic camera draws); the
weighing the detector takes must be that truck's gross within the indicator's resolution.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from drivers.scale import open_scale
from drivers.scale.base import Reading
from drivers.scale.simulator import ScaleSimulator, Transport
from drivers.scale.weighing import ScaleAlarm, ScaleEvent, VehicleOff, VehicleOn, Weighed, WeighingDetector
from drivers.sim.traffic import Traffic
from edge.weighing.records import WeighingRecords
from tests.scale.helpers import scale_cfg, wait_for

VEHICLES = 2


@pytest.mark.slow
@pytest.mark.parametrize(
    ("protocol", "transport"),
    [("ascii", "pty"), ("mettler-continuous", "tcp"), ("mt-sics", "pty")],
)
def test_one_weighing_per_simulated_vehicle(protocol: str, transport: Transport, tmp_path: Path) -> None:
    epoch = time.time() + 0.5
    traffic = Traffic(seed=11, epoch=epoch, period_s=4.5, drive_in_s=1.0, dwell_s=2.2, drive_out_s=0.8,
                      settle_s=0.3)
    cfg = scale_cfg(url="loop://", protocol=protocol, stable_window_s=0.8, stable_tolerance=20.0)
    events: list[ScaleEvent] = []
    lock = threading.Lock()
    with ScaleSimulator(protocol, traffic, transport=transport, seed=5) as sim, \
            WeighingRecords(tmp_path / "weighings.sqlite") as records:
        cfg = cfg.model_copy(update={"url": sim.url})
        detector = WeighingDetector(cfg, "lane1-scale")
        record_ids: list[str] = []

        def on_reading(r: Reading) -> None:  # what the lane does with its scale
            for e in detector.feed(r):
                with lock:
                    events.append(e)
                if isinstance(e, Weighed):
                    record_ids.append(records.append(e.weighing, "lane1", "0.1.0"))

        driver = open_scale(cfg, "lane1-scale")
        driver.start(on_reading)
        try:
            done = traffic.vehicle(VEHICLES - 1).gone + 0.8
            assert wait_for(lambda: time.time() > done, done - time.time() + 1, step=0.1)
            with lock:
                assert sum(isinstance(e, VehicleOff) for e in events) >= VEHICLES, events
        finally:
            driver.close()
        assert driver.health().faults == 0
        assert records.verify() == [] and records.count() == VEHICLES

    with lock:
        seen = list(events)
    alarms = [e for e in seen if isinstance(e, ScaleAlarm)]
    assert alarms == []
    kinds = [type(e) for e in seen][: 3 * VEHICLES]
    assert kinds == [VehicleOn, Weighed, VehicleOff] * VEHICLES
    weighings = [e.weighing for e in seen if isinstance(e, Weighed)]
    for i, w in enumerate(weighings[:VEHICLES]):
        v = traffic.vehicle(i)
        assert w.gross == pytest.approx(v.gross_kg, abs=20), (i, w.gross, v.gross_kg)
        assert v.loaded <= w.taken_at <= v.depart + 0.3
        assert w.protocol == protocol and w.readings and w.stable_span_s >= 0.8
    assert len(set(record_ids)) == VEHICLES
