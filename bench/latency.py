"""End-to-end latency: from the moment a truck leaves the scale to its event stored at HQ, under load.

    ./dev bench latency                          # 1 lane (baseline), then 3 lanes; 4 trucks per lane
    ./dev bench latency --lanes 1 2 4 --trucks 6 --json latency.json

Each run is a whole post (:mod:`bench._post`: 1080p/25 fps synthetic cameras, scale simulators on ptys,
the controller in its own process, a private Mosquitto, the HQ subscriber storing into SQLite). Per
event it takes these clocks, all wall-clock on this one machine:

- ``off scale``: when the truck's last axle rolled off the platform (the Traffic schedule, which the
  camera draws and the scale weighs: the frame in which the vehicle leaves the scale; the figure a user
  asks for is from here), and ``gone``: when it is also out of the camera's view;
- ``left_at``: when the lane decided the crossing ended (in the event);
- ``committed``: the journal's commit at the post (``created_at``);
- ``at HQ``: HQ's ``received_at`` for the stored row.

and prints median and p99 of off scale -> HQ and of each leg. The lane closes
a crossing ``post_roll_s`` (1 s here, as in the demo) after the scale is empty, on purpose: late plate
reads still count, so that second is part of the figure by design. The first lane count is the
baseline; the others are given as a ratio of its median.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import header, interrupt_on_sigterm, percentile, ratio, table, write_json
from bench._post import BenchPost, check_delivery, ts, vehicle_of
from drivers.sim.traffic import SimVehicle, Traffic


def run_n(tmp: Path, n: int, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, list[float]]]:
    post = BenchPost(tmp, n, period_s=args.period, count=args.trucks, read_fps=args.read_fps,
                     start_in_s=args.warmup)
    try:
        expected = post.expected()
        total = sum(len(v) for v in expected.values())
        last_gone = max(v.gone for vs in expected.values() for v in vs)
        post.wait_delivered(total, timeout=max(0.0, last_gone - time.time()) + 30)
        events = post.events()
        committed = post.journal_rows()
        post.stop_controller()
        check = check_delivery(post, events, expected)
        lanes = {lane.id: lane for lane in post.lanes}
        legs: dict[str, list[float]] = {"off scale -> HQ": [], "gone -> HQ": [], "off scale -> left_at": [],
                                        "left_at -> committed": [], "committed -> HQ": [], "left_at -> HQ": []}
        for ev in events:
            lane = lanes.get(ev["lane_id"])
            v = vehicle_of(lane, ev) if lane is not None else None
            left = ts(ev.get("left_at"))
            hq = ev["_received_at"]
            c = committed.get(ev["event_id"])
            if v is not None and lane is not None:
                off = off_scale(lane.traffic, v)
                legs["off scale -> HQ"].append(hq - off)
                legs["gone -> HQ"].append(hq - v.gone)
                if left is not None:
                    legs["off scale -> left_at"].append(left - off)
            if left is not None:
                legs["left_at -> HQ"].append(hq - left)
                if c is not None:
                    legs["left_at -> committed"].append(c - left)
            if c is not None:
                legs["committed -> HQ"].append(hq - c)
        row: dict[str, Any] = {"lanes": n, "events": len(events), "expected": total,
                               "plates right": check["plates_right"]}
        for k in ("off scale -> HQ", "committed -> HQ"):
            row[f"{k} p50 ms"] = _ms(percentile(legs[k], 50))
            row[f"{k} p99 ms"] = _ms(percentile(legs[k], 99))
        row["wrong"] = check["wrong_list"]
        row["missing"] = check["missing_list"]
        return row, legs
    finally:
        post.close()


def off_scale(traffic: Traffic, v: SimVehicle) -> float:
    """When the platform load of ``v`` first reads zero after it starts to drive off (10 ms resolution)."""
    t = v.depart
    while t < v.gone and traffic.weight_at(t) > 0:
        t += 0.01
    return t


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.latency", description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 3], help="lane counts; the first is the baseline")
    ap.add_argument("--trucks", type=int, default=4, help="trucks per lane")
    ap.add_argument("--period", type=float, default=15.0, help="seconds between trucks on a lane")
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--read-fps", type=float, default=5.0)
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON (- for stdout)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("edge.hq.subscriber").setLevel(logging.ERROR)
    header(f"End-to-end latency: truck off the scale -> event stored at HQ; 1080p/25 fps lanes, a truck every "
           f"{args.period:g} s per lane, {args.trucks} per lane")
    rows: list[dict[str, Any]] = []
    legs_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as d:
        for n in args.lanes:
            print(f"  running {n} lane(s) ...", file=sys.stderr, flush=True)
            row, legs = run_n(Path(d), n, args)
            rows.append(row)
            for k, vals in legs.items():
                legs_rows.append({"lanes": n, "leg": k, "n": len(vals), "p50 ms": _ms(percentile(vals, 50)),
                                  "p99 ms": _ms(percentile(vals, 99)),
                                  "max ms": _ms(max(vals)) if vals else None})
    base = rows[0]["off scale -> HQ p50 ms"]
    for r in rows:
        r["ratio p50 vs first"] = ratio(r["off scale -> HQ p50 ms"], base)
        for what in ("wrong", "missing"):
            if r[what]:
                print(f"  {r['lanes']} lane(s), {what}: {r[what]}", file=sys.stderr)
    table(rows, ["lanes", "events", "expected", "plates right", "off scale -> HQ p50 ms", "off scale -> HQ p99 ms",
                 "ratio p50 vs first", "committed -> HQ p50 ms", "committed -> HQ p99 ms"],
          "Truck off the scale -> stored at HQ")
    table(legs_rows, ["lanes", "leg", "n", "p50 ms", "p99 ms", "max ms"], "Per leg")
    write_json(args.json, "latency", {"rows": rows, "legs": legs_rows, "settings": vars(args)})
    return 0 if all(r["events"] >= r["expected"] for r in rows) else 1


if __name__ == "__main__":
    interrupt_on_sigterm()
    sys.exit(main())
