"""Soak: the demo post under load for a long time, with the broker restarted and a camera and a scale
dropped again and again; exits non-zero unless every check holds at the end.

    ./dev bench soak                          # 3 minutes (CI)
    ./dev bench soak --minutes 240 --json soak.json     # what the README's figures come from: hours
    ./dev bench soak --minutes 1 --lanes 2    # the smoke test's setting

The post (:mod:`bench._post`) has ``--lanes`` lanes with trucks every ``--period`` seconds. Lane 1's camera
is an MJPEG-over-HTTP camera served from this process (the lane's synthetic scene, JPEG-encoded: the
bytes a cheap IP camera sends); the other lanes use the synthetic source directly. In a cycle of
``--fault-every`` seconds:

- lane 1's camera server is shut down (connections cut, port refusing) for ``--drop`` seconds, then
  back, in the gap between two trucks;
- the last lane's scale simulator hangs up its pty for ``--drop`` seconds, then comes back, in a gap;
- the broker is stopped (SIGTERM, its persistence kept) for ``--outage`` seconds, whatever the lanes
  are doing, then started again.

Checks at the end (each printed; any failure exits 1):

- **exactly once**: every truck of the schedule is stored at HQ once (HQ store against the Traffic
  truth), seqs contiguous and nothing HQ could not match to a truck (plates read right or wrong are
  printed beside it, not checked: reading accuracy is ``bench/accuracy``'s figure);
- **memory flat**: the controller's RSS in the last quarter of the run against the first quarter
  (after model loading), within ``--rss-slack`` (default 10% + 16 MiB);
- **file descriptors flat**: the controller's open fds, last quarter against first, within 3;
- **journal bounded by retention**: the config sets ``retention_days`` to ``--retention-s``; delivered
  events older than that plus the housekeeping period must be gone from the journal. Checked only when
  the run is long enough for one to exist ("not exercised" otherwise).
"""

from __future__ import annotations

import argparse
import http.server
import logging
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2

from bench._common import header, interrupt_on_sigterm, table, write_json
from bench._post import BenchPost, check_delivery
from drivers.camera.synthetic import SceneRenderer
from drivers.sim.traffic import SimVehicle, Traffic
from edge.broker import free_port

log = logging.getLogger(__name__)

HOUSEKEEPING_S = 60.0
"""The controller's housekeeping period (edge/controller.py's status loop)."""


class MJPEGCameraServer:
    """An HTTP MJPEG camera showing a lane's synthetic scene; ``stop()`` kills it, ``start()`` revives it
    on the same port, as a camera that loses power and boots again."""

    def __init__(self, traffic: Traffic, seed: int, width: int, height: int, fps: float) -> None:
        self.renderer = SceneRenderer(traffic, width, height, noise=1.0, seed=seed)
        self.fps = fps
        self.port = free_port()
        self.sent = 0
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        cam = self
        stopping = self._stopping = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=--frame")
                self.end_headers()
                period = 1.0 / cam.fps
                next_at = time.time()
                try:
                    while not stopping.is_set():
                        image, _truth = cam.renderer.render(time.time())
                        ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
                        if not ok:
                            continue
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(jpg)).encode() + b"\r\n\r\n" + jpg.tobytes() + b"\r\n")
                        self.wfile.flush()
                        cam.sent += 1
                        next_at += period
                        stopping.wait(max(0.0, next_at - time.time()))
                except OSError:
                    pass
                self.close_connection = True

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="mjpeg-camera", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)


def next_gap(traffic: Traffic, after: float, need_s: float) -> float | None:
    """The first moment after ``after`` when the lane stays empty for ``need_s`` (None if traffic ends)."""
    i = max(0, traffic.index_at(after))
    while traffic.count is None or i < traffic.count:
        v = traffic.vehicle(i)
        start = max(after, v.gone + 0.5)
        if start + need_s <= v.arrive + traffic.period_s - 0.5:
            return start
        i += 1
    last = traffic.vehicle(traffic.count - 1) if traffic.count else None
    return max(after, last.gone + 0.5) if last is not None else after


