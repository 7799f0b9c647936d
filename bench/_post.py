"""A whole post for the benches: private Mosquitto, per lane a scale simulator on a pty and a synthetic
camera, the controller in its own process, and an HQ subscriber storing into SQLite in this process.

The controller runs in a child process (``python -m bench._post worker``), as ``customs-edge run`` does,
so that its CPU, memory and file descriptors can be read from /proc without the simulators, the broker
or HQ in the figures. The worker is the real :class:`edge.controller.PostController`; it only adds
measurement: the age of each frame when the plate reader finishes with it (capture timestamp to end of
read, so waiting for the shared reader lock is included), and writes its status as JSON every second.

Truth comes from :class:`drivers.sim.traffic.Traffic`, the schedule the camera draws and the scale
weighs: :func:`check_delivery` matches HQ's stored events to the vehicles that really crossed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._common import ProcSampler, percentile
from drivers.scale.simulator import ScaleSimulator
from drivers.sim.traffic import SimVehicle, Traffic
from edge.broker import BrokerHandle, start_private_broker
from edge.hq.store import SqliteEventStore
from edge.hq.subscriber import HQSubscriber
from edge.outbox.signing import PostKey

log = logging.getLogger(__name__)

PROTOCOLS = ["ascii", "mettler-continuous"]
TIMING = {"drive_in_s": 3.0, "dwell_s": 4.0, "drive_out_s": 2.5}


def ts(iso: str | None) -> float | None:
    return None if not iso else datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass
class LaneSpec:
    id: str
    traffic: Traffic
    sim: ScaleSimulator
    camera_url: str
    extra: dict[str, Any] = field(default_factory=dict)


def camera_url(lane_id: str, traffic: Traffic, width: int, height: int, fps: float) -> str:
    count = "" if traffic.count is None else f"&count={traffic.count}"
    return (f"synthetic://{lane_id}?seed={traffic.seed}&epoch={traffic.epoch:.3f}&period={traffic.period_s}"
            f"&drive_in={traffic.drive_in_s}&dwell={traffic.dwell_s}&drive_out={traffic.drive_out_s}"
            f"&width={width}&height={height}&fps={fps}{count}")


def write_config(path: Path, *, post_id: str, broker: BrokerHandle, lanes: list[LaneSpec], data_dir: Path,
                 read_fps: float, threads: int = 2, retention_days: float | None = None,
                 ack_timeout_s: float = 10) -> None:
    out = ["[post]", f'id = "{post_id}"', "[storage]", f'data_dir = "{data_dir}"']
    if retention_days is not None:
        out.append(f"retention_days = {retention_days}")
    out += ["[broker]", f'host = "{broker.host}"', f"port = {broker.port}", f"ack_timeout_s = {ack_timeout_s}",
            "[recognition]", f"threads = {threads}"]
    for lane in lanes:
        out += ["[[lanes]]", f'id = "{lane.id}"', "  [[lanes.cameras]]", '  name = "front"',
                f'  url = "{lane.camera_url}"', f"  read_fps = {read_fps}", "  roi = [0.1, 0.25, 0.8, 0.75]",
                "  [lanes.scale]", f'  url = "{lane.sim.device_path}"', f'  protocol = "{lane.sim.protocol_name}"',
                "  [lanes.crossing]", "  pre_roll_s = 4", "  post_roll_s = 1"]
    path.write_text("\n".join(out) + "\n")


class BenchPost:
    """Everything of one measured post; ``close()`` stops all of it (also after a failure)."""

    def __init__(self, tmp: Path, lanes: int, *, period_s: float, count: int | None, width: int = 1920,
                 height: int = 1080, fps: float = 25.0, read_fps: float = 5.0, start_in_s: float = 10.0,
                 retention_days: float | None = None, broker: BrokerHandle | None = None,
                 camera_urls: dict[str, str] | None = None, ack_timeout_s: float = 10,
                 epoch: float | None = None) -> None:
        self.tmp = tmp
        self.data_dir = tmp / f"post-{uuid.uuid4().hex[:6]}"
        self.data_dir.mkdir(parents=True)
        self.post_id = f"bench-{uuid.uuid4().hex[:8]}"
        self._own_broker = broker is None
        self.broker = broker or start_private_broker("127.0.0.1", data_dir=self.data_dir / "broker", kind="mosquitto")
        self.lanes: list[LaneSpec] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.hq: HQSubscriber | None = None
        self.store: SqliteEventStore | None = None
        self.sampler: ProcSampler | None = None
        self.hq_times: dict[str, float] = {}
        self.epoch = time.time() + start_in_s if epoch is None else epoch
        try:
            for i in range(lanes):
                lane_id = f"lane{i + 1}"
                # Lanes staggered so they do not ask the shared reader for the same instant.
                traffic = Traffic(i + 1, self.epoch + i * period_s / lanes, period_s=period_s, count=count, **TIMING)
                sim = ScaleSimulator(PROTOCOLS[i % 2], traffic, transport="pty", seed=i + 1)
                sim.start()
                url = (camera_urls or {}).get(lane_id) or camera_url(lane_id, traffic, width, height, fps)
                self.lanes.append(LaneSpec(lane_id, traffic, sim, url))
            self.config = self.data_dir / "post.toml"
            write_config(self.config, post_id=self.post_id, broker=self.broker, lanes=self.lanes,
                         data_dir=self.data_dir / "post", read_fps=read_fps, retention_days=retention_days,
                         ack_timeout_s=ack_timeout_s)
            key = PostKey.load_or_create(self.data_dir / "post" / "keys" / "post_ed25519.pem")
            self.store = SqliteEventStore(self.data_dir / "hq.sqlite")
            self.hq = HQSubscriber(self.broker.host, self.broker.port, self.store,
                                   share_group=f"bench{uuid.uuid4().hex[:6]}", keys={self.post_id: key.public},
                                   on_event=self._on_hq_event)
            self.hq.start()
            self.stats_path = self.data_dir / "worker-stats.json"
            self.log_path = self.data_dir / "controller.log"
            with open(self.log_path, "wb") as logf:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "bench._post", "worker", "--config", str(self.config),
                     "--stats", str(self.stats_path), "--since", str(self.epoch)],
                    stdout=logf, stderr=subprocess.STDOUT)
            self.sampler = ProcSampler(self.proc.pid, 1.0).start()
        except BaseException:
            self.close()
            raise

    def _on_hq_event(self, payload: dict[str, Any]) -> None:
        self.hq_times.setdefault(payload["event_id"], time.time())

    def lane_sim(self, lane_id: str) -> ScaleSimulator:
        return next(lane.sim for lane in self.lanes if lane.id == lane_id)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def worker_stats(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.stats_path.read_text()))
        except (OSError, ValueError):
            return {}

    def events(self) -> list[dict[str, Any]]:
        """Every event HQ stored for this post, with HQ's ``received_at``, in seq order."""
        db = sqlite3.connect(f"file:{self.data_dir / 'hq.sqlite'}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT payload, received_at FROM events WHERE post_id = ? ORDER BY seq",
                              (self.post_id,)).fetchall()
        finally:
            db.close()
        out = []
        for payload, received in rows:
            ev = json.loads(payload)
            ev["_received_at"] = float(received)
            out.append(ev)
        return out

    def journal_rows(self) -> dict[str, float]:
        """event_id -> the journal's commit time (``created_at``) at the post."""
        path = self.data_dir / "post" / "journal.sqlite"
        if not path.exists():
            return {}
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return {str(e): float(t) for e, t in db.execute("SELECT event_id, created_at FROM events")}
        finally:
            db.close()

    def expected(self, until: float | None = None) -> dict[str, list[SimVehicle]]:
        """Per lane, the vehicles that were gone from the lane by ``until`` (default: all of ``count``)."""
        out: dict[str, list[SimVehicle]] = {}
        for lane in self.lanes:
            tr = lane.traffic
            if tr.count is not None and until is None:
                out[lane.id] = [tr.vehicle(i) for i in range(tr.count)]
            else:
                end = until if until is not None else time.time()
                out[lane.id] = [v for v in tr.vehicles_between(tr.epoch - 1, end) if v.gone <= end]
        return out

    def wait_delivered(self, expected: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.store is not None and self.store.count(self.post_id) >= expected:
                return True
            if not self.alive():
                return False
            time.sleep(0.2)
        return False

    def stop_controller(self) -> dict[str, Any]:
        """SIGTERM the controller (it flushes open crossings), wait, and return its last figures."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.sampler is not None:
            self.sampler.stop()
        return self.worker_stats()

    def close(self) -> None:
        self.stop_controller()
        if self.hq is not None:
            self.hq.wait_idle(3.0)
            self.hq.stop()
            self.hq = None
        if self.store is not None:
            self.store.close()
            self.store = None
        for lane in self.lanes:
            lane.sim.stop()
        if self._own_broker:
            self.broker.close()

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def vehicle_of(lane: LaneSpec, ev: dict[str, Any]) -> SimVehicle | None:
    """The vehicle an event is about: the one on the scale when it was weighed, else when it left."""
    for key in ("weighed_at", "left_at", "first_seen"):
        t = ts(ev.get(key))
        if t is not None:
            v = lane.traffic.vehicle_at(t)
            if v is not None:
                return v
    # A crossing closed by the post-roll after the vehicle's 'gone': the last vehicle gone before it.
    t = ts(ev.get("left_at"))
    if t is not None:
        i = lane.traffic.index_at(t)
        for j in (i, i - 1):
            if j >= 0 and (lane.traffic.count is None or j < lane.traffic.count):
                v = lane.traffic.vehicle(j)
                if v.arrive <= t <= v.gone + 5:
                    return v
    return None


def capture_fps(stats: dict[str, Any], t_from: float) -> dict[str, float]:
    """Frames each camera thread captured per second from ``t_from`` to the controller's last status."""
    hist = [(float(t), f) for t, f in stats.get("frames", []) if t >= t_from]
    if len(hist) < 2:
        return {}
    (t0, f0), (t1, f1) = hist[0], hist[-1]
    return {cam: round((f1[cam] - f0.get(cam, 0)) / (t1 - t0), 2) for cam in f1 if t1 > t0}


def check_delivery(post: BenchPost, events: list[dict[str, Any]], expected: dict[str, list[SimVehicle]],
                   excuse_plate: Any = None) -> dict[str, Any]:
    """Match HQ's events to the truth: each expected vehicle exactly once, and its plate read right.

    ``excuse_plate(lane_id, vehicle)`` -> True for vehicles whose plate could not be seen (camera down).
    """
    lanes = {lane.id: lane for lane in post.lanes}
    seen: dict[tuple[str, int], int] = {}
    unmatched = 0
    plate_ok = plate_wrong = plate_excused = 0
    wrong: list[str] = []
    ids = [e["event_id"] for e in events]
    for ev in events:
        lane = lanes.get(ev.get("lane_id", ""))
        v = vehicle_of(lane, ev) if lane is not None else None
        if v is None or lane is None:
            unmatched += 1
            continue
        k = (lane.id, v.index)
        seen[k] = seen.get(k, 0) + 1
        if seen[k] > 1:
            continue
        read = (ev.get("plate") or {}).get("text")
        if read == v.plate:
            plate_ok += 1
        elif excuse_plate is not None and excuse_plate(lane.id, v):
            plate_excused += 1
        else:
            plate_wrong += 1
            wrong.append(f"{lane.id}#{v.index}: read {read!r}, drove {v.plate!r}")
    want = {(lane_id, v.index) for lane_id, vs in expected.items() for v in vs}
    missing = sorted(want - set(seen))
    dups = sum(n - 1 for n in seen.values() if n > 1)
    return {
        "expected": len(want), "delivered": len(want & set(seen)), "missing": len(missing),
        "duplicates": dups + (len(ids) - len(set(ids))), "unmatched": unmatched,
        "plates_right": plate_ok, "plates_wrong": plate_wrong, "plates_excused": plate_excused,
        "missing_list": [f"{a}#{b}" for a, b in missing][:20], "wrong_list": wrong[:20],
        "seqs_contiguous": [e["seq"] for e in events] == list(range(1, len(events) + 1)),
    }


# -- the controller process ------------------------------------------------------------------------


def worker(config: Path, stats_path: Path, since: float = 0.0) -> int:
    """The real controller, plus frame-age measurement; figures to ``stats_path`` every second.

    Frame ages count from ``since`` (the first truck): the reader's first calls warm its models up and
    are not what a lane sees in service."""
    from edge.config import load_config
    from edge.controller import PostController

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_config(config)
    controller = PostController(cfg)
    local = threading.local()
    ages: dict[str, list[float]] = {}
    read_ms: dict[str, list[float]] = {}
    lock = threading.Lock()
    reader = controller.reader
    original_read = reader.read

    def timed_read(image: Any, roi: Any = None, **kw: Any) -> Any:
        t0 = time.perf_counter()
        out = original_read(image, roi=roi, **kw)
        done = time.time()
        lane = getattr(local, "lane", None)
        captured = getattr(local, "ts", None)
        if lane is not None and captured is not None and captured >= since:
            with lock:
                ages.setdefault(lane, []).append(done - captured)
                read_ms.setdefault(lane, []).append((time.perf_counter() - t0) * 1000)
        return out

    reader.read = timed_read  # type: ignore[method-assign]
    started = time.time()
    controller.start()
    for lane in controller.lanes:
        for src in lane.cameras.values():
            original_latest = src.latest

            def latest(after_seq: int = -1, timeout: float = 1.0, _orig: Any = original_latest,
                       _lane: str = lane.id) -> Any:
                frame = _orig(after_seq=after_seq, timeout=timeout)
                if frame is not None:
                    local.lane = _lane
                    local.ts = frame.timestamp
                return frame

            src.latest = latest  # type: ignore[method-assign]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    signal.signal(signal.SIGINT, lambda *_a: stop.set())

    last_status: dict[str, Any] = {}
    frames: list[tuple[float, dict[str, int]]] = []

    def write(final: bool = False) -> None:
        if not final:
            last_status.clear()
            last_status.update(controller.status())
            frames.append((time.time(), {f"{lane['lane']}/{c['name']}": int(c["frames"])
                                         for lane in last_status.get("lanes", []) for c in lane["cameras"]}))
        st = last_status
        with lock:
            per_lane = {
                lane: {"reads": len(a), "age_p50_ms": round(1000 * (percentile(a, 50) or 0), 1),
                       "age_p99_ms": round(1000 * (percentile(a, 99) or 0), 1),
                       "age_max_ms": round(1000 * max(a), 1) if a else None,
                       "read_p50_ms": round(percentile(read_ms[lane], 50) or 0, 1)}
                for lane, a in ages.items()
            }
        doc = {"time": time.time(), "elapsed_s": time.time() - started, "status": st, "reads": per_lane,
               "frames": frames}
        tmp = stats_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, default=str))
        tmp.replace(stats_path)

    parent = os.getppid()
    while not stop.wait(1.0):
        if os.getppid() != parent:
            log.warning("bench worker: the bench process is gone; stopping")
            break
        try:
            write()
        except Exception:
            log.exception("bench worker: cannot write figures")
    write()
    controller.stop()
    write(final=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench._post")
    ap.add_argument("mode", choices=["worker"])
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--stats", type=Path, required=True)
    ap.add_argument("--since", type=float, default=0.0)
    args = ap.parse_args(argv)
    return worker(args.config, args.stats, args.since)


if __name__ == "__main__":
    sys.exit(main())
