"""``edgectl mqtt check``: connect as the post does, publish on its test topic, read it back.

Every way this goes wrong on site (wrong password, a certificate from another CA, a firewall, a
plain-text port where TLS is expected) is translated into a sentence naming the cause and the
config key to look at: a paho return code or an OpenSSL error string tells a technician nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from edge.config import BrokerSection
from edge.errors import ConfigError
from edge.events import iso_time
from edge.outbox.uplink import build_client
from edge.topics import Topics

# MQTT 5 CONNACK/SUBACK/PUBACK reason codes, and 3.1.1 CONNACK return codes (below 6).
_REFUSALS: dict[int, tuple[str, str]] = {
    0x80: ("the broker refused: unspecified error", "look at the broker's log"),
    0x81: ("the broker refused a malformed packet", "check that host:port is an MQTT broker"),
    0x82: ("the broker reported a protocol error", "check the broker's version and settings"),
    0x84: ("the broker does not support this MQTT version", "HQ's broker must speak MQTT 5 (or 3.1.1)"),
    0x85: ("the broker refused the client id", "set broker.client_id to the id HQ registered for this post"),
    0x86: ("bad user name or password", "check broker.username and broker.password (the env variable or "
                                        "credential file they name) against HQ's records"),
    0x87: ("not authorised", "HQ's broker does not allow this post's user/certificate: ask HQ to check its ACL"),
    0x88: ("the broker is unavailable", "retry later; HQ's broker is overloaded or starting"),
    0x89: ("the broker is busy", "retry later"),
    0x8A: ("this client is banned by the broker", "ask HQ why this post is banned"),
    0x8C: ("bad authentication method", "the broker wants another authentication method"),
    0x8F: ("topic filter invalid", "check broker.topic_prefix"),
    0x90: ("topic name invalid", "check broker.topic_prefix"),
    0x97: ("quota exceeded", "the broker limits this post's traffic: ask HQ"),
    0x9F: ("connection rate exceeded", "wait a minute and retry"),
}
_V3 = {1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}


def _speaks_v5(host: str, port: int, timeout: float) -> bool:
    """Whether the broker answers an MQTT 5 CONNECT with an MQTT 5 CONNACK.

    Unlike :func:`edge.broker.speaks_mqtt5` a refusal still counts as MQTT 5 (a v5 CONNACK carries
    properties, so its remaining length is over 2): a broker that refuses anonymous clients must not
    make us fall back to 3.1.1 and lose its reason codes. Unreachable: assume v5.
    """
    cid = f"edgectl-probe-{uuid.uuid4().hex[:8]}".encode()
    body = b"\x00\x04MQTT\x05\x02\x00\x0a\x00" + len(cid).to_bytes(2, "big") + cid
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(bytes([0x10, len(body)]) + body)
            data = s.recv(16)
            with contextlib.suppress(OSError):
                s.sendall(b"\xe0\x00")
    except OSError:
        return True
    if len(data) < 2 or data[0] != 0x20:
        return False
    return data[1] > 2


def explain_reason(code: int) -> tuple[str, str]:
    """(what happened, what to try) for an MQTT reason code."""
    return _REFUSALS.get(code, (f"refused with reason code 0x{code:02X}", "look at the broker's log"))


def _where(ref: Any) -> str:
    if ref is None:
        return "not set"
    return f"env {ref.env}" if ref.env is not None else f"file {ref.file}"


def explain_refused_connect(code: int, broker: BrokerSection) -> tuple[str, str]:
    """A CONNACK refusal in words, with where this post's credentials come from (never their values)."""
    has_cert = broker.tls is not None and broker.tls.cert_file is not None
    if code in (0x86, 0x87) and broker.username is None and not has_cert:
        return ("the broker refused anonymous access (no user name or client certificate is configured)",
                "set broker.username and broker.password, or [broker.tls] cert_file/key_file, as HQ issued them")
    creds = f"broker.username ({_where(broker.username)}), broker.password ({_where(broker.password)})"
    if code == 0x86:
        return ("bad user name or password", f"check {creds} against what HQ issued for this post")
    if code == 0x87 and broker.username is not None:
        return ("not authorised: wrong user name or password, or this user may not connect "
                "(Mosquitto answers 'not authorised' to a wrong password)",
                f"check {creds} against what HQ issued for this post; then ask HQ to check its ACL")
    return explain_reason(code)


