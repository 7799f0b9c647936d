"""A whole post on this one machine: ``./dev demo``.

What runs (one process tree):

- a real MQTT broker: the Mosquitto already listening on 127.0.0.1:1883, or one started for the demo;
- per lane, a scale simulator speaking the indicator's bytes on a real pseudo-terminal (lane 1 a
  continuous ASCII indicator, lane 2 Mettler Toledo's continuous output, lane 3 MT-SICS, polled; then
  again), weighing the trucks of a traffic schedule that the lane's synthetic camera draws;
- the post controller (``customs-edge run``) in a child process, with a config file written here and
  validated like any other: cameras, ONNX plate reading, lane fusion, journal, MQTT uplink;
- an HQ subscriber in this process that verifies, stores and acknowledges every event and prints it,
  next to what the simulator really drove through, so a wrong read is visible.

Ctrl-C stops everything cleanly. ``--duration`` stops after that many seconds (tests, CI).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from drivers.scale.simulator import ScaleSimulator
from drivers.sim.traffic import Traffic
from edge.broker import ensure_broker
from edge.hq.store import SqliteEventStore
from edge.hq.subscriber import HQSubscriber
from edge.outbox.signing import PostKey

log = logging.getLogger(__name__)

PROTOCOLS = ["ascii", "mettler-continuous", "mt-sics"]


def write_config(
    path: Path, *, post_id: str, broker: tuple[str, int], lanes: list[dict[str, Any]], data_dir: Path
) -> None:
    """The demo's post config, in the same TOML a real post uses (see deploy/config/)."""
    out = [
        "# Written by the demo; see deploy/config/post-example.toml for a real post.",
        "[post]",
        f'id = "{post_id}"',
        'name = "Demo post"',
        "[storage]",
        f'data_dir = "{data_dir}"',
        "[broker]",
        f'host = "{broker[0]}"',
        f"port = {broker[1]}",
        "ack_timeout_s = 10",
        "[recognition]",
        "threads = 2",
    ]
    for lane in lanes:
        out += [
            "[[lanes]]",
            f'id = "{lane["id"]}"',
            "  [[lanes.cameras]]",
            '  name = "front"',
            f'  url = "{lane["camera_url"]}"',
            f"  read_fps = {lane['read_fps']}",
            "  roi = [0.1, 0.25, 0.8, 0.75]",
            "  [lanes.scale]",
            f'  url = "{lane["scale_url"]}"',
            f'  protocol = "{lane["protocol"]}"',
            "  [lanes.crossing]",
            "  pre_roll_s = 4",
            "  post_roll_s = 1",
        ]
    path.write_text("\n".join(out) + "\n")


