"""The serial driver against the simulator over real transports: pty, socket://, rfc2217://, loop://."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
import serial.rfc2217
from pydantic import ValidationError

from drivers.scale import open_scale
from drivers.scale.driver import SerialScaleDriver
from drivers.scale.simulator import ScaleSimulator, main
from edge.config import ScaleSection
from edge.errors import ConfigError
from tests.scale.helpers import Collector, free_port, scale_cfg, wait_for

W = 12340.0


@contextlib.contextmanager
def running(cfg: ScaleSection, **kw: float) -> Iterator[tuple[SerialScaleDriver, Collector]]:
    d = SerialScaleDriver(cfg, "s1", **kw) if kw else open_scale(cfg, "s1")
    assert isinstance(d, SerialScaleDriver)
    got = Collector()
    d.start(got)
    try:
        yield d, got
    finally:
        d.close()


@pytest.mark.parametrize("protocol", ["ascii", "mettler-continuous", "mt-sics", "mt-sics-stream", "ascii-reversed"])
def test_every_protocol_over_a_real_pty(protocol: str) -> None:
    with ScaleSimulator(protocol, weight_fn=lambda t: W, noise_kg=0.0) as sim:
        assert sim.pts_path is not None and sim.pts_path.startswith("/dev/pts/")
        with running(scale_cfg(url=sim.device_path, protocol=protocol)) as (d, got):
            assert wait_for(lambda: len(got.all()) >= 5, 5.0)
            assert {r.weight for r in got.all()} == {W}
            assert all(r.protocol == protocol and r.timestamp > 0 for r in got.all())
            h = d.health()
            assert h.connected and h.faults == 0 and h.readings >= 5 and h.last_reading_age_s is not None


def test_pts_path_works_directly() -> None:
    with ScaleSimulator("ascii", weight_fn=lambda t: W) as sim:
        assert sim.pts_path is not None
        with running(scale_cfg(url=sim.pts_path, protocol="ascii", baudrate=19200, parity="E",
                                  bytesize=7)) as (_, got):
            assert wait_for(lambda: len(got.all()) >= 3, 5.0)


def _check_outage(sim: ScaleSimulator, protocol: str, mode: str, caplog: pytest.LogCaptureFixture,
                  **kw: float) -> None:
    caplog.set_level(logging.INFO, logger="drivers.scale.driver")
    with running(scale_cfg(url=sim.url, protocol=protocol), **kw) as (d, got):
        assert wait_for(lambda: len(got.all()) >= 3, 5.0)
        sim.garbage(200)  # line noise on top: never a weight
        sim.garbage(b"ST,GS,+0099999kg")  # a frame cut short by the next one
        sim.disconnect(3.0, mode)  # type: ignore[arg-type]
        back_at = time.time() + 3.0
        assert wait_for(lambda: not d.health().connected, 5.0)
        assert wait_for(lambda: bool(got.since(back_at)), 3.0 + 5.0), "no reading within 5 s of the device returning"
        first = min(at for at, _ in got.items if at >= back_at)
        assert first - back_at < 5.0
        assert wait_for(lambda: d.health().connected, 1.0)
        h = d.health()
        assert h.reconnects == 1 and h.last_error is not None
    weights = {r.weight for r in got.all()}
    assert weights == {W}, f"a bad weight was published: {weights}"
    lost = [r for r in caplog.records if " lost: " in r.getMessage()]
    back = [r for r in caplog.records if r.getMessage().endswith("is back")]
    assert len(lost) == 1 and len(back) == 1, [r.getMessage() for r in caplog.records]


def test_socket_outage_reconnects_and_publishes_no_bad_weight(caplog: pytest.LogCaptureFixture) -> None:
    with ScaleSimulator("ascii", transport="tcp", weight_fn=lambda t: W, noise_kg=0.0) as sim:
        assert sim.url.startswith("socket://127.0.0.1:")
        _check_outage(sim, "ascii", "hangup", caplog)


def test_pty_hangup_reconnects(caplog: pytest.LogCaptureFixture) -> None:
    with ScaleSimulator("mettler-continuous", weight_fn=lambda t: W, noise_kg=0.0) as sim:
        _check_outage(sim, "mettler-continuous", "hangup", caplog)


def test_pty_silence_is_a_loss_too(caplog: pytest.LogCaptureFixture) -> None:
    with ScaleSimulator("mt-sics", weight_fn=lambda t: W, noise_kg=0.0) as sim:
        _check_outage(sim, "mt-sics", "silent", caplog, silence_timeout_s=1.5)


def test_overload_from_the_wire_is_flagged_never_a_weight() -> None:
    with ScaleSimulator("mettler-continuous", transport="tcp", weight_fn=lambda t: W, noise_kg=0.0) as sim:
        with running(scale_cfg(url=sim.url, protocol="mettler-continuous")) as (_, got):
            assert wait_for(lambda: len(got.all()) >= 2, 5.0)
            sim.overload(0.5)
            assert wait_for(lambda: any(r.overload for r in got.all()), 3.0)
            assert wait_for(lambda: got.all()[-1].weight == W, 3.0)
    over = [r for r in got.all() if r.overload]
    assert over and all(r.weight is None and not r.valid for r in over)


def test_missing_device_is_reported_not_raised(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG, logger="drivers.scale.driver")
    for url in [str(tmp_path / "ttyUSB9"), f"socket://127.0.0.1:{free_port()}"]:
        caplog.clear()
        with running(scale_cfg(url=url, protocol="ascii")) as (d, _got):
            assert wait_for(lambda: d.health().last_error is not None, 3.0)
            time.sleep(0.5)  # a few retries
            h = d.health()
            assert not h.connected and h.readings == 0 and "cannot open" in (h.last_error or "")
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and url in warnings[0].getMessage()


def test_unknown_protocol_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown scale protocol 'nope'"):
        open_scale(scale_cfg(url="loop://", protocol="nope"), "s1")


def test_loop_url_reads_what_is_sent() -> None:
    with running(scale_cfg(url="loop://", protocol="ascii")) as (d, got):
        assert wait_for(lambda: d._port is not None, 2.0)
        d.send(b"ST,GS,+0012340kg\r\nxx\r\nST,GS,+0012")
        d.send(b"350kg\r\n")
        assert wait_for(lambda: len(got.all()) == 2, 3.0)
        assert [r.weight for r in got.all()] == [12340.0, 12350.0]
        assert wait_for(lambda: d.health().faults == 1, 1.0)


def test_callback_errors_do_not_stop_the_driver() -> None:
    seen: list[float | None] = []

    def bad(r: object) -> None:
        seen.append(getattr(r, "weight", None))
        raise RuntimeError("handler bug")

    with ScaleSimulator("ascii", weight_fn=lambda t: W) as sim:
        d = open_scale(scale_cfg(url=sim.url, protocol="ascii"), "s1")
        d.start(bad)
        try:
            assert wait_for(lambda: len(seen) >= 3, 5.0)
        finally:
            d.close()


class _PtySerial(serial.Serial):
    """A pty has no modem lines; a device server's UART has. Pretend they are idle."""

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    def _update_break_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return False

    @property
    def dsr(self) -> bool:
        return False

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return False


