"""Delivery: journal commits with synchronous=FULL, publishing through the journal against bare paho, and
how long a post's backlog takes to drain after an outage.

    ./dev bench delivery                         # defaults: 1000 commits, 2000 publishes, 1 h at 240 and 2400 ev/h
    ./dev bench delivery --commits 300 --publish 500 --backlog-rates 240 --json out.json
    ./dev bench delivery --profile               # where the uplink's time goes (cProfile of its thread)

1. **Journal commit rate**: :meth:`edge.outbox.journal.Journal.append` (seq, chain, Ed25519 signature,
   one fsync'd commit each) against a bare SQLite INSERT of the same bytes with the same pragmas (WAL,
   ``synchronous=FULL``): the ratio is what signing and chaining cost on top of the disk.
2. **Publish rate**, all on a private Mosquitto: bare paho-mqtt QoS 1 with the same in-flight window
   as the uplink (``broker.max_inflight``) publishing the journal's own payload bytes, against
   (a) :class:`edge.outbox.uplink.Uplink` draining a pre-filled journal and (b) events appended one by
   one while the uplink publishes them (``live``: the commit is in the path). The uplink's rate counts
   an event when HQ's end-to-end ack covers it; here the acker is a bare paho client that acks the
   highest seq it has seen every 10 ms (so HQ's own speed, measured by ``bench/hq_throughput``, does not
   enter), and (c) the same with the real :class:`edge.hq.subscriber.HQSubscriber` storing into SQLite.
   Goal: uplink >= 0.8 of bare.
3. **Backlog drain**: a journal pre-filled with one hour of events of a post (240/h = 4 lanes at one
   truck a minute; 2400/h the 10x case), then the uplink and the real HQ subscriber start, and the
   clock runs until HQ's ack covers the last event at the post.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import pstats
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench._common import header, interrupt_on_sigterm, percentile, ratio, sample_event, table, write_json
from edge.broker import BrokerHandle, start_private_broker
from edge.config import BrokerSection
from edge.hq.store import SqliteEventStore
from edge.hq.subscriber import HQSubscriber
from edge.outbox.journal import Journal
from edge.outbox.signing import PostKey
from edge.outbox.uplink import Uplink
from edge.topics import Topics, post_of

log = logging.getLogger(__name__)


# -- 1. journal commits ---------------------------------------------------------------------------


def bench_commits(tmp: Path, n: int) -> list[dict[str, Any]]:
    key = PostKey.generate()
    journal = Journal(tmp / f"commit-{uuid.uuid4().hex[:6]}.sqlite", key, "bench-post")
    payloads = [sample_event(i, "bench-post") for i in range(n)]
    lat: list[float] = []
    t0 = time.perf_counter()
    raws: list[bytes] = []
    for p in payloads:
        t = time.perf_counter()
        raws.append(journal.append(p).raw)
        lat.append(time.perf_counter() - t)
    journal_s = time.perf_counter() - t0
    journal.close()

    # Baseline: the same bytes into a table of the same shape, same pragmas, one commit each.
    db = sqlite3.connect(tmp / f"bare-{uuid.uuid4().hex[:6]}.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT UNIQUE, payload TEXT)")
    bare_lat: list[float] = []
    t0 = time.perf_counter()
    for i, raw in enumerate(raws):
        t = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO events VALUES (?, ?, ?)", (i + 1, str(uuid.uuid4()), raw.decode()))
        db.execute("COMMIT")
        bare_lat.append(time.perf_counter() - t)
    bare_s = time.perf_counter() - t0
    db.close()
    rows: list[dict[str, Any]] = []
    for name, secs, ls in (("bare sqlite insert (FULL)", bare_s, bare_lat), ("Journal.append", journal_s, lat)):
        rows.append({"what": name, "events": n, "ev/s": round(n / secs, 1),
                     "p50 ms": round(1000 * (percentile(ls, 50) or 0), 2),
                     "p99 ms": round(1000 * (percentile(ls, 99) or 0), 2)})
    rows[1]["ratio"] = ratio(rows[1]["ev/s"], rows[0]["ev/s"])
    rows[0]["ratio"] = 1.0
    rows[0]["bytes/event"] = rows[1]["bytes/event"] = round(sum(len(r) for r in raws) / len(raws))
    return rows


# -- 2. publishing ------------------------------------------------------------------------------


class BareAcker:
    """Stands in for HQ's ack only, in its own process (so it takes no GIL from the publisher measured):
    subscribes to the post's events and publishes, retained, the highest contiguous seq seen every 10 ms
    while it grows. The bare run has it subscribed too, so the broker delivers every message in both."""

    def __init__(self, broker: BrokerHandle, post_id: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.delivery", "--acker", broker.host, str(broker.port), post_id],
            stdout=subprocess.PIPE, stdin=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != b"ready":
            self.close()
            raise RuntimeError("acker could not subscribe")

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.close()  # EOF: the acker clears its retained ack and exits
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def acker_main(host: str, port: int, post_id: str) -> int:
    topics = Topics(post_id)
    state = {"max": 0, "sent": 0}
    ready = threading.Event()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        seq = int(json.loads(msg.payload)["seq"])
        if seq == state["max"] + 1:  # contiguous, as HQ's ack is
            state["max"] = seq

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"acker-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    c.on_connect = lambda cl, *_a: cl.subscribe(topics.events_all, qos=1)
    c.on_subscribe = lambda *_a: ready.set()
    c.on_message = on_message
    c.connect(host, port)
    c.loop_start()
    if not ready.wait(10):
        return 1
    print("ready", flush=True)
    stop = threading.Event()

    def wait_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_eof, daemon=True).start()
    while not stop.wait(0.01):
        if state["max"] > state["sent"]:
            state["sent"] = state["max"]
            c.publish(topics.ack, json.dumps({"post_id": post_id, "seq": state["sent"]}).encode(), qos=1,
                      retain=True)
    c.publish(topics.ack, b"", qos=1, retain=True).wait_for_publish(2)
    c.disconnect()
    c.loop_stop()
    return 0


def bare_publish(broker: BrokerHandle, items: list[tuple[str, bytes]], inflight: int) -> float:
    """Seconds for bare paho QoS 1 to get every PUBACK, window ``inflight``, after the CONNACK."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bare-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(inflight)
    c.max_queued_messages_set(0)
    connected = threading.Event()
    c.on_connect = lambda *_a: connected.set()
    post_id = post_of(items[0][0])
    assert post_id is not None
    acker = BareAcker(broker, post_id)  # a receiver, as in the uplink's runs
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        if not connected.wait(10):
            raise RuntimeError("bare publisher could not connect")
        t0 = time.perf_counter()
        infos = [c.publish(topic, data, qos=1) for topic, data in items]
        for info in infos:
            info.wait_for_publish(120)
        return time.perf_counter() - t0
    finally:
        c.disconnect()
        c.loop_stop()
        acker.close()


