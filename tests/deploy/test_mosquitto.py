"""HQ's Mosquitto configuration, run for real: client certificates, per-post ACLs, the post bridge.

A private ``mosquitto`` is started on a free port with deploy/mosquitto/hq.conf and hq.acl (only the
certificate directory and the port are rewritten) and certificates made here with
:mod:`edge.service.keys` (a CA, the broker's certificate for 127.0.0.1, posts with CN = post id, HQ,
an expired one, one from another CA).
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from paho.mqtt.enums import CallbackAPIVersion

from edge.broker import find_mosquitto, free_port, port_open
from edge.config import BrokerSection
from edge.outbox.journal import Journal
from edge.outbox.signing import PostKey
from edge.outbox.uplink import Uplink
from edge.service import keys as K
from edge.topics import Topics

REPO = Path(__file__).resolve().parents[2]
CONF_DIR = REPO / "deploy" / "mosquitto"
CERT_DIR = "/etc/mosquitto/customs-edge/"
MOSQUITTO = find_mosquitto()
NOT_AUTHORIZED = 135


def taken(code: int) -> bool:
    """PUBACK success codes: 0, and 16 'no matching subscribers' (MQTT v5)."""
    return code in (0, 16)


pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(MOSQUITTO is None, reason="no mosquitto binary (apt-get install mosquitto)"),
]


# --- certificates --------------------------------------------------------------------------------


@dataclass
class PKI:
    dir: Path
    ca: x509.Certificate
    ca_key: K.TLSKey

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca = K.create_ca("Test HQ CA")
    other_key, other = K.create_ca("Somebody else's CA")
    K.write_public(d / "ca.crt", K.cert_pem(ca))

    def issue(file: str, cn: str, ca_key: K.TLSKey = ca_key, ca_cert: x509.Certificate = ca, **kw: Any) -> None:
        key = K.generate_tls_key()
        cert = K.sign_csr(K.make_csr(key, cn), ca_key, ca_cert, **kw)
        K.write_secret(d / f"{file}.key", K.key_pem(key))
        K.write_public(d / f"{file}.crt", K.cert_pem(cert))

    issue("server", "post-broker", server_names=["127.0.0.1", "localhost"])
    issue("post-a", "post-a")
    issue("post-b", "post-b")
    issue("hq", K.HQ_IDENTITY, allow_hq=True)
    now = dt.datetime.now(dt.UTC)
    issue("expired", "post-c", not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=1))
    issue("foreign", "post-a", ca_key=other_key, ca_cert=other)
    return PKI(d, ca, ca_key)


# --- brokers -------------------------------------------------------------------------------------


@dataclass
class Broker:
    port: int
    log: Path
    proc: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_mosquitto(conf: str, workdir: Path, port: int) -> Broker:
    assert MOSQUITTO is not None
    log = workdir / "mosquitto.log"
    # Test-only additions: a log file to read the refusal causes from; stay root when run as root
    # (mosquitto would otherwise switch to the 'mosquitto' user and fail to read the tmp keys).
    conf += f"\nlog_dest file {log}\nlog_type all\npersistence false\n"
    if os.geteuid() == 0:
        conf += "user root\n"
    path = workdir / "mosquitto.conf"
    path.write_text(conf)
    proc = subprocess.Popen([MOSQUITTO, "-c", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while not port_open("127.0.0.1", port, timeout=0.2):
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(
                f"mosquitto exited ({proc.returncode}): {err}\n{log.read_text() if log.exists() else ''}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("mosquitto did not start listening")
        time.sleep(0.05)
    return Broker(port, log, proc)


def stop(broker: Broker) -> None:
    broker.proc.terminate()
    try:
        broker.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        broker.proc.kill()
        broker.proc.wait()
    if broker.proc.stderr:
        broker.proc.stderr.close()


def hq_conf(pki: PKI, port: int) -> str:
    text = (CONF_DIR / "hq.conf").read_text()
    assert "listener 8883\n" in text and CERT_DIR in text
    return text.replace(CERT_DIR, f"{pki.dir}/").replace("listener 8883\n", f"listener {port} 127.0.0.1\n")


@pytest.fixture(scope="module")
def hq_broker(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    (pki.dir / "hq.acl").write_text((CONF_DIR / "hq.acl").read_text())
    port = free_port()
    broker = start_mosquitto(hq_conf(pki, port), tmp_path_factory.mktemp("hq-broker"), port)
    yield broker
    stop(broker)


# --- a paho client that records what happened ----------------------------------------------------


class Client:
    """MQTT v5 over TLS with a client certificate, as the uplink uses it; results arrive as events."""

    def __init__(self, port: int, pki: PKI, identity: str | None, *, tls: bool = True) -> None:
        self.port = port
        self.events: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.pubacks: dict[int, int] = {}
        self._cond = threading.Condition()
        self.client_id = f"{identity}-{uuid.uuid4().hex[:6]}"
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        if tls:
            if identity is None:
                self.c.tls_set(ca_certs=str(pki.dir / "ca.crt"))
            else:
                self.c.tls_set(
                    ca_certs=str(pki.dir / "ca.crt"), certfile=str(pki.cert(identity)), keyfile=str(pki.key(identity))
                )
        self.c.reconnect_delay_set(min_delay=60, max_delay=120)  # one attempt per test
        self.c.on_connect = lambda c, u, f, rc, p: self.events.put(("connect", rc.value, str(rc)))
        self.c.on_disconnect = lambda c, u, f, rc, p: self.events.put(("disconnect", rc.value, str(rc)))
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.events.put(("suback", [r.value for r in rcs]))
        self.c.on_message = lambda c, u, m: self.messages.put((m.topic, bytes(m.payload), bool(m.retain)))
        self.c.on_publish = self._on_publish

    def _on_publish(self, c: Any, u: Any, mid: int, rc: Any, props: Any) -> None:
        with self._cond:
            self.pubacks[mid] = rc.value
            self._cond.notify_all()

    def connect(self, will: tuple[str, bytes] | None = None) -> tuple[Any, ...]:
        """The first thing that happens: ("connect", 0, "Success") or a refusal."""
        if will:
            self.c.will_set(will[0], will[1], qos=1, retain=True)
        try:
            self.c.connect("127.0.0.1", self.port, keepalive=30)
        except (ssl.SSLError, OSError) as err:
            return ("error", repr(err))
        self.c.loop_start()
        return self.events.get(timeout=15)

    def subscribe(self, topic: str) -> list[int]:
        self.c.subscribe(topic, qos=1)
        ev = self.events.get(timeout=10)
        assert ev[0] == "suback", ev
        return list(ev[1])

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """PUBACK reason code: 0 taken, 135 not authorised."""
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        with self._cond:
            assert self._cond.wait_for(lambda: info.mid in self.pubacks, timeout=10), f"no PUBACK for {topic}"
            return self.pubacks[info.mid]

    def received_until(self, sentinel: bytes) -> list[tuple[str, bytes]]:
        """Live messages in arrival order up to a sentinel sent after the ones under test.

        Retained messages replayed on subscribing (left by an earlier test) are not part of it.
        """
        out: list[tuple[str, bytes]] = []
        while True:
            topic, payload, retained = self.messages.get(timeout=15)
            if payload == sentinel:
                return out
            if not retained:
                out.append((topic, payload))

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def clients(hq_broker: Broker, pki: PKI) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(identity: str | None, **kw: Any) -> Client:
        c = Client(hq_broker.port, pki, identity, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def connected(c: Client) -> Client:
    ev = c.connect()
    assert ev == ("connect", 0, "Success"), ev
    return c


# --- identity --------------------------------------------------------------------------------------


def test_post_with_valid_certificate_connects_and_delivers(clients: Callable[..., Client], hq_broker: Broker) -> None:
    hq = connected(clients("hq"))
    assert hq.subscribe("$share/hq/customs/v1/+/events/+") == [1]
    post = connected(clients("post-a"))
    t = Topics("post-a")
    assert taken(post.publish(t.events("lane1"), b'{"seq": 1}'))
    assert taken(post.publish(t.status, b'{"state": "online"}', retain=True))
    assert taken(post.publish(t.events("lane1"), b"end"))
    assert hq.received_until(b"end") == [(t.events("lane1"), b'{"seq": 1}')]
    assert "as post-a" in hq_broker.log_text() or "u'post-a'" in hq_broker.log_text()


def raw_tls_connect(port: int, pki: PKI, identity: str | None) -> str:
    """TLS handshake and an MQTT v5 CONNECT by hand; returns what came back."""
    ctx = ssl.create_default_context(cafile=str(pki.dir / "ca.crt"))
    if identity is not None:
        ctx.load_cert_chain(str(pki.cert(identity)), str(pki.key(identity)))
    connect = bytes([0x10, 13, 0, 4]) + b"MQTT" + bytes([5, 2, 0, 30, 0, 0, 0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                tls.sendall(connect)
                data = tls.recv(64)
        except (ssl.SSLError, ConnectionError) as err:
            return f"refused: {type(err).__name__}"
    if data[:1] == b"\x20" and len(data) >= 4:
        return f"connack {data[3]}"
    return "closed" if not data else f"unexpected {data!r}"


def test_raw_check_sees_a_valid_connection(hq_broker: Broker, pki: PKI) -> None:
    """The hand-made CONNECT below can succeed, so its refusals mean something."""
    assert raw_tls_connect(hq_broker.port, pki, "post-a") == "connack 0"


@pytest.mark.parametrize(
    ("identity", "cause"),
    [
        (None, "peer did not return a certificate"),
        ("expired", "certificate verify failed"),
        ("foreign", "certificate verify failed"),
    ],
    ids=["no-certificate", "expired", "another-ca"],
)
def test_refused_certificates(
    hq_broker: Broker,
    pki: PKI,
    clients: Callable[..., Client],
    identity: str | None,
    cause: str,
    wait_for: Callable[..., None],
) -> None:
    if identity == "expired":  # signed by the right CA: expiry is the only fault
        cert = x509.load_pem_x509_certificate(pki.cert("expired").read_bytes())
        cert.verify_directly_issued_by(pki.ca)
        assert cert.not_valid_after_utc < dt.datetime.now(dt.UTC)
    if identity == "foreign":  # in date, CN of a real post: only the issuer is wrong
        cert = x509.load_pem_x509_certificate(pki.cert("foreign").read_bytes())
        assert K.certificate_identity(cert) == "post-a"
        assert cert.not_valid_before_utc < dt.datetime.now(dt.UTC) < cert.not_valid_after_utc
        with pytest.raises(ValueError):
            cert.verify_directly_issued_by(pki.ca)
    before = hq_broker.log_text().count(cause)
    result = raw_tls_connect(hq_broker.port, pki, identity)
    assert result.startswith("refused") or result == "closed", result
    wait_for(lambda: hq_broker.log_text().count(cause) > before, timeout=10, what=f"broker log: {cause}")
    # And the project's MQTT client never gets a CONNACK either.
    ev = clients(identity).connect()
    assert ev[0] in ("disconnect", "error"), ev


def test_plain_tcp_is_not_served(hq_broker: Broker, pki: PKI) -> None:
    connect = bytes([0x10, 13, 0, 4]) + b"MQTT" + bytes([5, 2, 0, 30, 0, 0, 0])
    with socket.create_connection(("127.0.0.1", hq_broker.port), timeout=10) as sock:
        sock.sendall(connect)
        try:
            data = sock.recv(64)
        except ConnectionError:
            data = b""
    assert not data.startswith(b"\x20")


# --- topics ----------------------------------------------------------------------------------------


def test_post_cannot_write_outside_its_own_topics(clients: Callable[..., Client]) -> None:
    hq = connected(clients("hq"))
    hq.subscribe("customs/v1/#")
    a = connected(clients("post-a"))
    own, other = Topics("post-a"), Topics("post-b")
    refused = [
        other.events("lane1"),
        other.status,
        other.telemetry,
        other.cmd_result,
        other.diag_test,
        own.ack,
        own.cmd,  # HQ -> post topics: a post must not forge its own acks or commands
        "customs/v1/post-a",
        "customs/v2/post-a/events/lane1",
        "$SYS/broker/forged",
    ]
    for topic in refused:
        assert a.publish(topic, b"forged") == NOT_AUTHORIZED, topic
    allowed = [own.events("lane1"), own.status, own.telemetry, own.cmd_result, own.diag_test]
    for topic in allowed:
        assert taken(a.publish(topic, b"mine")), topic
    assert taken(a.publish(own.events("lane1"), b"end"))
    got = hq.received_until(b"end")
    assert [t for t, _ in got] == allowed
    assert all(p == b"mine" for _, p in got)


def test_username_sent_by_a_post_does_not_change_its_identity(
    clients: Callable[..., Client], hq_broker: Broker
) -> None:
    """With use_identity_as_username the certificate's CN wins over any username and password sent."""
    a = clients("post-a")
    a.c.username_pw_set(K.HQ_IDENTITY, "guessed")
    assert a.connect() == ("connect", 0, "Success")
    assert a.publish(Topics("post-b").cmd, b"forged") == NOT_AUTHORIZED
    assert a.publish(Topics("post-a").ack, b"forged") == NOT_AUTHORIZED
    assert f"as {a.client_id} (p5, c1, k30, u'post-a')" in hq_broker.log_text()