def explain_connect_error(err: BaseException, broker: BrokerSection) -> tuple[str, str]:
    """Turn a socket/TLS exception from connecting into (reason, fix)."""
    where = f"{broker.host}:{broker.port}"
    tls = broker.tls
    if isinstance(err, ssl.SSLCertVerificationError):
        msg = (err.verify_message or str(err)).lower()
        if "hostname mismatch" in msg or "ip address mismatch" in msg:
            return (f"TLS: the broker's certificate is not for {broker.host!r}",
                    "use the host name the certificate was issued for in broker.host")
        if "expired" in msg:
            return ("TLS: the broker's certificate has expired (or this machine's clock is wrong)",
                    "check the clock (timedatectl); ask HQ to renew the broker certificate")
        if "not yet valid" in msg:
            return ("TLS: the broker's certificate is not valid yet: this machine's clock is probably wrong",
                    "set the clock (timedatectl, NTP)")
        ca = tls.ca_file if tls is not None else "the system CAs"
        return (f"TLS: the broker's certificate is not signed by the CA in {ca} ({err.verify_message})",
                "install HQ's CA certificate as broker.tls.ca_file")
    if tls is not None and isinstance(err, ConnectionResetError | BrokenPipeError | ssl.SSLEOFError):
        return (f"TLS: {where} closed the connection during the TLS handshake: it does not speak TLS "
                "(a plain MQTT port?) or refused this post's client certificate",
                "use the broker's TLS port (usually 8883); check broker.tls.cert_file/key_file")
    if isinstance(err, ssl.SSLError):
        text = f"{err.reason or ''} {err}".lower()
        if "wrong_version_number" in text or "wrong version number" in text or "record layer failure" in text:
            return (f"TLS: {where} does not speak TLS (a plain MQTT port?)",
                    "use the broker's TLS port (usually 8883) or remove [broker.tls]")
        if "certificate required" in text or "bad certificate" in text or "unknown ca" in text:
            return ("TLS: the broker refused this post's client certificate",
                    "check broker.tls.cert_file/key_file: the certificate must be issued by HQ's CA")
        return (f"TLS handshake with {where} failed: {err}", "check the [broker.tls] files and the broker's TLS port")
    if isinstance(err, ConnectionRefusedError):
        return (f"nothing listens at {where} (connection refused)",
                "check broker.host and broker.port, and that the broker runs")
    if isinstance(err, socket.gaierror):
        return (f"cannot resolve the broker's name {broker.host!r} ({err.strerror})",
                "check DNS (/etc/resolv.conf) or use the broker's IP address")
    if isinstance(err, TimeoutError | socket.timeout):
        return (f"no answer from {where} (timed out): a firewall drops the packets or the host is down",
                "check the route and firewall to HQ (port must be open outbound)")
    if isinstance(err, ConnectionResetError | BrokenPipeError):
        return (f"{where} closed the connection during the handshake",
                "the port may expect TLS (add [broker.tls]) or the broker refuses this address")
    if isinstance(err, OSError) and err.errno is not None:
        return (f"cannot connect to {where}: {os.strerror(err.errno)}", "check the network to HQ")
    return (f"cannot connect to {where}: {err}", "check the network to HQ")