def _broker_section(broker: BrokerHandle, inflight: int) -> BrokerSection:
    return BrokerSection.model_validate({"host": broker.host, "port": broker.port, "max_inflight": inflight,
                                         "ack_timeout_s": 30})


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.005)


def _profiled(uplink: Uplink, prof: cProfile.Profile) -> None:
    """Run the uplink's network thread under cProfile (cProfile sees only the thread it runs in)."""
    original = uplink._run

    def run() -> None:
        prof.runcall(original)

    uplink._run = run  # type: ignore[method-assign]


def uplink_backlog(broker: BrokerHandle, tmp: Path, n: int, inflight: int, hq: str,
                   prof: cProfile.Profile | None = None) -> tuple[float, list[tuple[str, bytes]]]:
    """Pre-fill a journal with ``n`` events, start the uplink: seconds from CONNACK to HQ's ack of all."""
    post_id = f"bench-{uuid.uuid4().hex[:6]}"
    key = PostKey.generate()
    journal = Journal(tmp / f"{post_id}.sqlite", key, post_id)
    items = []
    for i in range(n):
        ev = journal.append(sample_event(i, post_id))
        items.append((Topics(post_id).events(ev.lane_id), ev.raw))
    secs = _drain(broker, journal, post_id, key, n, inflight, hq, tmp, prof)
    journal.close()
    return secs, items


