"""sd_notify without libsystemd: readiness, status text and a watchdog that only a healthy controller feeds.

systemd passes ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace) to a
``Type=notify`` service; a datagram with ``READY=1`` ends the start job, ``WATCHDOG=1`` resets the
watchdog timer. Writing the datagrams ourselves keeps the controller free of a C dependency and
works the same under any init that implements the protocol.

The watchdog matters more than readiness: a post runs for months without anyone looking. A thread
that pinged unconditionally would keep a controller alive whose camera or journal loop had hung.
:class:`Watchdog` therefore asks a health callback before every ping and stays silent while it says
no, so systemd kills and restarts the process after ``WatchdogSec``.

Outside systemd (no ``$NOTIFY_SOCKET``) every call is a cheap no-op returning False.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from types import TracebackType

log = logging.getLogger(__name__)

HealthCheck = Callable[[], bool]


def _socket_address(env: Mapping[str, str]) -> str | None:
    raw = env.get("NOTIFY_SOCKET", "")
    if not raw:
        return None
    if raw.startswith("@"):
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    # sd_notify also accepts vsock addresses; a post never gets one, so refuse rather than guess.
    log.warning("NOTIFY_SOCKET=%r is neither a path nor an abstract name; not notifying systemd", raw)
    return None


def notify(state: str, *, env: Mapping[str, str] | None = None) -> bool:
    """Send one notification (``"READY=1"``, ``"STATUS=..."``, several joined by newlines).

    Returns True when the datagram was handed to the socket, False outside systemd or on error;
    never raises, because failing to tell systemd something must not take a lane down.
    """
    addr = _socket_address(os.environ if env is None else env)
    if addr is None:
        return False
    data = state.encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(data, addr)
    except OSError as err:
        log.warning("cannot notify systemd at %s: %s", addr.replace("\0", "@"), err)
        return False
    return True


def ready(status_text: str | None = None) -> bool:
    """Tell systemd the service has started (all lanes running); ends ``systemctl start`` waiting."""
    msg = "READY=1"
    if status_text:
        msg += "\nSTATUS=" + _one_line(status_text)
    return notify(msg)


def stopping(status_text: str | None = None) -> bool:
    """Tell systemd a clean shutdown has begun, so a slow journal flush is not mistaken for a hang."""
    msg = "STOPPING=1"
    if status_text:
        msg += "\nSTATUS=" + _one_line(status_text)
    return notify(msg)


def reloading() -> bool:
    """Before re-reading config in place; call :func:`ready` again when done."""
    return notify("RELOADING=1")


def status(text: str) -> bool:
    """One line shown by ``systemctl status`` (e.g. ``"3 lanes up, backlog 0"``)."""
    return notify("STATUS=" + _one_line(text))


def extend_timeout(seconds: float) -> bool:
    """Ask for more start/stop time, e.g. while a large model loads on a slow post computer."""
    return notify(f"EXTEND_TIMEOUT_USEC={max(1, int(seconds * 1_000_000))}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """The watchdog timeout systemd expects pings within, or None when it is off or not for us.

    ``$WATCHDOG_PID``, when present, names the process meant to ping; a child that inherited the
    environment must not ping for its parent.
    """
    e = os.environ if env is None else env
    usec = e.get("WATCHDOG_USEC", "")
    if not usec:
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not a number; watchdog off", usec)
        return None
    if value <= 0:
        return None
    pid = e.get("WATCHDOG_PID", "")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            log.warning("WATCHDOG_PID=%r is not a number; watchdog off", pid)
            return None
    return value / 1_000_000


class Watchdog:
    """Pings systemd at half the watchdog interval, but only while ``health()`` returns True.

    ``health`` is the controller's "are all my loops still turning" check (each loop stamps a
    heartbeat; health compares the stamps with the clock). It runs on the watchdog thread, so it
    must be quick and must not take locks a hung loop could hold. An exception from it counts as
    unhealthy. Without ``$WATCHDOG_USEC`` (not under systemd, or no ``WatchdogSec=``) the watchdog is
    disabled and :meth:`start` does nothing, unless ``interval_s`` is given.
    """

    def __init__(
        self,
        health: HealthCheck,
        *,
        interval_s: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._health = health
        self._env = env
        self.timeout_s = interval_s if interval_s is not None else watchdog_interval_s(env)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._healthy = True
        self.pings = 0
        self.missed = 0

    @property
    def enabled(self) -> bool:
        return self.timeout_s is not None

    def beat(self) -> bool:
        """One check-and-maybe-ping; the thread calls this, tests may call it directly."""
        try:
            ok = bool(self._health())
            why = "" if ok else "controller loops stalled"
        except Exception as err:  # a broken health check must starve the watchdog, not kill it
            ok = False
            why = f"health check failed: {err!r}"
        if ok:
            if not self._healthy:
                log.warning("controller healthy again; feeding the systemd watchdog")
                notify("STATUS=healthy", env=self._env)
            self._healthy = True
            if notify("WATCHDOG=1", env=self._env):
                self.pings += 1
            return True
        if self._healthy:
            log.error("%s; no longer feeding the systemd watchdog (it will restart us)", why)
            notify("STATUS=" + _one_line(why), env=self._env)
        self._healthy = False
        self.missed += 1
        return False

    def start(self) -> Watchdog:
        if self.timeout_s is None or self._thread is not None:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="systemd-watchdog", daemon=True)
        self._thread.start()
        log.info("systemd watchdog on: pinging every %.1f s while healthy", self.timeout_s / 2)
        return self

    def _run(self) -> None:
        assert self.timeout_s is not None
        period = self.timeout_s / 2
        while True:
            self.beat()
            if self._stop.wait(period):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Watchdog:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
