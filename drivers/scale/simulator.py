"""A truck-scale indicator simulated at the wire: real bytes on a pseudo-terminal or a TCP port.

The load on the platform comes from :class:`drivers.sim.traffic.Traffic` (the same schedule the
synthetic camera draws), so the scale weighs the truck the camera shows. On top of it the simulator
behaves like an indicator: load-cell noise, a low-pass filter, rounding to the display division, its
own motion detection, zero drift, overload above capacity; and on demand garbage bytes, a forced
overload, and disconnects (TCP: clients dropped and the port refusing; pty: hang-up, or silence).

Technicians run it as ``edgectl scale simulate --protocol NAME (--tcp PORT | --pty)`` to check a
lane's wiring and configuration before the real scale is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import random
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Literal

from drivers.scale.base import Reading
from drivers.scale.protocols import ScaleProtocol, get_protocol
from drivers.sim.traffic import Traffic

log = logging.getLogger(__name__)

Transport = Literal["pty", "tcp"]


class _Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = b""
        self.streaming = False


class ScaleSimulator:
    """Serves ``protocol`` at ``rate_hz`` frames a second (continuous) or on request (polled).

    ``weight_fn(t)`` overrides the traffic schedule (kg at wall-clock ``t``); with neither, the
    platform is empty. ``url`` is what goes into a lane's ``[scale] url``.
    """

    def __init__(
        self,
        protocol: str,
        traffic: Traffic | None = None,
        *,
        transport: Transport = "pty",
        port: int = 0,
        weight_fn: Callable[[float], float] | None = None,
        rate_hz: float = 10.0,
        noise_kg: float | None = None,
        division: float = 10.0,
        capacity: float = 80000.0,
        zero_drift_kg_per_min: float = 0.0,
        motion_window_s: float = 0.5,
        filter_s: float = 0.25,
        unit: str = "kg",
        address: int | None = None,
        seed: int = 0,
        link_path: str | None = None,
    ) -> None:
        self.protocol_name = protocol
        self.proto: ScaleProtocol = get_protocol(protocol, address=address, unit=unit)
        self.traffic = traffic
        self.transport = transport
        self._want_port = port
        self.weight_fn = weight_fn
        self.rate_hz = rate_hz
        self.noise_kg = noise_kg if noise_kg is not None else (traffic.noise_kg if traffic else 2.0)
        self.division = division
        self.capacity = capacity
        self.zero_drift_kg_per_min = zero_drift_kg_per_min
        self.motion_window_s = motion_window_s
        self.filter_s = filter_s
        """The indicator's low-pass filter: it shows the mean of the load cell over this span. Every
        real indicator filters. Unfiltered, noise of 2 kg flipped a 10 kg display up and down by a
        division often enough to raise the motion flag while a truck stood still: 34 of 10,000
        simulated trucks got no weight, among them one in every 10-minute demo (0 turns it off)."""
        self._raw: deque[tuple[float, float]] = deque()
        self.unit = unit
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._history: deque[tuple[float, float]] = deque()
        self._zero_offset = 0.0
        self._drift_t0 = time.time()
        self._overload_until = 0.0
        self._down_until = 0.0
        self._down_mode = "hangup"
        self._is_down = False
        self._garbage: list[bytes] = []
        self.frames_sent = 0
        self.requests_answered = 0
        self._last = Reading(0.0, unit, False)
        # TCP
        self._listener: socket.socket | None = None
        self._clients: list[_Client] = []
        self.port = 0
        # pty
        self._master: int | None = None
        self._slave: int | None = None
        self._pty_in = b""
        self._pty_streaming = False
        self._tmpdir: str | None = None
        self._link_path = link_path
        self.pts_path: str | None = None

    # ------------------------------------------------------------------ public

    @property
    def url(self) -> str:
        """The ``[scale] url`` that reaches this simulator."""
        if self.transport == "tcp":
            return f"socket://127.0.0.1:{self.port}"
        return self.device_path

    @property
    def device_path(self) -> str:
        """A stable path to the pty (a symlink to the current /dev/pts/N, which changes after a hang-up)."""
        if self._link_path is None:
            raise RuntimeError("device_path exists only for a started pty simulator")
        return self._link_path

    def start(self) -> ScaleSimulator:
        if self._thread is not None:
            return self
        if self.transport == "tcp":
            self._listen()
        else:
            if self._link_path is None:
                self._tmpdir = tempfile.mkdtemp(prefix="scale-sim-")
                self._link_path = os.path.join(self._tmpdir, "ttyS-sim")
            self._open_pty()
        self._last = self.reading_at(time.time())  # a poll may come before the first tick
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"scale-sim-{self.protocol_name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self._close_transport()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> ScaleSimulator:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def overload(self, seconds: float) -> None:
        """Report overload for ``seconds`` whatever the load."""
        with self._lock:
            self._overload_until = time.time() + seconds

    def garbage(self, data: bytes | int = 64) -> None:
        """Send line noise (random bytes, or exactly ``data``) before the next frame."""
        blob = data if isinstance(data, bytes) else bytes(self._rng.randrange(256) for _ in range(data))
        with self._lock:
            self._garbage.append(blob)

    def disconnect(self, seconds: float, mode: Literal["hangup", "silent"] = "hangup") -> None:
        """Go away for ``seconds``: TCP drops clients and refuses; pty hangs up (or just goes silent)."""
        with self._lock:
            self._down_until = time.time() + seconds
            self._down_mode = mode

    def set_zero_offset(self, kg: float) -> None:
        with self._lock:
            self._zero_offset = kg

    def set_drift(self, kg_per_min: float) -> None:
        with self._lock:
            self._zero_offset += self._drift(time.time())
            self._drift_t0 = time.time()
            self.zero_drift_kg_per_min = kg_per_min

    @property
    def connected_clients(self) -> int:
        return len(self._clients)

    def reading_at(self, t: float) -> Reading:
        """What the indicator shows at ``t`` (advances its motion detector: call once a tick)."""
        if self.weight_fn is not None:
            load = self.weight_fn(t)
        elif self.traffic is not None:
            load = self.traffic.weight_at(t)
        else:
            load = 0.0
        with self._lock:
            forced = t < self._overload_until
            offset = self._zero_offset + self._drift(t)
        self._raw.append((t, load + offset + self._rng.gauss(0.0, self.noise_kg)))
        while len(self._raw) > 1 and self._raw[0][0] <= t - self.filter_s:
            self._raw.popleft()
        measured = sum(x for _, x in self._raw) / len(self._raw)
        shown = round(measured / self.division) * self.division
        self._history.append((t, shown))
        while self._history and self._history[0][0] < t - self.motion_window_s:
            self._history.popleft()
        values = [w for _, w in self._history]
        stable = max(values) - min(values) <= self.division
        if forced or measured > self.capacity + 9 * self.division:
            return Reading(None, self.unit, False, overload=True)
        if measured < -20 * self.division:
            return Reading(None, self.unit, False, underload=True)
        return Reading(float(shown), self.unit, stable, zero=shown == 0)

    # ------------------------------------------------------------------ internals

    def _drift(self, t: float) -> float:
        return self.zero_drift_kg_per_min * (t - self._drift_t0) / 60.0

    def _listen(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port or self._want_port))
        s.listen(4)
        s.setblocking(False)
        self.port = s.getsockname()[1]
        self._listener = s

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: bytes pass as on a serial line
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.pts_path = os.ttyname(slave)
        assert self._link_path is not None
        tmp = self._link_path + ".new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(self.pts_path, tmp)
        os.replace(tmp, self._link_path)
        self._pty_in = b""
        self._pty_streaming = False

    def _close_transport(self) -> None:
        for c in self._clients:
            with contextlib.suppress(OSError):
                c.sock.close()
        self._clients = []
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    def _go_down(self, mode: str) -> None:
        if self.transport == "tcp" or mode == "hangup":
            self._close_transport()
            if self.transport == "pty" and self._link_path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._link_path)
        log.info("scale simulator %s: disconnected (%s)", self.protocol_name, mode)

    def _come_back(self) -> None:
        if self.transport == "tcp":
            if self._listener is None:
                self._listen()
        elif self._master is None:
            self._open_pty()
        log.info("scale simulator %s: back", self.protocol_name)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._serve()
            except Exception:  # keep serving: a technician's wiring check must not die silently
                log.exception("scale simulator %s failed; restarting its loop", self.protocol_name)
                self._stop.wait(0.5)

    def _serve(self) -> None:
        period = 1.0 / self.rate_hz
        next_tick = time.monotonic()
        while not self._stop.is_set():
            now = time.time()
            with self._lock:
                want_down = now < self._down_until
                mode = self._down_mode
            if want_down and not self._is_down:
                self._go_down(mode)
                self._is_down = True
            elif not want_down and self._is_down:
                self._come_back()
                self._is_down = False
            timeout = max(0.0, next_tick - time.monotonic())
            if self._is_down and self._master is None and self._listener is None:
                self._stop.wait(min(timeout, 0.05) or 0.01)
            else:
                self._service_input(timeout, answer=not self._is_down)
            if time.monotonic() >= next_tick:
                next_tick += period
                if next_tick < time.monotonic():
                    next_tick = time.monotonic() + period
                reading = self.reading_at(time.time())
                if not self._is_down:
                    self._tick(reading)
        self._close_transport()

    def _service_input(self, timeout: float, answer: bool = True) -> None:
        fds: list[int | socket.socket] = []
        if self._listener is not None:
            fds.append(self._listener)
        fds.extend(c.sock for c in self._clients)
        if self._master is not None:
            fds.append(self._master)
        if not fds:
            self._stop.wait(timeout)
            return
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except (OSError, ValueError):
            return
        for r in ready:
            if r is self._listener:
                self._accept()
            elif isinstance(r, socket.socket):
                self._client_input(r)
            elif r == self._master:
                self._pty_input(answer)

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        sock.setblocking(False)
        self._clients.append(_Client(sock))

    def _drop(self, client: _Client) -> None:
        with contextlib.suppress(OSError):
            client.sock.close()
        if client in self._clients:
            self._clients.remove(client)

    def _client_input(self, sock: socket.socket) -> None:
        client = next((c for c in self._clients if c.sock is sock), None)
        if client is None:
            return
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            self._drop(client)
            return
        if not data:
            self._drop(client)
            return
        if self.proto.polled:
            reply, client.inbuf, streaming = self.proto.serve(client.inbuf + data, self._current)
            if streaming is not None:
                client.streaming = streaming
            if reply:
                self.requests_answered += 1
                self._send_client(client, reply)

    def _pty_input(self, answer: bool = True) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 4096)
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return
            data = b""
        if not data or not self.proto.polled or not answer:
            return  # a silent indicator swallows requests
        reply, self._pty_in, streaming = self.proto.serve(self._pty_in + data, self._current)
        if streaming is not None:
            self._pty_streaming = streaming
        if reply:
            self.requests_answered += 1
            self._send_pty(reply)

    def _current(self) -> Reading:
        return self._last

    def _send_client(self, client: _Client, data: bytes) -> None:
        try:
            client.sock.sendall(data)
        except BlockingIOError:
            pass  # a client that does not read loses frames, as on a real line
        except OSError:
            self._drop(client)

    def _send_pty(self, data: bytes) -> None:
        if self._master is None:
            return
        try:
            os.write(self._master, data)
        except OSError:
            pass  # nobody reading and the buffer is full: the bytes are lost, as on a real line

    def _tick(self, reading: Reading) -> None:
        self._last = reading
        with self._lock:
            garbage, self._garbage = self._garbage, []
            silent = time.time() < self._down_until
        if silent:
            return
        frame = self.proto.encode(reading)
        blob = b"".join(garbage)
        if self.transport == "tcp":
            for c in list(self._clients):
                if blob:
                    self._send_client(c, blob)
                if not self.proto.polled or c.streaming:
                    self._send_client(c, frame)
        else:
            if blob:
                self._send_pty(blob)
            if not self.proto.polled or self._pty_streaming:
                self._send_pty(frame)
        self.frames_sent += 1


# ---------------------------------------------------------------------- CLI

_HELP = """commands (one a line on stdin): overload SECONDS | garbage [N] | disconnect SECONDS [silent] |
drift KG_PER_MIN | zero KG | weight KG (fixed load; 'weight traffic' resumes the schedule) | quit"""


def main(argv: list[str] | None = None) -> int:
    """``edgectl scale simulate``: serve a protocol until Ctrl-C; prints the URL to configure."""
    ap = argparse.ArgumentParser(prog="edgectl scale simulate", description=__doc__.split("\n\n")[0],
                                 epilog=_HELP)
    ap.add_argument("--protocol", default="ascii", help="protocol name (see drivers.scale.protocols)")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--tcp", type=int, metavar="PORT", help="serve on 127.0.0.1:PORT (0: any free port)")
    where.add_argument("--pty", action="store_true", help="serve on a pseudo-terminal (default)")
    ap.add_argument("--link", help="pty: also create this symlink to the pseudo-terminal")
    ap.add_argument("--seed", type=int, default=1, help="traffic seed (same as the synthetic camera's)")
    ap.add_argument("--epoch", type=float, default=None, help="traffic epoch (default: now)")
    ap.add_argument("--period", type=float, default=12.0, help="seconds between vehicles")
    ap.add_argument("--address", type=int, default=None, help="RS-485 address to prefix (ascii)")
    ap.add_argument("--rate", type=float, default=10.0, help="frames a second")
    args = ap.parse_args(argv)
    from edge.errors import ConfigError

    try:
        traffic = Traffic(args.seed, args.epoch if args.epoch is not None else time.time(), period_s=args.period)
        fixed: list[float] = []
        sim = ScaleSimulator(
            args.protocol, traffic, transport="tcp" if args.tcp is not None else "pty",
            port=args.tcp or 0, address=args.address, rate_hz=args.rate, link_path=args.link,
            weight_fn=lambda t: fixed[0] if fixed else traffic.weight_at(t),
        )
        sim.start()
    except (ConfigError, ValueError, OSError) as err:
        print(f"edgectl scale simulate: {err}", file=sys.stderr)
        return 2
    print(sim.url, flush=True)
    print(f"serving {args.protocol} at {args.rate:g} frames/s; {_HELP}", file=sys.stderr, flush=True)
    stop = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if in_main else None
    try:
        reader = threading.Thread(target=_commands, args=(sim, fixed, stop), daemon=True)
        reader.start()
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old)
        sim.stop()
    return 0


def _commands(sim: ScaleSimulator, fixed: list[float], stop: threading.Event) -> None:
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        cmd, args = words[0], words[1:]
        try:
            if cmd == "quit":
                stop.set()
                return
            if cmd == "overload":
                sim.overload(float(args[0]))
            elif cmd == "garbage":
                sim.garbage(int(args[0]) if args else 64)
            elif cmd == "disconnect":
                sim.disconnect(float(args[0]), "silent" if args[1:] == ["silent"] else "hangup")
            elif cmd == "drift":
                sim.set_drift(float(args[0]))
            elif cmd == "zero":
                sim.set_zero_offset(float(args[0]))
            elif cmd == "weight":
                fixed.clear()
                if args and args[0] != "traffic":
                    fixed.append(float(args[0]))
            else:
                print(f"unknown command {cmd!r}; {_HELP}", file=sys.stderr)
        except (IndexError, ValueError):
            print(f"bad arguments for {cmd!r}; {_HELP}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