def _drain(broker: BrokerHandle, journal: Journal, post_id: str, key: PostKey, n: int, inflight: int, hq: str,
           tmp: Path, prof: cProfile.Profile | None = None) -> float:
    acker: BareAcker | None = None
    sub: HQSubscriber | None = None
    store: SqliteEventStore | None = None
    if hq == "bare":
        acker = BareAcker(broker, post_id)
    else:
        store = SqliteEventStore(tmp / f"hq-{post_id}.sqlite")
        sub = HQSubscriber(broker.host, broker.port, store, share_group=f"b{uuid.uuid4().hex[:6]}",
                           keys={post_id: key.public})
        sub.start()
    uplink = Uplink(_broker_section(broker, inflight), post_id, journal)
    if prof is not None:
        _profiled(uplink, prof)
    try:
        uplink.start()
        _wait(lambda: uplink.connected, 15, "the uplink's CONNACK")
        t0 = time.perf_counter()
        _wait(lambda: journal.last_ack() >= n, 600, f"HQ's ack of {n} events")
        return time.perf_counter() - t0
    finally:
        uplink.stop()
        if acker is not None:
            acker.close()
        if sub is not None:
            sub.stop()
        if store is not None:
            store.close()


def uplink_live(broker: BrokerHandle, tmp: Path, n: int, inflight: int) -> float:
    """Events appended one by one (fsync each) while the uplink publishes: first append to HQ's ack of all."""
    post_id = f"bench-{uuid.uuid4().hex[:6]}"
    key = PostKey.generate()
    journal = Journal(tmp / f"{post_id}.sqlite", key, post_id)
    payloads = [sample_event(i, post_id) for i in range(n)]
    acker = BareAcker(broker, post_id)
    uplink = Uplink(_broker_section(broker, inflight), post_id, journal)
    try:
        uplink.start()
        _wait(lambda: uplink.connected, 15, "the uplink's CONNACK")
        t0 = time.perf_counter()
        for p in payloads:
            journal.append(p)
            uplink.kick()
        _wait(lambda: journal.last_ack() >= n, 600, f"HQ's ack of {n} events")
        return time.perf_counter() - t0
    finally:
        uplink.stop()
        acker.close()
        journal.close()


