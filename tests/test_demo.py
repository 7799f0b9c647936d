"""The README's first command: a whole post on this machine, events arriving at an HQ subscriber."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drivers.sim.traffic import Traffic
from edge import demo
from edge.broker import BrokerHandle
from tests.conftest import clear_retained_posts


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _event(v: Any, *, plate: str, gross: float | None, left_at: float) -> dict[str, Any]:
    weighing = {"gross": gross, "unit": "kg"} if gross is not None else None
    return {
        "post_id": "uz-test", "lane_id": "lane1", "seq": 1,
        "plate": {"text": plate, "display": plate, "country": v.country, "confidence": 0.99},
        "weighing": weighing, "weighed_at": _iso(v.loaded + 3.0) if weighing else None,
        "first_seen": _iso(v.arrive + 0.5), "left_at": _iso(left_at),
    }


def test_the_printer_tells_each_outcome_apart() -> None:
    """A technician watching the demo must see which truck went wrong, and why."""
    traffic = Traffic(seed=2, epoch=1_800_000_000.0)
    v = traffic.vehicle(3)
    out = io.StringIO()
    printer = demo.Printer({"lane1": traffic}, stream=out)
    printer(_event(v, plate=v.plate, gross=v.gross_kg, left_at=v.gone))
    printer(_event(v, plate=v.plate, gross=v.gross_kg + 500, left_at=v.gone))
    printer(_event(v, plate=v.plate, gross=None, left_at=v.gone))  # left before the weight settled
    printer(_event(v, plate=v.plate, gross=None, left_at=v.loaded + 1.0))  # the post stopped under it
    printer(_event(v, plate="X" + v.plate, gross=None, left_at=v.gone))
    marks = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    assert marks == [
        "ok",
        "WEIGHT MISMATCH",
        "no weighing (the scale raised its alarm)",
        "closed while on the scale (the post stopped)",
        "PLATE MISMATCH; no weighing (the scale raised its alarm)",
    ]
    assert (printer.count, printer.correct_plates, printer.correct_weights, printer.closed_on_scale) == (5, 4, 1, 1)


@pytest.mark.slow
@pytest.mark.broker
def test_the_demo_runs_a_whole_post(tmp_path: Path, mqtt_broker: BrokerHandle,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Two lanes for 40 s: every truck that drove off reaches HQ with its plate and weight right."""
    rc = demo.main(["--duration", "40", "--period", "10", "--data-dir", str(tmp_path),
                    "--broker", f"{mqtt_broker.host}:{mqtt_broker.port}"])
    out, err = capsys.readouterr()
    post = re.search(r"post controller (\S+) running", err)
    clear_retained_posts(mqtt_broker.host, mqtt_broker.port, [post.group(1)] if post else [])
    assert rc == 0, err[-3000:]
    summary = re.search(r"demo: (\d+) event\(s\) at HQ; plate right (\d+), weight right (\d+)"
                        r"(?: \((\d+) closed at shutdown while on the scale\))?", err)
    assert summary, err[-3000:]
    events, plates, weights, on_scale = (int(g or 0) for g in summary.groups())
    assert events >= 3, out  # trucks depart 15 and 20 s after the first arrives, then every 10 s a lane
    assert plates == events, out
    assert weights + on_scale == events, out
    assert out.count("HQ <- ") == events
