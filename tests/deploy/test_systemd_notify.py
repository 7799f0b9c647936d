"""sd_notify and the watchdog, checked against a real AF_UNIX datagram socket playing systemd's part."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.service import systemd

SENTINEL = "STATUS=sentinel"


class FakeSystemd:
    """The receiving end of $NOTIFY_SOCKET: a bound datagram socket, as systemd itself uses."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value

    def recv(self, timeout: float = 5.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def drain_until_sentinel(self) -> list[str]:
        """Everything sent before a sentinel; datagrams on one socket keep their order."""
        assert systemd.notify(SENTINEL, env={"NOTIFY_SOCKET": self.env_value})
        out: list[str] = []
        while True:
            msg = self.recv()
            if msg == SENTINEL:
                return out
            out.append(msg)


@pytest.fixture
def path_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    # A short directory: AF_UNIX paths are limited to 107 bytes and pytest's tmp_path can be longer.
    d = tempfile.mkdtemp(prefix="sdn")
    path = os.path.join(d, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    try:
        yield FakeSystemd(sock, path)
    finally:
        sock.close()
        os.unlink(path)
        os.rmdir(d)


@pytest.fixture
def abstract_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    name = f"customs-edge-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    try:
        yield FakeSystemd(sock, "@" + name)
    finally:
        sock.close()


def test_ready_status_stopping_reach_the_socket(path_socket: FakeSystemd) -> None:
    assert systemd.ready("2 lanes up")
    assert path_socket.recv() == "READY=1\nSTATUS=2 lanes up"
    assert systemd.status("backlog 12\nevents")
    assert path_socket.recv() == "STATUS=backlog 12 events"
    assert systemd.stopping()
    assert path_socket.recv() == "STOPPING=1"
    assert systemd.extend_timeout(2.5)
    assert path_socket.recv() == "EXTEND_TIMEOUT_USEC=2500000"


def test_abstract_namespace_socket(abstract_socket: FakeSystemd) -> None:
    assert systemd.notify("READY=1")
    assert abstract_socket.recv() == "READY=1"


def test_outside_systemd_is_a_quiet_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False
    assert systemd.ready() is False


def test_socket_gone_returns_false_without_raising(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = {"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")}
    assert systemd.notify("READY=1", env=env) is False
    assert "cannot notify systemd" in caplog.text


def test_relative_notify_socket_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    assert systemd.notify("READY=1", env={"NOTIFY_SOCKET": "relative/path"}) is False
    assert "neither a path" in caplog.text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "20000000"}, 20.0),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "junk"}, None),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}, 3.0),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "x"}, None),
    ],
)
def test_watchdog_interval_from_environment(env: dict[str, str], expected: float | None) -> None:
    assert systemd.watchdog_interval_s(env) == expected


def test_watchdog_pings_only_while_healthy(path_socket: FakeSystemd) -> None:
    alive = [True]
    env = {"NOTIFY_SOCKET": path_socket.env_value, "WATCHDOG_USEC": "10000000"}
    wd = systemd.Watchdog(lambda: alive[0], env=env)
    assert wd.enabled and wd.timeout_s == 10.0

    assert wd.beat()
    assert path_socket.drain_until_sentinel() == ["WATCHDOG=1"]

    alive[0] = False
    assert not wd.beat()
    assert not wd.beat()
    # A hung controller sends no WATCHDOG=1; only one status line saying why.
    assert path_socket.drain_until_sentinel() == ["STATUS=controller loops stalled"]

    alive[0] = True
    assert wd.beat()
    assert path_socket.drain_until_sentinel() == ["STATUS=healthy", "WATCHDOG=1"]
    assert (wd.pings, wd.missed) == (2, 2)


def test_health_check_that_raises_counts_as_unhealthy(path_socket: FakeSystemd) -> None:
    def broken() -> bool:
        raise RuntimeError("lane table locked")

    wd = systemd.Watchdog(broken, interval_s=10.0, env={"NOTIFY_SOCKET": path_socket.env_value})
    assert not wd.beat()
    msgs = path_socket.drain_until_sentinel()
    assert len(msgs) == 1 and msgs[0].startswith("STATUS=health check failed")
    assert "WATCHDOG=1" not in msgs


def test_watchdog_thread_pings_exactly_when_health_says_alive(path_socket: FakeSystemd) -> None:
    """Every health call answered True gives one WATCHDOG=1, every False gives none."""
    answers: list[bool] = []
    alive = threading.Event()
    alive.set()
    calls = threading.Condition()

    def health() -> bool:
        with calls:
            answers.append(alive.is_set())
            calls.notify_all()
            return answers[-1]

    def wait_calls(n: int) -> None:
        with calls:
            assert calls.wait_for(lambda: len(answers) >= n, timeout=10)

    # 40 ms watchdog: pings every 20 ms, so the test needs no long waits.
    env = {"NOTIFY_SOCKET": path_socket.env_value, "WATCHDOG_USEC": "40000"}
    wd = systemd.Watchdog(health, env=env)
    with wd:
        wait_calls(3)
        alive.clear()
        with calls:
            n = len(answers)
        wait_calls(n + 3)
    msgs = path_socket.drain_until_sentinel()
    assert msgs.count("WATCHDOG=1") == answers.count(True) == wd.pings >= 3
    assert answers.count(False) == wd.missed >= 2
    assert "STATUS=controller loops stalled" in msgs


def test_watchdog_disabled_without_environment() -> None:
    wd = systemd.Watchdog(lambda: True, env={})
    assert not wd.enabled
    wd.start()
    assert wd._thread is None
    wd.stop()