def test_post_reads_only_its_own_ack_cmd_and_diag(clients: Callable[..., Client]) -> None:
    hq = connected(clients("hq"))
    a = connected(clients("post-a"))
    for topic in ("customs/v1/+/cmd", "customs/v1/post-b/#", "customs/v1/#"):
        a.subscribe(topic)  # Mosquitto 2.0 grants these; the ACL filters every delivery
    own, other = Topics("post-a"), Topics("post-b")
    for topic in (other.cmd, other.ack, other.diag_test, other.events("lane1")):
        code = hq.publish(topic, b"not for a")
        assert code == NOT_AUTHORIZED if topic == other.events("lane1") else taken(code), (topic, code)
    assert taken(hq.publish(own.cmd, b"for a"))
    assert taken(hq.publish(own.ack, b"end"))
    got = a.received_until(b"end")
    assert got and all(payload == b"for a" and topic == own.cmd for topic, payload in got), got


def test_hq_identity_cannot_speak_for_a_post(clients: Callable[..., Client]) -> None:
    hq = connected(clients("hq"))
    t = Topics("post-a")
    assert taken(hq.publish(t.ack, b'{"seq": 0}'))
    assert taken(hq.publish(t.cmd, b"{}"))
    for topic in (t.events("lane1"), t.status, t.telemetry, t.cmd_result):
        assert hq.publish(topic, b"forged") == NOT_AUTHORIZED, topic