def _epoch_s(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class Printer:
    """Prints each event as HQ stores it, with what the simulator really drove through."""

    def __init__(self, traffic: dict[str, Traffic], stream: Any = None, as_json: bool = False) -> None:
        self.traffic = traffic
        self.stream = stream or sys.stdout
        self.as_json = as_json
        self.lock = threading.Lock()
        self.count = 0
        self.correct_plates = 0
        self.correct_weights = 0
        self.closed_on_scale = 0
        """Crossings the post closed while their truck still stood on the scale: only at shutdown."""

    def truth(self, payload: dict[str, Any]) -> Any:
        """The simulated vehicle this event is about: the one on the lane when it was weighed (or seen)."""
        lane = self.traffic.get(payload["lane_id"])
        when = payload.get("weighed_at") or payload.get("first_seen")
        if lane is None or not when:
            return None
        return lane.vehicle_at(_epoch_s(when))

    def __call__(self, payload: dict[str, Any]) -> None:
        v = self.truth(payload)
        plate = payload.get("plate") or {}
        weighing = payload.get("weighing") or {}
        read = plate.get("text")
        plate_ok = v is not None and read == v.plate
        weight_ok = v is not None and weighing.get("gross") is not None and abs(weighing["gross"] - v.gross_kg) <= 50
        # Closed before its truck drove off: the post stopped while it stood there (every other
        # crossing without a weighing is a truck that left the scale before its weight settled).
        on_scale = v is not None and not weighing and bool(payload.get("left_at")) and \
            _epoch_s(payload["left_at"]) < v.depart
        with self.lock:
            self.count += 1
            self.correct_plates += plate_ok
            self.correct_weights += weight_ok
            self.closed_on_scale += on_scale
            if self.as_json:
                self.stream.write(json.dumps(payload) + "\n")
            else:
                shown = plate.get("display") or "(unreadable)"
                country = plate.get("country") or "??"
                conf = plate.get("confidence")
                gross = weighing.get("gross")
                unit = weighing.get("unit", "")
                truth = f"{v.display} {v.gross_kg:.0f} kg" if v is not None else "?"
                if on_scale:
                    mark = "closed while on the scale (the post stopped)"
                elif not weighing:
                    mark = "no weighing (the scale raised its alarm)"
                else:
                    mark = "ok" if weight_ok else "WEIGHT MISMATCH"
                if not plate_ok:
                    mark = f"PLATE MISMATCH; {mark}" if mark != "ok" else "PLATE MISMATCH"
                self.stream.write(
                    f"HQ <- {payload['post_id']}/{payload['lane_id']} #{payload.get('seq')}  "
                    f"{shown:<14} {country:<2} conf {conf if conf is not None else '-':<6}  "
                    f"gross {gross if gross is not None else '-'} {unit}  "
                    f"seen {payload['first_seen'][11:19]} left {payload['left_at'][11:19]}  "
                    f"[sim: {truth}] {mark}\n"
                )
            self.stream.flush()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="customs-edge demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lanes", type=int, default=2)
    p.add_argument("--period", type=float, default=12.0, help="seconds between trucks, per lane")
    p.add_argument("--broker", default="127.0.0.1:1883", help="host:port; started if nothing listens")
    p.add_argument("--data-dir", type=Path, help="default: a fresh temporary folder")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--read-fps", type=float, default=3.0)
    p.add_argument("--json", action="store_true", help="print HQ's events as JSON lines")
    args = p.parse_args(argv)
    if args.lanes < 1 or args.lanes > 8:
        p.error("--lanes must be 1..8")

    host, _, port_s = args.broker.rpartition(":")
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="customs-demo-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    say = lambda msg: print(f"demo: {msg}", file=sys.stderr, flush=True)  # noqa: E731

    broker = ensure_broker(host or "127.0.0.1", int(port_s or 1883), data_dir=data_dir / "broker")
    say(f"broker {broker.host}:{broker.port} ({'started for the demo' if broker.owned else 'already running'})")

    epoch = time.time() + 8.0  # the controller loads its models before the first truck arrives
    post_id = f"uz-demo-{os.getpid() % 10000:04d}"
    traffic: dict[str, Traffic] = {}
    sims: list[ScaleSimulator] = []
    lanes: list[dict[str, Any]] = []
    for i in range(args.lanes):
        lane_id = f"lane{i + 1}"
        seed = i + 1
        # Stagger lanes so the two cameras don't ask the reader for the same instant.
        lane_epoch = epoch + i * args.period / args.lanes
        traffic[lane_id] = Traffic(seed, lane_epoch, period_s=args.period)
        protocol = PROTOCOLS[i % len(PROTOCOLS)]
        sim = ScaleSimulator(protocol, traffic[lane_id], transport="pty", seed=seed)
        sim.start()
        sims.append(sim)
        lanes.append({
            "id": lane_id,
            "camera_url": f"synthetic://{lane_id}?seed={seed}&epoch={lane_epoch:.3f}&period={args.period}",
            "scale_url": sim.device_path,
            "protocol": protocol,
            "read_fps": args.read_fps,
        })
        say(f"{lane_id}: synthetic camera, scale simulator ({protocol}) on {sim.device_path}")

    config_path = data_dir / "post.toml"
    write_config(config_path, post_id=post_id, broker=(broker.host, broker.port), lanes=lanes,
                 data_dir=data_dir / "post")

    # Enrol the post's signing key at HQ, as a real commissioning does (deploy/keys.md): HQ then
    # accepts only events signed by this post, chained without gaps.
    post_key = PostKey.load_or_create(data_dir / "post" / "keys" / "post_ed25519.pem")
    store = SqliteEventStore(data_dir / "hq.sqlite")
    printer = Printer(traffic, as_json=args.json)
    hq = HQSubscriber(broker.host, broker.port, store, share_group=f"demo{os.getpid()}",
                      keys={post_id: post_key.public}, on_event=printer)
    hq.start()
    say(f"HQ subscriber storing into {data_dir / 'hq.sqlite'}")

    controller = subprocess.Popen(
        [sys.executable, "-m", "edge.cli.main", "run", "--config", str(config_path)],
        start_new_session=False,
    )
    say(f"post controller {post_id} running (pid {controller.pid}); config {config_path}")
    say("press Ctrl-C to stop" if args.duration is None else f"running for {args.duration:.0f} s")

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    old_handlers = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    deadline = None if args.duration is None else time.monotonic() + args.duration
    rc = 0
    while not stop.wait(0.5):
        if controller.poll() is not None:
            say(f"the controller exited with {controller.returncode}")
            rc = 1
            break
        if deadline is not None and time.monotonic() >= deadline:
            break

    say("stopping")
    if controller.poll() is None:
        controller.send_signal(signal.SIGINT)
        try:
            controller.wait(20)
        except subprocess.TimeoutExpired:
            controller.kill()
            controller.wait()
    # Let the last events (flushed by the controller on its way out) reach HQ.
    hq.wait_idle(5.0)
    hq.stop()
    for sim in sims:
        sim.stop()
    store.close()
    broker.close()
    for sig, handler in old_handlers.items():
        signal.signal(sig, handler)
    say(
        f"{printer.count} event(s) at HQ; plate right {printer.correct_plates}, "
        f"weight right {printer.correct_weights}"
        + (f" ({printer.closed_on_scale} closed at shutdown while on the scale)" if printer.closed_on_scale else "")
    )
    return rc


if __name__ == "__main__":
    sys.exit(main())