def quarter_means(samples: list[tuple[float, float, int, int, int]], since: float, idx: int) -> tuple[float, float]:
    s = [x[idx] for x in samples if x[0] >= since]
    if len(s) < 4:
        return float("nan"), float("nan")
    q = max(1, len(s) // 4)
    return statistics.fmean(s[:q]), statistics.fmean(s[-q:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.soak", description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0, help="length of the traffic (documented runs: hours)")
    ap.add_argument("--lanes", type=int, default=2)
    ap.add_argument("--period", type=float, default=20.0, help="seconds between trucks on a lane")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--fps", type=float, default=25.0, help="synthetic cameras' frame rate")
    ap.add_argument("--mjpeg-size", default="1280x720", help="lane 1's MJPEG camera (JPEG encoding costs here)")
    ap.add_argument("--mjpeg-fps", type=float, default=10.0)
    ap.add_argument("--fault-every", type=float, default=45.0, help="seconds between fault cycles")
    ap.add_argument("--outage", type=float, default=8.0, help="seconds the broker stays down each time")
    ap.add_argument("--drop", type=float, default=3.0, help="seconds a camera or scale stays away")
    ap.add_argument("--retention-s", type=float, default=60.0, help="journal retention set in the config")
    ap.add_argument("--rss-slack", type=float, default=0.10, help="allowed RSS growth, fraction (+16 MiB)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON (- for stdout)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("edge.hq.subscriber").setLevel(logging.ERROR)
    header(f"Soak: {args.lanes} lane(s) for {args.minutes:g} min, a truck every {args.period:g} s per lane; "
           f"broker restart, camera drop, scale drop every {args.fault_every:g} s")
    count = max(1, int(args.minutes * 60 // args.period))
    w, h = (int(x) for x in args.mjpeg_size.split("x"))
    faults: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as d:
        tmp = Path(d)
        # Lane 1's schedule is what BenchPost will make (seed 1, epoch = post epoch): build the camera
        # first with the same start so both draw the same trucks.
        start_in = 10.0
        epoch = time.time() + start_in
        lane1 = Traffic(1, epoch, period_s=args.period, count=count, drive_in_s=3.0, dwell_s=4.0, drive_out_s=2.5)
        cam = MJPEGCameraServer(lane1, 1, w, h, args.mjpeg_fps)
        cam.start()
        post: BenchPost | None = None
        try:
            post = BenchPost(tmp, args.lanes, period_s=args.period, count=count, width=args.width,
                             height=args.height, fps=args.fps, epoch=epoch,
                             retention_days=args.retention_s / 86400, camera_urls={"lane1": cam.url})
            rc = soak(post, cam, args, faults)
        finally:
            if post is not None:
                post.close()
            cam.stop()
    return rc


def soak(post: BenchPost, cam: MJPEGCameraServer, args: argparse.Namespace, faults: list[dict[str, Any]]) -> int:
    expected = post.expected()
    total = sum(len(v) for v in expected.values())
    last_gone = max(v.gone for vs in expected.values() for v in vs)
    lane1 = post.lanes[0].traffic
    scale_lane = post.lanes[-1]
    cam_down: list[tuple[float, float]] = []
    next_cycle = post.epoch + 5.0
    while time.time() < last_gone:
        if not post.alive():
            print(f"the controller died:\n{post.log_tail()}", file=sys.stderr)
            break
        if time.time() < next_cycle:
            time.sleep(0.2)
            continue
        next_cycle += args.fault_every
        # 1. lane 1's camera dies between two trucks
        gap = next_gap(lane1, time.time(), args.drop + 1.0)
        if gap is not None and gap < last_gone:
            time.sleep(max(0.0, gap - time.time()))
            t = time.time()
            cam.stop()
            time.sleep(args.drop)
            cam.start()
            cam_down.append((t, time.time()))
            faults.append({"fault": "camera lane1 dropped", "at_s": round(t - post.epoch, 1), "down_s": args.drop})
        # 2. the last lane's scale hangs up between two trucks
        gap = next_gap(scale_lane.traffic, time.time(), args.drop + 1.0)
        if gap is not None and gap < last_gone:
            time.sleep(max(0.0, gap - time.time()))
            scale_lane.sim.disconnect(args.drop)
            faults.append({"fault": f"scale {scale_lane.id} hung up", "at_s": round(time.time() - post.epoch, 1),
                           "down_s": args.drop})
        # 3. the broker goes away (graceful stop: its persistence kept, like a service restart)
        t = time.time()
        post.broker.stop()
        time.sleep(args.outage)
        post.broker.start()
        faults.append({"fault": "broker restart", "at_s": round(t - post.epoch, 1), "down_s": args.outage})
    t_traffic_end = time.time()
    delivered = post.wait_delivered(total, timeout=60)
    # Let a backlog drain fully (HQ's ack at the post) before stopping.
    journal_path = post.data_dir / "post" / "journal.sqlite"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _journal(journal_path)["unacked"] > 0:
        time.sleep(0.2)
    exercised = time.time() - post.epoch > args.retention_s + HOUSEKEEPING_S + 15
    jr = _journal(journal_path, retention_s=args.retention_s if exercised else None)
    stats = post.stop_controller()
    events = post.events()
    problems: dict[str, int] = {}
    if post.store is not None:
        for p in post.store.problems(post.post_id, limit=100_000):
            problems[p.kind] = problems.get(p.kind, 0) + 1

    def camera_was_down(lane_id: str, v: SimVehicle) -> bool:
        return lane_id == "lane1" and any(a - 5 <= v.gone and v.arrive <= b + 5 for a, b in cam_down)

    check = check_delivery(post, events, expected, excuse_plate=camera_was_down)
    sampler = post.sampler
    assert sampler is not None
    since = time.monotonic() - (time.time() - post.epoch)
    rss0, rss1 = quarter_means(sampler.samples, since, 2)
    fd0, fd1 = quarter_means(sampler.samples, since, 3)
    th0, th1 = quarter_means(sampler.samples, since, 4)
    rss_ok = rss1 <= rss0 * (1 + args.rss_slack) + 16 * 1024 * 1024
    fd_ok = fd1 <= fd0 + 3
    uplink = (stats.get("status") or {}).get("uplink") or {}
    checks = [
        {"check": "every truck at HQ exactly once", "ok": delivered and check["missing"] == 0
         and check["duplicates"] == 0 and check["unmatched"] == 0 and check["seqs_contiguous"],
         "detail": f"{check['delivered']}/{check['expected']} trucks, {check['duplicates']} duplicate(s), "
                   f"{check['unmatched']} unmatched, seqs contiguous: {check['seqs_contiguous']}"
                   + (f"; missing {check['missing_list']}" if check["missing_list"] else "")},
        {"check": "controller RSS flat", "ok": rss_ok,
         "detail": f"first quarter {rss0 / 2**20:.1f} MiB, last quarter {rss1 / 2**20:.1f} MiB"},
        {"check": "controller fds flat", "ok": fd_ok, "detail": f"first quarter {fd0:.1f}, last quarter {fd1:.1f}"
                                                              f" (threads {th0:.0f} -> {th1:.0f})"},
    ]
    if jr["prunable"] is None:
        checks.append({"check": "journal bounded by retention", "ok": True,
                       "detail": f"not exercised: the run is shorter than retention ({args.retention_s:g} s) + "
                                 f"housekeeping ({HOUSEKEEPING_S:g} s); {jr['rows']} rows, {jr['bytes']} bytes"})
    else:
        checks.append({"check": "journal bounded by retention", "ok": jr["prunable"] == 0,
                       "detail": f"{jr['rows']} rows ({jr['bytes']} bytes); {jr['prunable']} delivered row(s) older"
                                 f" than retention {args.retention_s:g} s + housekeeping still there; pruned up to seq"
                                 f" {jr['pruned_upto']}"})
    # Reported, not a check: reading accuracy is the recognition bench's figure (bench/accuracy), and a
    # soak must not fail on one hard plate; what it guards is that nothing is lost or doubled.
    plates_line = (f"plates: {check['plates_right']} right, {check['plates_excused']} while lane1's camera was"
                   f" down, {check['plates_wrong']} wrong")
    if check["wrong_list"]:
        plates_line += f": {check['wrong_list']}"
    faults_rows = faults or [{"fault": "(none: run shorter than one fault cycle)"}]
    table(faults_rows, ["fault", "at_s", "down_s"], "Faults injected (seconds after the first truck)")
    figures = {"trucks": total, "events_at_hq": len(events), "traffic_s": round(t_traffic_end - post.epoch, 1),
               "rss_first_mib": round(rss0 / 2**20, 1), "rss_last_mib": round(rss1 / 2**20, 1),
               "fds_first": fd0, "fds_last": fd1, "uplink_reconnects": uplink.get("reconnects"),
               "uplink_resends": uplink.get("resends"), "hq_problems": problems, "journal": jr, "check": check}
    table([figures], ["trucks", "events_at_hq", "traffic_s", "rss_first_mib", "rss_last_mib", "fds_first",
                      "fds_last", "uplink_reconnects", "uplink_resends", "hq_problems"], "Figures")
    print(plates_line + "\n")
    table(checks, ["check", "ok", "detail"], "Checks")
    failed = [c["check"] for c in checks if not c["ok"]]
    print("soak: all checks passed" if not failed else f"soak: FAILED: {', '.join(failed)}")
    if failed:
        print(f"controller log tail:\n{post.log_tail()}", file=sys.stderr)
    write_json(args.json, "soak", {"checks": checks, "faults": faults, **figures, "settings": vars(args)})
    return 1 if failed else 0


def _journal(path: Path, retention_s: float | None = None) -> dict[str, Any]:
    """Rows, unacknowledged rows and (with ``retention_s``) delivered rows that pruning should have removed."""
    out: dict[str, Any] = {"rows": 0, "unacked": 0, "prunable": None, "bytes": 0, "pruned_upto": 0}
    if not path.exists():
        return out
    out["bytes"] = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        out["rows"] = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        out["unacked"] = db.execute("SELECT COUNT(*) FROM events WHERE acked_at IS NULL").fetchone()[0]
        row = db.execute("SELECT value FROM meta WHERE key = 'pruned_upto'").fetchone()
        out["pruned_upto"] = int(row[0]) if row else 0
        if retention_s is not None:
            cutoff = time.time() - retention_s - HOUSEKEEPING_S - 5
            out["prunable"] = db.execute(
                "SELECT COUNT(*) FROM events WHERE acked_at IS NOT NULL AND created_at < ?", (cutoff,)
            ).fetchone()[0]
    finally:
        db.close()
    return out


if __name__ == "__main__":
    interrupt_on_sigterm()
    sys.exit(main())
