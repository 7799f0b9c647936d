"""How many events a second HQ verifies, stores and acknowledges; and how that grows with processes.

    ./dev bench hq_throughput                       # PostgreSQL (if it answers) and SQLite, 1/2/4 processes
    ./dev bench hq_throughput --events 2000 --procs 1 2 --modes bare pg --json

For each mode and process count this starts a private Mosquitto (MQTT v5), N HQ processes on ONE shared
subscription (``$share/<group>/customs/v1/+/events/+``) and one database, then publishes signed, chained
events from several simulated posts as fast as paho allows (QoS 1). Each HQ process runs the real
pipeline: :class:`edge.hq.subscriber.HQSubscriber` (JSON, shape check, Ed25519 + hash verify, durable
insert, chain walk, retained ack). The ``bare`` mode is a paho subscriber on the same shared
subscription that only counts: the ceiling this machine's broker and client library allow, against which
the HQ figures are given as a ratio.

The rate is events / (last stored - first stored) across all processes of a run. The publisher, the
broker, the database and the HQ processes share this machine's cores, so with few cores the process
count saturates early: the figures say what one box does, not what a cluster does.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench._common import sample_event
from edge.broker import start_private_broker
from edge.outbox.signing import GENESIS_HASH, PostKey, seal
from edge.topics import Topics, all_posts_events

PG_URL = os.environ.get("CUSTOMS_EDGE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
IDLE_S = 2.0


def make_events(posts: int, total: int) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    """Signed, chained events, posts interleaved (each post's own order kept), ready to publish."""
    keys = {f"bench-{i:03d}": PostKey.generate() for i in range(posts)}
    prev = dict.fromkeys(keys, GENESIS_HASH)
    seq = dict.fromkeys(keys, 0)
    out: list[tuple[str, bytes]] = []
    ids = list(keys)
    for n in range(total):
        post = ids[n % posts]
        seq[post] += 1
        lane = f"lane{seq[post] % 4 + 1}"
        body = {**sample_event(n, post, t=1_795_900_000.0 + n, lane_id=lane), "seq": seq[post]}
        sealed = seal(body, keys[post], prev[post])
        prev[post] = sealed["integrity"]["hash"]
        out.append((Topics(post).events(lane), json.dumps(sealed, separators=(",", ":")).encode()))
    return out, {p: k.public_b64 for p, k in keys.items()}


# -- worker process --------------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> int:
    """One HQ process (or one bare counter): runs until idle after the stream, then writes its figures."""
    times: list[float] = []
    group_topic = f"$share/{args.group}/{all_posts_events()}"
    ready = Path(args.out).with_suffix(".ready")
    hq: Any = None
    client: mqtt.Client | None = None
    if args.mode == "bare":
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=args.client_id, protocol=mqtt.MQTTv5)
        client.on_connect = lambda c, u, f, r, p: c.subscribe(group_topic, qos=1)
        client.on_subscribe = lambda c, u, m, r, p: ready.touch()
        client.on_message = lambda c, u, msg: times.append(time.monotonic())
        client.connect(args.host, args.port)
        client.loop_start()
    else:
        from edge.hq.query import open_store_url
        from edge.hq.subscriber import HQSubscriber

        # Gap reports are counted from the store afterwards; printing each would only slow the worker.
        logging.getLogger("edge.hq.subscriber").setLevel(logging.CRITICAL)
        keys = json.loads(Path(args.keys).read_text())
        store = open_store_url(args.store)
        hq = HQSubscriber(args.host, args.port, store, share_group=args.group, keys=keys,
                          on_event=lambda ev: times.append(time.monotonic()), client_id=args.client_id)
        hq.start(wait_s=10)
        if not hq.wait_subscribed(10):
            print("worker: not subscribed", file=sys.stderr)
            return 2
        ready.touch()
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if times and time.monotonic() - times[-1] > IDLE_S and Path(args.out).with_suffix(".done").exists():
            break
    stats = dict(hq.stats) if hq is not None else {"received": len(times)}
    if hq is not None:
        hq.stop()
        hq.store.close()
    if client is not None:
        client.disconnect()
        client.loop_stop()
    Path(args.out).write_text(json.dumps({"count": len(times), "first": times[0] if times else None,
                                          "last": times[-1] if times else None, "stats": stats}))
    return 0


# -- one run ---------------------------------------------------------------------------------------


def fresh_store(mode: str, tmp: Path) -> tuple[str, Any]:
    """A store URL for the run, and a cleanup callable."""
    if mode == "sqlite":
        return f"sqlite:///{tmp / f'hq-{uuid.uuid4().hex[:6]}.sqlite'}", lambda: None
    if mode == "pg":
        from edge.hq.store_pg import PostgresEventStore

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        url = f"{PG_URL}?schema={schema}"
        PostgresEventStore.from_url(url).close()  # migrate once, before the processes race to

        def drop() -> None:
            s = PostgresEventStore(PG_URL, schema=schema)
            s.drop_schema()
            s.close()

        return url, drop
    return "", lambda: None


def store_figures(url: str) -> tuple[int | None, int | None]:
    """(events stored, gap reports) of a run's store; gap reports are transient when a post's events
    are split across processes and one process stores seq n+1 before another has stored seq n."""
    if not url:
        return None, None
    from edge.hq.query import open_store_url

    s = open_store_url(url)
    try:
        return s.count(), sum(1 for p in s.problems(limit=1_000_000) if p.kind == "gap")
    finally:
        s.close()