def test_last_will_on_another_posts_status_never_arrives(
    clients: Callable[..., Client], hq_broker: Broker, wait_for: Callable[..., None]
) -> None:
    """Mosquitto 2.0.11 accepts the CONNECT but checks the will against the ACL when it fires."""
    hq = connected(clients("hq"))
    hq.subscribe("customs/v1/+/status")
    forged = clients("post-a")
    assert forged.connect(will=(Topics("post-b").status, b"forged will"))[:2] == ("connect", 0)
    legit = clients("post-a")
    assert legit.connect(will=(Topics("post-a").status, b"legit will"))[:2] == ("connect", 0)
    for c in (forged, legit):  # drop the connections without DISCONNECT: the wills fire
        sock = c.c.socket()
        assert isinstance(sock, (socket.socket, ssl.SSLSocket))
        sock.shutdown(socket.SHUT_RDWR)
        wait_for(
            lambda c=c: (
                f"Client {c.client_id} closed its connection" in hq_broker.log_text()
                or f"Client {c.client_id} disconnected" in hq_broker.log_text()
            ),
            timeout=15,
            what="the broker to notice the dropped connection",
        )
    b = connected(clients("post-b"))
    assert taken(b.publish(Topics("post-b").status, b"end"))
    assert hq.received_until(b"end") == [(Topics("post-a").status, b"legit will")]


