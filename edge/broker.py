"""An MQTT broker for the demo and the tests, whatever the machine has.

The order matters: a broker already listening at the address is used as is (on our machines a real
Mosquitto); otherwise a private ``mosquitto`` is started when the binary exists (PATH or /usr/sbin);
only where neither exists is an embedded Python broker (amqtt) started so that a fresh clone still
runs. amqtt speaks MQTT 3.1.1 only, so :func:`speaks_mqtt5` probes the broker and the clients
(uplink, HQ subscriber) negotiate down for that case: no shared subscriptions, no PUBACK reason codes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import EdgeError

log = logging.getLogger(__name__)

__all__ = [
    "BrokerHandle", "ensure_broker", "find_mosquitto", "free_port", "port_open", "speaks_mqtt5",
    "start_private_broker",
]


class BrokerError(EdgeError):
    """No broker could be found or started at the requested address."""


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    for cand in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto"):
        if os.access(cand, os.X_OK):
            return cand
    return None


_V5_CACHE: dict[tuple[str, int], bool] = {}


def _connect_packet(client_id: str, level: int) -> bytes:
    cid = client_id.encode()
    var = b"\x00\x04MQTT" + bytes([level, 0x02]) + (10).to_bytes(2, "big")
    if level == 5:
        var += b"\x00"  # no properties
    body = var + len(cid).to_bytes(2, "big") + cid
    assert len(body) < 128
    return bytes([0x10, len(body)]) + body


def speaks_mqtt5(host: str, port: int, timeout: float = 2.0, *, refresh: bool = False) -> bool:
    """Whether the broker accepts an MQTT v5 CONNECT. Cached per address; True when unreachable.

    An unreachable broker is assumed to be a real (v5) one: production brokers are, and a client that
    guessed wrong reconnects with the answer from a later probe.
    """
    key = (host, port)
    if not refresh and key in _V5_CACHE:
        return _V5_CACHE[key]
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(_connect_packet(f"probe-{os.getpid()}-{time.monotonic_ns() % 10**9}", 5))
            data = b""
            while len(data) < 4:
                chunk = s.recv(16)
                if not chunk:
                    break
                data += chunk
            with contextlib.suppress(OSError):
                s.sendall(b"\xe0\x00")  # DISCONNECT
    except OSError:
        return True
    # A v5 CONNACK: 0x20, length, flags, reason 0x00, properties. A 3.1.1 broker answers return code 1
    # (unacceptable protocol version) or just closes the connection.
    ok = len(data) >= 4 and data[0] == 0x20 and data[3] == 0x00
    _V5_CACHE[key] = ok
    return ok


@dataclass
class BrokerHandle:
    """A broker at ``host:port``; ``owned`` when this process started it (and so may stop it)."""

    host: str
    port: int
    owned: bool
    kind: str  # "external", "mosquitto" or "amqtt"
    data_dir: Path | None = None
    _argv: list[str] = field(default_factory=list, repr=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        if not self.owned:
            return port_open(self.host, self.port)
        return self._proc is not None and self._proc.poll() is None

    @property
    def mqtt5(self) -> bool:
        return speaks_mqtt5(self.host, self.port)

    def start(self, timeout: float = 10.0) -> None:
        """(Re)start an owned broker on the same port, keeping its persistence directory."""
        if not self.owned:
            raise BrokerError(f"the broker at {self.host}:{self.port} is not ours to start")
        if self.running:
            return
        log_path = (self.data_dir or Path(tempfile.gettempdir())) / "broker.log"
        with open(log_path, "ab") as logf:
            self._proc = subprocess.Popen(
                self._argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise BrokerError(f"{self.kind} exited with {self._proc.returncode} on port {self.port}: {tail}")
            if port_open(self.host, self.port, 0.2):
                _V5_CACHE.pop((self.host, self.port), None)
                return
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"{self.kind} did not listen on {self.host}:{self.port} within {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop an owned broker gracefully (SIGTERM: Mosquitto writes its persistence file)."""
        proc = self._proc
        if not self.owned or proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        self._proc = None

    def kill(self) -> None:
        """Stop an owned broker the hard way (no persistence written): a crash, for fault tests."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        self._proc = None

    def close(self) -> None:
        """Stop an owned broker and remove a temporary data directory it was given."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _user_name() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return "mosquitto"


def _mosquitto_conf(host: str, port: int, data_dir: Path, extra: str = "") -> Path:
    conf = data_dir / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                f"listener {port} {host}",
                "allow_anonymous true",
                # Run as root (CI containers), mosquitto would drop to user 'mosquitto', which cannot
                # read our private data directory: stay the invoking user.
                f"user {_user_name()}",
                "persistence true",
                f"persistence_location {data_dir}/",
                "persistence_file mosquitto.db",
                "autosave_interval 1",
                "max_queued_messages 100000",
                "max_inflight_messages 100",
                "set_tcp_nodelay true",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                extra,
                "",
            ]
        )
    )
    return conf


def _amqtt_conf(host: str, port: int, data_dir: Path) -> Path:
    conf = data_dir / "amqtt.yaml"
    conf.write_text(
        "listeners:\n"
        "  default:\n"
        "    type: tcp\n"
        f"    bind: {host}:{port}\n"
        "plugins:\n"
        "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n"
    )
    return conf


def start_private_broker(
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    data_dir: Path | None = None,
    kind: str = "auto",
    extra_conf: str = "",
) -> BrokerHandle:
    """Start a broker owned by the caller on ``port`` (a free one when None).

    ``kind``: "auto" (mosquitto when installed, else amqtt), "mosquitto" or "amqtt". ``extra_conf``
    is appended to the generated mosquitto.conf (an ``acl_file`` line, say).
    """
    port = port or free_port(host)
    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="edge-broker-")
        data_dir = Path(tmp.name)
    data_dir.mkdir(parents=True, exist_ok=True)
    mosq = find_mosquitto() if kind in ("auto", "mosquitto") else None
    if mosq is not None:
        argv = [mosq, "-c", str(_mosquitto_conf(host, port, data_dir, extra_conf))]
        kind = "mosquitto"
    elif kind in ("auto", "amqtt"):
        argv = [sys.executable, "-c", "import sys; from amqtt.scripts.broker_script import main; sys.exit(main())",
                "-c", str(_amqtt_conf(host, port, data_dir))]
        kind = "amqtt"
    else:
        raise BrokerError("no mosquitto binary found (install the 'mosquitto' package)")
    handle = BrokerHandle(host, port, owned=True, kind=kind, data_dir=data_dir, _argv=argv, _tmp=tmp)
    handle.start()
    log.info("started %s broker on %s:%d (data in %s)", kind, host, port, data_dir)
    return handle


def ensure_broker(host: str = "127.0.0.1", port: int = 1883, *, data_dir: Path | None = None) -> BrokerHandle:
    """A broker at ``host:port``: the one listening there, else one started by us."""
    if port_open(host, port):
        log.info("using the MQTT broker already listening on %s:%d", host, port)
        return BrokerHandle(host, port, owned=False, kind="external")
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0"):
        raise BrokerError(f"no MQTT broker answers at {host}:{port} and it is not a local address to start one on")
    return start_private_broker(host, port, data_dir=data_dir)