class _Writer:
    """PortManager writes its telnet negotiation through ``.write``."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn

    def write(self, data: bytes) -> None:
        self.conn.sendall(data)


class Rfc2217Server:
    """A serial device server (RFC 2217) in front of a real pty, as a Moxa/Lantronix box would be."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.error: OSError | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            ser = _PtySerial(self.device, timeout=0)
            pm = serial.rfc2217.PortManager(ser, _Writer(conn))
            try:
                while not self.stop.is_set():
                    ready, _, _ = select.select([conn, ser.fileno()], [], [], 0.1)
                    if conn in ready:
                        data = conn.recv(4096)
                        if not data:
                            break
                        ser.write(b"".join(pm.filter(data)))
                    if ser.fileno() in ready:
                        conn.sendall(b"".join(pm.escape(ser.read(ser.in_waiting or 1))))
            except OSError as err:
                self.error = err
            finally:
                conn.close()
                ser.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside pyserial's rfc2217 client
def test_rfc2217_device_server() -> None:
    with ScaleSimulator("mt-sics", weight_fn=lambda t: W) as sim:
        server = Rfc2217Server(sim.device_path)
        try:
            with running(scale_cfg(url=f"rfc2217://127.0.0.1:{server.port}", protocol="mt-sics",
                                      baudrate=9600)) as (d, got):
                assert wait_for(lambda: len(got.all()) >= 3, 10.0)
                assert {r.weight for r in got.all()} == {W}
                assert d.health().faults == 0
        finally:
            server.close()


def test_cli_prints_url_and_serves() -> None:
    """``python -m drivers.scale.simulator`` (what ``edgectl scale simulate`` runs), driven over stdin."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivers.scale.simulator", "--protocol", "ascii", "--tcp", "0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("socket://127.0.0.1:")
        proc.stdin.write("weight 15000\nbogus\n")
        proc.stdin.flush()
        with running(scale_cfg(url=url, protocol="ascii")) as (_, got):
            assert wait_for(lambda: any(r.weight == 15000.0 for r in got.all()), 5.0)
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(5) == 0
        assert proc.stderr is not None and "unknown command 'bogus'" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_pty_prints_a_device_path(tmp_path: Path) -> None:
    link = tmp_path / "ttyScale"
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivers.scale.simulator", "--protocol", "mettler-continuous", "--pty",
         "--link", str(link)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == str(link)
        assert link.is_symlink() and os.readlink(link).startswith("/dev/pts/")
        with running(scale_cfg(url=str(link), protocol="mettler-continuous")) as (_, got):
            assert wait_for(lambda: len(got.all()) >= 2, 5.0)
        proc.stdin.close()  # end of commands is not the end of serving
        time.sleep(0.2)
        assert proc.poll() is None
        proc.terminate()
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_rejects_unknown_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--protocol", "nope", "--tcp", "0"]) == 2
    assert "unknown scale protocol" in capsys.readouterr().err


def test_config_refuses_a_url_that_is_no_transport() -> None:
    with pytest.raises(ValidationError, match="unsupported scale URL 'sim://ascii'"):
        scale_cfg(url="sim://ascii")