def test_uplink_keeps_an_event_the_broker_refuses(
    hq_broker: Broker, pki: PKI, tmp_path: Path, wait_for: Callable[..., None]
) -> None:
    """A post configured as post-b but holding post-a's certificate: every event is refused and kept."""
    broker = BrokerSection.model_validate(
        {
            "host": "127.0.0.1",
            "port": hq_broker.port,
            "tls": {
                "ca_file": str(pki.dir / "ca.crt"),
                "cert_file": str(pki.cert("post-a")),
                "key_file": str(pki.key("post-a")),
            },
        }
    )
    journal = Journal(tmp_path / "journal.sqlite", PostKey.generate(), "post-b")
    event = {"event_id": str(uuid.uuid4()), "lane_id": "lane1", "schema": "customs.vehicle_event/1"}
    journal.append(event)
    uplink = Uplink(broker, "post-b", journal)
    uplink.start()
    try:
        wait_for(lambda: uplink.status()["refusals"] >= 1, timeout=20, what="a refused PUBACK")
        status = uplink.status()
        assert "135" in str(status["last_refusal"]) or "authori" in str(status["last_refusal"]).lower()
        assert journal.backlog()[0] == 1
        assert journal.last_ack() == 0
        assert journal.pending()[0].event_id == event["event_id"]
    finally:
        uplink.stop()
        journal.close()