def mqtt_check(broker: BrokerSection, post_id: str, *, timeout_s: float = 10.0) -> dict[str, Any]:
    """Connect with the post's credentials and TLS, round-trip one message on ``diag/test``.

    Returns a JSON-ready dict with ``status`` ("pass"/"fail"), ``reason`` and ``fix``; never raises
    for the broker's or the network's faults (they are the findings).
    """
    topics = Topics(post_id, broker.topic_prefix)
    out: dict[str, Any] = {
        "broker": f"{broker.host}:{broker.port}", "tls": broker.tls is not None,
        "username": broker.username is not None, "topic": topics.diag_test, "mqtt5": None,
        "connected": False, "connect_ms": None, "subscribed": False, "rtt_ms": None,
        "reason_code": None, "status": "fail", "reason": "", "fix": "",
    }

    def fail(reason: str, fix: str, code: int | None = None) -> dict[str, Any]:
        out.update(status="fail", reason=reason, fix=fix, reason_code=code)
        return out

    mqtt5 = _speaks_v5(broker.host, broker.port, min(timeout_s, 3.0)) if broker.tls is None else True
    out["mqtt5"] = mqtt5
    client_id = f"{broker.client_id or 'post-' + post_id}-check-{uuid.uuid4().hex[:6]}"
    try:
        client, props = build_client(broker, client_id, mqtt5=mqtt5, clean=True)
    except ConfigError as err:
        return fail(f"cannot set up the connection: {err}", "fix the [broker] section named above")
    state: dict[str, Any] = {"connack": None, "suback": None, "puback": None, "echo": None}
    nonce = uuid.uuid4().hex

    def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: ReasonCode, p: Any) -> None:
        state["connack"] = reason

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: list[ReasonCode], p: Any) -> None:
        state["suback"] = reasons[0] if reasons else None

    def on_publish(c: mqtt.Client, u: Any, mid: int, reason: ReasonCode, p: Any) -> None:
        state["puback"] = reason

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        if isinstance(body, dict) and body.get("nonce") == nonce:
            state["echo"] = time.monotonic()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message
    deadline = time.monotonic() + timeout_s

    def pump(cond: str) -> bool:
        while state[cond] is None and time.monotonic() < deadline:
            rc = client.loop(timeout=0.05)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS and state[cond] is None:
                return False
        return state[cond] is not None

    t0 = time.monotonic()
    try:
        kwargs: dict[str, Any] = {"keepalive": broker.keepalive_s}
        if mqtt5:
            kwargs.update(clean_start=True, properties=props)
        client.connect(broker.host, broker.port, **kwargs)
    except (OSError, ssl.SSLError) as err:
        return fail(*explain_connect_error(err, broker))
    try:
        if not pump("connack"):
            closed = time.monotonic() < deadline
            if closed and broker.tls is None:
                return fail(f"{out['broker']} closed the connection without answering: does the port expect TLS?",
                            "add [broker.tls] with HQ's CA, or use the broker's plain port")
            return fail(f"no CONNACK from {out['broker']} within {timeout_s:g} s" if not closed else
                        f"{out['broker']} closed the connection without answering",
                        "check that host:port is HQ's MQTT broker and the firewall passes it")
        connack: ReasonCode = state["connack"]
        code = connack.value if mqtt5 else _V3.get(connack.value, connack.value)
        if connack.is_failure or (not mqtt5 and connack.value != 0):
            reason, fix = explain_refused_connect(code, broker)
            return fail(f"the broker refused the connection: {reason}", fix, code)
        out["connected"] = True
        out["connect_ms"] = round((time.monotonic() - t0) * 1000, 1)
        client.subscribe(topics.diag_test, qos=1)
        if not pump("suback"):
            return fail("no SUBACK for the test topic", "look at the broker's log")
        suback: ReasonCode = state["suback"]
        if suback.is_failure:
            reason = explain_reason(suback.value)[0]  # the ACL is what refuses a post's own topic
            return fail(f"subscribing to {topics.diag_test} refused: {reason}",
                        "HQ's ACL must let the post read its own diag/test topic", suback.value)
        out["subscribed"] = True
        body = {"schema": "customs.diag_test/1", "post_id": post_id, "nonce": nonce, "sent_at": iso_time(time.time())}
        t_pub = time.monotonic()
        client.publish(topics.diag_test, json.dumps(body).encode(), qos=1)
        if not pump("puback"):
            return fail("the broker did not acknowledge the test message", "look at the broker's log")
        puback: ReasonCode = state["puback"]
        if puback.is_failure:
            reason = explain_reason(puback.value)[0]
            return fail(f"publishing to {topics.diag_test} refused: {reason}",
                        "HQ's ACL must let the post write its own topics", puback.value)
        if not pump("echo"):
            return fail(f"the test message did not come back within {timeout_s:g} s",
                        "the broker accepted it but did not deliver it: check the broker's ACL for reading")
        out["rtt_ms"] = round((state["echo"] - t_pub) * 1000, 1)
        out.update(status="pass", reason=f"round trip {out['rtt_ms']:.1f} ms on {topics.diag_test}", fix="")
        return out
    finally:
        try:
            client.disconnect()
            client.loop(timeout=0.05)
        except (OSError, ValueError, RuntimeError):
            pass