def bench_publish(tmp: Path, n: int, inflight: int, repeat: int, prof: cProfile.Profile | None) -> list[dict[str, Any]]:
    """Each variant ``repeat`` times, interleaved, on one broker; the median run is reported (the
    spread says how noisy this machine was)."""
    broker = start_private_broker("127.0.0.1", data_dir=tmp / "broker-pub", kind="mosquitto")
    runs: dict[str, list[float]] = {"bare": [], "backlog": [], "live": [], "hq": []}
    try:
        for i in range(repeat):
            backlog_s, items = uplink_backlog(broker, tmp, n, inflight, "bare", prof if i == 0 else None)
            runs["backlog"].append(backlog_s)
            runs["bare"].append(bare_publish(broker, items, inflight))
            runs["live"].append(uplink_live(broker, tmp, n, inflight))
            runs["hq"].append(uplink_backlog(broker, tmp, n, inflight, "hq")[0])
    finally:
        broker.close()
    names = {"bare": f"bare paho QoS 1 (window {inflight})", "backlog": "uplink, pre-filled journal, bare acker",
             "live": "journal.append + uplink live, bare acker", "hq": "uplink, pre-filled journal, HQSubscriber"}
    rows: list[dict[str, Any]] = []
    for key, secs in runs.items():
        med = sorted(secs)[len(secs) // 2]
        rows.append({"what": names[key], "events": n, "runs": len(secs), "seconds": round(med, 3),
                     "ev/s": round(n / med, 1),
                     "spread ev/s": f"{n / max(secs):,.0f}..{n / min(secs):,.0f}"})
    for r in rows:
        r["ratio"] = ratio(r["ev/s"], rows[0]["ev/s"])
    return rows


# -- 3. backlog drain -----------------------------------------------------------------------------


def bench_drain(tmp: Path, rates: list[int], hours: float, inflight: int) -> list[dict[str, Any]]:
    rows = []
    for rate in rates:
        n = max(1, round(rate * hours))
        broker = start_private_broker("127.0.0.1", data_dir=tmp / f"broker-drain-{rate}", kind="mosquitto")
        try:
            post_id = f"bench-{uuid.uuid4().hex[:6]}"
            key = PostKey.generate()
            journal = Journal(tmp / f"{post_id}.sqlite", key, post_id)
            start = time.time() - hours * 3600
            t0 = time.perf_counter()
            for i in range(n):  # the hour the link was down, one event at a time as the lanes made them
                journal.append(sample_event(i, post_id, start + i * 3600 / rate))
            fill_s = time.perf_counter() - t0
            secs = _drain(broker, journal, post_id, key, n, inflight, "hq", tmp)
            journal.close()
        finally:
            broker.close()
        rows.append({"backlog": f"{hours:g} h at {rate}/h", "events": n, "drain s": round(secs, 2),
                     "ev/s": round(n / secs, 1), "fill s": round(fill_s, 2),
                     "x real time": round(hours * 3600 / secs)})
    return rows


def _filesystem(path: Path) -> str:
    """The device and filesystem type of ``path`` from /proc/mounts (fsync cost depends on both)."""
    best = ("?", "?", "")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, fs = line.split()[:3]
            if str(path.resolve()).startswith(mnt.rstrip("/") + "/") and len(mnt) >= len(best[2]):
                best = (dev, fs, mnt)
    except OSError:
        pass
    return f"{best[0]} {best[1]} on {best[2] or '?'}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.delivery", description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=1000, help="journal commits to time")
    ap.add_argument("--publish", type=int, default=2000, help="events per publish run")
    ap.add_argument("--inflight", type=int, default=BrokerSection.model_fields["max_inflight"].default,
                    help="in-flight window (the uplink's broker.max_inflight; bare paho gets the same)")
    ap.add_argument("--repeat", type=int, default=3, help="publish runs per variant (median reported)")
    ap.add_argument("--backlog-rates", type=int, nargs="*", default=[240, 2400], help="events per hour")
    ap.add_argument("--hours", type=float, default=1.0, help="outage length for the backlog drain")
    ap.add_argument("--dir", type=Path, help="where journals are written (default: the system temp dir); point it"
                    " at the disk the post's data_dir is on: the commit rate is that disk's fsync rate")
    ap.add_argument("--profile", action="store_true", help="print the uplink thread's cProfile (pre-filled run)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON (- for stdout)")
    ap.add_argument("--acker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.acker:
        return acker_main(args.acker[0], int(args.acker[1]), args.acker[2])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    header("Delivery: journal commits, publishing through the journal, backlog drain")
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-delivery-", dir=args.dir) as d:
        tmp = Path(d)
        print(f"journals on: {tmp} ({_filesystem(tmp)})\n")
        if args.commits > 0:
            figures["commits"] = bench_commits(tmp, args.commits)
            table(figures["commits"], ["what", "events", "ev/s", "p50 ms", "p99 ms", "ratio", "bytes/event"],
                  "1. Journal commit (WAL, synchronous=FULL, one commit per event)")
        prof = cProfile.Profile() if args.profile else None
        if args.publish > 0:
            figures["publish"] = bench_publish(tmp, args.publish, args.inflight, args.repeat, prof)
            table(figures["publish"], ["what", "events", "runs", "seconds", "ev/s", "spread ev/s", "ratio"],
                  "2. Publish to a private Mosquitto (QoS 1); uplink counted at HQ's end-to-end ack; goal ratio >= 0.8")
        if args.backlog_rates:
            figures["drain"] = bench_drain(tmp, args.backlog_rates, args.hours, args.inflight)
            table(figures["drain"], ["backlog", "events", "drain s", "ev/s", "x real time", "fill s"],
                  "3. Backlog drain after an outage: uplink + HQSubscriber (SQLite), until HQ's ack covers all")
        if prof is not None:
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
            print("uplink thread profile (pre-filled journal, bare acker), by cumulative time:")
            print(out.getvalue())
    write_json(args.json, "delivery", figures)
    return 0


if __name__ == "__main__":
    interrupt_on_sigterm()
    sys.exit(main())