def test_rotated_certificate_works_and_the_revoked_one_is_refused(
    pki: PKI, tmp_path: Path, wait_for: Callable[..., None]
) -> None:
    """Rotation: post-b gets a new key and certificate; HQ revokes the old one in the CRL."""
    new_key = K.generate_tls_key()
    new_cert = K.sign_csr(K.make_csr(new_key, "post-b"), pki.ca_key, pki.ca)
    work = tmp_path / "crl-broker"
    work.mkdir()
    for name in ("ca.crt", "server.crt", "server.key"):
        (work / name).write_bytes((pki.dir / name).read_bytes())
    (work / "hq.acl").write_text((CONF_DIR / "hq.acl").read_text())
    K.write_secret(work / "post-b2.key", K.key_pem(new_key))
    K.write_public(work / "post-b2.crt", K.cert_pem(new_cert))
    old = x509.load_pem_x509_certificate(pki.cert("post-b").read_bytes())
    crl = K.make_crl(pki.ca_key, pki.ca, [old])
    (work / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    port = free_port()
    text = (CONF_DIR / "hq.conf").read_text()
    assert "#crlfile /etc/mosquitto/customs-edge/crl.pem\n" in text
    conf = text.replace("#crlfile", "crlfile").replace(CERT_DIR, f"{work}/")
    conf = conf.replace("listener 8883\n", f"listener {port} 127.0.0.1\n")
    broker = start_mosquitto(conf, work, port)
    try:
        rotated = PKI(work, pki.ca, pki.ca_key)
        assert raw_tls_connect(port, rotated, "post-b2") == "connack 0"
        assert raw_tls_connect(port, pki, "post-a") == "connack 0"
        assert raw_tls_connect(port, pki, "post-b") in ("refused: SSLEOFError", "closed", "refused: SSLError")
        wait_for(lambda: "certificate verify failed" in broker.log_text(), timeout=10, what="refusal logged")
    finally:
        stop(broker)


# --- the post's bridge -----------------------------------------------------------------------------


def test_post_bridge_carries_own_topics_both_ways(
    hq_broker: Broker, pki: PKI, tmp_path: Path, clients: Callable[..., Client], wait_for: Callable[..., None]
) -> None:
    text = (CONF_DIR / "post-bridge.conf").read_text()
    assert "@POST_ID@" in text and "@HQ_ADDRESS@" in text and "listener 1883 127.0.0.1\n" in text
    local_port = free_port()
    work = tmp_path / "post-broker"
    work.mkdir()
    for name in ("post", "ca"):
        src = {"post": "post-a", "ca": "ca"}[name]
        (work / f"{name}.crt").write_bytes((pki.dir / f"{src}.crt").read_bytes())
    (work / "post.key").write_bytes(pki.key("post-a").read_bytes())
    (work / "post.key").chmod(0o600)
    conf = (
        text.replace("@POST_ID@", "post-a")
        .replace("@HQ_ADDRESS@", f"127.0.0.1:{hq_broker.port}")
        .replace(CERT_DIR, f"{work}/")
        .replace("listener 1883 127.0.0.1\n", f"listener {local_port} 127.0.0.1\n")
        .replace("persistence true\n", "")
        .replace("persistence_location /var/lib/mosquitto/\n", "")
        .replace("restart_timeout 5 120", "restart_timeout 1 2")
    )
    post_broker = start_mosquitto(conf, work, local_port)
    try:
        hq = connected(clients("hq"))
        hq.subscribe("customs/v1/#")
        local = Client(local_port, pki, "local", tls=False)
        try:
            assert local.connect()[:2] == ("connect", 0)
            # The bridge's state, published here only (notifications_local_only); "1" once connected to HQ.
            local.subscribe("$SYS/broker/connection/+/state")
            while local.messages.get(timeout=30)[:2] != ("$SYS/broker/connection/post-a/state", b"1"):
                pass
            local.subscribe("customs/v1/post-a/cmd")
            own = Topics("post-a")
            assert taken(local.publish(own.events("lane1"), b'{"seq": 7}'))
            assert taken(local.publish(Topics("post-b").events("lane1"), b"not bridged"))
            assert taken(local.publish(own.status, b"end"))
            assert hq.received_until(b"end") == [(own.events("lane1"), b'{"seq": 7}')]
            assert taken(hq.publish(own.cmd, b'{"cmd": "diag"}'))
            assert local.messages.get(timeout=15)[:2] == (own.cmd, b'{"cmd": "diag"}')
        finally:
            local.close()
    finally:
        stop(post_broker)
