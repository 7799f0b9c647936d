"""Each bench runs end to end on its smallest setting and prints sane figures.

Timings are never asserted (they depend on the machine and on what else runs); what is asserted is that
every figure is produced, that it is a number where one is due, and that what must hold whatever the
machine holds: every event delivered, every crossing at HQ, the soak's checks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.broker]

SMALL_POST = ["--width", "1280", "--height", "720", "--fps", "10", "--warmup", "6"]


def load(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    assert doc["machine"]["cores"] >= 1 and doc["command"].startswith("./dev bench ")
    return dict(doc["figures"])


def test_delivery_bench(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.delivery import main

    out = tmp_path / "delivery.json"
    assert main(["--commits", "50", "--publish", "200", "--repeat", "1", "--backlog-rates", "240",
                 "--hours", "0.25", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "machine:" in printed and "Journal.append" in printed and "bare paho" in printed
    f = load(out)
    assert [r["events"] for r in f["commits"]] == [50, 50]
    assert all(r["ev/s"] > 0 and r["p99 ms"] >= r["p50 ms"] > 0 for r in f["commits"])
    assert len(f["publish"]) == 4 and all(r["ev/s"] > 0 and r["events"] == 200 for r in f["publish"])
    assert f["publish"][0]["ratio"] == 1.0 and all(r["ratio"] > 0 for r in f["publish"])
    (drain,) = f["drain"]
    assert drain["events"] == 60 and drain["drain s"] > 0


def test_lanes_bench_one_lane_reads_every_crossing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.lanes import main

    out = tmp_path / "lanes.json"
    rc = main(["--lanes", "1", "--trucks", "1", "--period", "10", *SMALL_POST, "--json", str(out)])
    printed = capsys.readouterr().out
    assert "largest N with every crossing read" in printed
    (row,) = load(out)["rows"]
    assert rc == 0, row
    assert row["every crossing read"] and row["delivered"] == row["crossings"] == 1 and row["dups"] == 0
    assert row["cpu %"] > 0 and row["rss MiB"] > 50
    assert row["reads/s/lane"] > 0 and row["age p99 ms"] >= row["age p50 ms"] > 0
    assert row["capture fps min"] > 0


def test_latency_bench(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.latency import main

    out = tmp_path / "latency.json"
    args = ["--lanes", "1", "--trucks", "1", "--period", "10", "--warmup", "6", "--json", str(out)]
    assert main(args) == 0
    assert "off scale -> HQ" in capsys.readouterr().out
    f = load(out)
    (row,) = f["rows"]
    assert row["events"] == row["expected"] == 1
    # The event cannot reach HQ before the journal committed it, nor be committed before the lane closed it.
    legs = {r["leg"]: r for r in f["legs"]}
    assert legs["committed -> HQ"]["p50 ms"] > 0 and legs["left_at -> committed"]["p50 ms"] > 0
    assert row["off scale -> HQ p99 ms"] >= row["off scale -> HQ p50 ms"]


def test_soak_passes_its_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.soak import main

    out = tmp_path / "soak.json"
    rc = main(["--minutes", "0.5", "--lanes", "2", "--period", "15", "--fault-every", "60", "--outage", "3",
               "--drop", "2", "--width", "1280", "--height", "720", "--fps", "10", "--json", str(out)])
    printed = capsys.readouterr().out
    f = load(out)
    assert rc == 0, printed
    assert {c["check"] for c in f["checks"]} >= {"every truck at HQ exactly once", "controller RSS flat",
                                                 "controller fds flat", "journal bounded by retention"}
    assert {x["fault"].split()[0] for x in f["faults"]} == {"broker", "camera", "scale"}
    assert f["events_at_hq"] == f["trucks"] == 4