def run_once(mode: str, procs: int, events: list[tuple[str, bytes]], keys_file: Path, tmp: Path,
             timeout: float) -> dict[str, Any]:
    broker = start_private_broker("127.0.0.1", data_dir=tmp / f"broker-{uuid.uuid4().hex[:6]}", kind="mosquitto")
    url, cleanup = fresh_store(mode, tmp)
    group = f"bench{uuid.uuid4().hex[:6]}"
    outs = [tmp / f"{group}-{i}.json" for i in range(procs)]
    workers = [
        subprocess.Popen([sys.executable, "-m", "bench.hq_throughput", "--worker", "--mode", mode,
                          "--host", broker.host, "--port", str(broker.port), "--group", group,
                          "--client-id", f"{group}-{i}", "--keys", str(keys_file), "--store", url,
                          "--out", str(out), "--timeout", str(timeout)])
        for i, out in enumerate(outs)
    ]
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{group}-pub", protocol=mqtt.MQTTv5)
    try:
        wait_until = time.monotonic() + 30
        while not all(o.with_suffix(".ready").exists() for o in outs):
            if time.monotonic() > wait_until or any(w.poll() is not None for w in workers):
                raise RuntimeError(f"{mode}: HQ processes did not subscribe")
            time.sleep(0.05)
        pub.max_inflight_messages_set(1000)
        pub.max_queued_messages_set(0)
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        t0 = time.monotonic()
        infos = [pub.publish(topic, data, qos=1) for topic, data in events]
        for info in infos:
            info.wait_for_publish(timeout)
        publish_s = time.monotonic() - t0
        for o in outs:
            o.with_suffix(".done").touch()
        for w in workers:
            w.wait(timeout + 30)
        results = [json.loads(o.read_text()) for o in outs if o.exists()]
    finally:
        pub.loop_stop()
        pub.disconnect()
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        broker.close()
    firsts = [r["first"] for r in results if r["first"] is not None]
    lasts = [r["last"] for r in results if r["last"] is not None]
    total = sum(r["count"] for r in results)
    span = (max(lasts) - min(firsts)) if firsts and lasts else float("nan")
    stored, gap_reports = store_figures(url)
    cleanup()
    return {
        "mode": mode, "procs": procs, "events": len(events), "handled": total, "stored": stored,
        "per_process": [r["count"] for r in results], "seconds": round(span, 3),
        "rate": round(total / span, 1) if span and span == span and span > 0 else None,
        "publish_rate": round(len(events) / publish_s, 1),
        "duplicates": sum(r["stats"].get("duplicates", 0) for r in results),
        "rejected": sum(r["stats"].get("rejected", 0) for r in results),
        "gap_reports": gap_reports,
    }


def pg_available() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg not installed"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except psycopg.Error as err:
        return str(err).strip().splitlines()[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.hq_throughput", description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--posts", type=int, default=10)
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--modes", nargs="+", default=["bare", "pg", "sqlite"], choices=["bare", "pg", "sqlite"])
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--json", action="store_true")
    # worker-only arguments
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--host", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--group", help=argparse.SUPPRESS)
    ap.add_argument("--client-id", help=argparse.SUPPRESS)
    ap.add_argument("--keys", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)

    modes = list(args.modes)
    if "pg" in modes and (why := pg_available()) is not None:
        print(f"skipping PostgreSQL: {why}", file=sys.stderr)
        modes.remove("pg")
    t_gen = time.monotonic()
    events, keys = make_events(args.posts, args.events)
    print(f"{len(events)} signed events from {args.posts} posts prepared in {time.monotonic() - t_gen:.1f} s; "
          f"{os.cpu_count()} CPU(s)", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hq-bench-") as d:
        tmp = Path(d)
        keys_file = tmp / "keys.json"
        keys_file.write_text(json.dumps(keys))
        for mode in modes:
            for n in args.procs:
                row = run_once(mode, n, events, keys_file, tmp, args.timeout)
                rows.append(row)
                print(f"  {mode:6s} x{n}: {row['rate']} ev/s ({row['handled']} handled, stored {row['stored']},"
                      f" split {row['per_process']})", file=sys.stderr)
    bare = {r["procs"]: r["rate"] for r in rows if r["mode"] == "bare"}
    for r in rows:
        b = bare.get(r["procs"])
        r["ratio_to_bare"] = round(r["rate"] / b, 3) if b and r["rate"] else None
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'mode':8s}{'procs':>6s}{'ev/s':>10s}{'ratio':>8s}{'stored':>8s}{'gaps':>6s}  split")
        for r in rows:
            ratio = f"{r['ratio_to_bare']:.2f}" if r["ratio_to_bare"] is not None else "-"
            stored = "-" if r["stored"] is None else str(r["stored"])
            gaps = "-" if r["gap_reports"] is None else str(r["gap_reports"])
            print(f"{r['mode']:8s}{r['procs']:>6d}{r['rate'] or 0:>10.0f}{ratio:>8s}{stored:>8s}{gaps:>6s}"
                  f"  {r['per_process']}")
    bad = [r for r in rows if r["handled"] < r["events"] or (r["stored"] is not None and r["stored"] != r["events"])]
    if bad:
        print(f"WARNING: {len(bad)} run(s) did not handle every event exactly once", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
