"""The MQTT uplink: publishes the journal to HQ in seq order and waits for HQ's end-to-end ack.

Why it is built this way:

* The journal is the only queue. The uplink keeps a cursor (the next seq to send) and a bounded map of
  messages waiting for PUBACK; paho's own outgoing store is emptied on every (re)connect so nothing
  lives only in memory and the order on the wire is always the journal's.
* A PUBACK means the broker took the message, not that HQ stored it. Only HQ's retained ``ack``
  (the highest seq it holds with no gap) marks events delivered. Events sent but not acknowledged
  within ``ack_timeout_s`` are sent again from the ack onwards (go-back-N, backing off while HQ stays
  silent); HQ drops the duplicates by event id.
* A missing PUBACK on a live connection cannot be retransmitted in MQTT 5; the uplink reconnects,
  which is what the protocol prescribes.
* A PUBACK refusal (reason code >= 0x80, e.g. not authorised) keeps the event, raises an alert (log,
  counter, status) and retries after a pause: publishing never skips past an event.
* One thread does all network work (``client.loop``) so paho callbacks, the cursor and the in-flight
  map need no locks; other threads only set flags (:meth:`Uplink.kick`) or enqueue small messages.
"""

from __future__ import annotations

import collections
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.broker import speaks_mqtt5
from edge.config import BrokerSection
from edge.errors import ConfigError, StorageError
from edge.events import iso_time
from edge.outbox.journal import Journal
from edge.topics import Topics

log = logging.getLogger(__name__)

CommandHandler = Callable[[bytes], dict[str, Any] | None]
"""Called with a raw ``cmd`` message; a returned dict is published on ``cmd/result``."""

_LOOP_TIMEOUT_S = 0.05
_CONNECT_TIMEOUT_S = 10.0
_REFUSAL_PAUSE_S = 5.0


def build_client(
    broker: BrokerSection, client_id: str, *, mqtt5: bool, clean: bool = False
) -> tuple[mqtt.Client, Properties | None]:
    """A paho client configured from the broker section: protocol, credentials, TLS. Never logs secrets."""
    if mqtt5:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        props: Properties | None = Properties(PacketTypes.CONNECT)
        assert props is not None
        props.SessionExpiryInterval = 0 if clean else broker.session_expiry_s
    else:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=clean
        )
        props = None
    if broker.username is not None:
        password = broker.password.resolve().get_secret_value() if broker.password is not None else None
        client.username_pw_set(broker.username.resolve().get_secret_value(), password)
    if broker.tls is not None:
        tls = broker.tls
        try:
            client.tls_set(
                ca_certs=str(tls.ca_file),
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        except (OSError, ssl.SSLError, ValueError) as err:
            raise ConfigError("broker.tls", [("broker.tls", f"cannot load TLS files: {err}")]) from err
        if tls.insecure_skip_hostname:
            client.tls_insecure_set(True)
    return client, props


class Uplink:
    """Delivers one post's journal to HQ over MQTT; ``start()`` runs it in a background thread."""

    def __init__(
        self,
        broker: BrokerSection,
        post_id: str,
        journal: Journal,
        *,
        on_command: CommandHandler | None = None,
        window: int | None = None,
        client_id: str | None = None,
    ) -> None:
        self.broker = broker
        self.post_id = post_id
        self.journal = journal
        self.on_command = on_command
        self.topics = Topics(post_id, broker.topic_prefix)
        self.max_inflight = broker.max_inflight
        self.window = window if window is not None else max(100, 10 * broker.max_inflight)
        self.ack_timeout_s = broker.ack_timeout_s
        self.client_id = client_id or broker.client_id or f"post-{post_id}"
        self._client: mqtt.Client | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._outbox: collections.deque[tuple[str, bytes, int, bool]] = collections.deque(maxlen=100)
        # Held while a command is handled and its first answer queued: a result that a handler's
        # background work publishes later (publish_command_result) never overtakes that answer.
        self._command_lock = threading.Lock()
        # Network-thread state (touched only there, read by status()).
        self._connected = False
        self._subscribed = False
        self._sock_up = False
        self._connect_started = 0.0
        self._mqtt5 = True
        self._last_ack = journal.last_ack()
        self._cursor = self._last_ack + 1
        self._inflight: dict[int, tuple[int, float]] = {}
        self._published: list[int] = []
        self._unacked_since: float | None = None
        self._ack_backoff = 1
        self._hold_until = 0.0
        self._refusal_pause = _REFUSAL_PAUSE_S
        self._resends = 0
        self._refusals = 0
        self._last_refusal: str | None = None
        self._reconnects = 0
        self._last_error: str | None = None
        self._down_logged = False

    # -- public API --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering in the background. Raises ConfigError now for bad credentials or TLS files."""
        if self._thread is not None:
            return
        self._client = self._make_client()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"uplink-{self.post_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish 'offline' (best effort), disconnect and join the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def kick(self) -> None:
        """New events are in the journal: publish them at the next turn of the loop (<= 50 ms)."""
        self._wake.set()

    def publish(self, topic: str, payload: dict[str, Any] | bytes, qos: int = 0, retain: bool = False) -> None:
        """Queue a small non-journal message (telemetry, command results) for the network thread.

        Bounded: when the link is down the oldest are dropped; nothing legally relevant goes here.
        """
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self._outbox.append((topic, data, qos, retain))
        self._wake.set()

    def publish_command_result(self, payload: dict[str, Any]) -> None:
        """Queue a command's later result (a report its handler finished in the background), after
        the answer the handler gave at once, however fast the background work was."""
        with self._command_lock:
            self.publish(self.topics.cmd_result, payload, qos=1)

    def status(self) -> dict[str, Any]:
        count, oldest = self.journal.backlog()
        return {
            "post_id": self.post_id,
            "connected": self._connected,
            "subscribed": self._connected and self._subscribed,
            "mqtt5": self._mqtt5,
            "backlog": count,
            "oldest_undelivered_age_s": oldest,
            "last_ack": self._last_ack,
            "last_seq": self.journal.last_seq(),
            "inflight": len(self._inflight),
            "resends": self._resends,
            "refusals": self._refusals,
            "last_refusal": self._last_refusal,
            "reconnects": self._reconnects,
            "last_error": self._last_error,
        }

    @property
    def connected(self) -> bool:
        return self._connected

    def alive(self) -> bool:
        """The uplink's thread still runs (connected or not): what the systemd watchdog checks."""
        return self._thread is not None and self._thread.is_alive()

    # -- network thread ----------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        self._mqtt5 = speaks_mqtt5(self.broker.host, self.broker.port, refresh=True)
        if not self._mqtt5:
            log.warning("broker %s:%d speaks MQTT 3.1.1 only; PUBACK reason codes unavailable",
                        self.broker.host, self.broker.port)
        client, self._connect_props = build_client(self.broker, self.client_id, mqtt5=self._mqtt5)
        # Headroom over our own window for status and command results, so paho never holds an event
        # back in its queue while our PUBACK timer runs.
        client.max_inflight_messages_set(self.max_inflight + 10)
        client.will_set(self.topics.status, self._status_payload("offline"), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        kwargs: dict[str, Any] = {"keepalive": self.broker.keepalive_s}
        if self._mqtt5:
            kwargs["clean_start"] = False
            kwargs["properties"] = self._connect_props
        client.connect_async(self.broker.host, self.broker.port, **kwargs)
        return client

    def _status_payload(self, state: str) -> bytes:
        return json.dumps({"schema": "customs.status/1", "post_id": self.post_id, "state": state,
                           "at": iso_time(time.time())}).encode()

    def _run(self) -> None:
        backoff = 0.5
        client = self._client
        assert client is not None
        try:
            while not self._stop.is_set():
                if not self._sock_up:
                    try:
                        client.reconnect()
                        self._sock_up = True
                        self._connect_started = time.monotonic()
                    except (OSError, ssl.SSLError) as err:
                        self._note_down(f"cannot connect to {self.broker.host}:{self.broker.port}: {err}")
                        self._stop.wait(backoff)
                        backoff = min(backoff * 2, 15.0)
                        if not self._mqtt5 or backoff >= 4:
                            # The broker may have changed (3.1.1 fallback vs a real one): re-probe.
                            if speaks_mqtt5(self.broker.host, self.broker.port, refresh=True) != self._mqtt5:
                                self._client = client = self._make_client()
                        continue
                rc = client.loop(timeout=_LOOP_TIMEOUT_S)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    self._sock_up = False
                    self._connected = False
                    self._note_down(f"connection lost ({mqtt.error_string(rc)})")
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 15.0)
                    continue
                if not self._connected:
                    if time.monotonic() - self._connect_started > _CONNECT_TIMEOUT_S:
                        self._note_down("no CONNACK from the broker; reconnecting")
                        self._sock_up = False
                    continue
                backoff = 0.5
                try:
                    self._pump()
                except (StorageError, ValueError, OSError) as err:
                    # The journal could not be read or written (disk full, a corrupt row): keep the
                    # link, say so once, and try again shortly; events stay where they are.
                    why = f"journal: {err}"
                    if why != self._last_error:
                        log.error("uplink %s cannot read the journal: %s", self.post_id, err)
                    self._last_error = why
                    self._stop.wait(1.0)
                if self._wake.is_set():
                    self._wake.clear()
        except Exception:  # a bug: log it loudly rather than let the thread vanish
            log.exception("uplink thread failed; events stay in the journal until restart")
            self._last_error = "uplink thread failed (see log)"
        finally:
            self._shutdown(client)

    def _shutdown(self, client: mqtt.Client) -> None:
        if self._connected:
            try:
                info = client.publish(self.topics.status, self._status_payload("offline"), qos=1, retain=True)
                deadline = time.monotonic() + 2.0
                while not info.is_published() and time.monotonic() < deadline:
                    if client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        break
                self._flush_published()
                client.disconnect()
                client.loop(timeout=0.1)
            except (OSError, RuntimeError, ValueError) as err:
                log.debug("uplink shutdown: %s", err)
        self._connected = False
        self._sock_up = False

    def _note_down(self, why: str) -> None:
        self._last_error = why
        if not self._down_logged:
            log.warning("uplink %s: %s (events stay in the journal)", self.post_id, why)
            self._down_logged = True

    # -- paho callbacks (network thread) -----------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            self._last_error = f"broker refused the connection: {reason}"
            log.error("uplink %s: broker refused the connection: %s", self.post_id, reason)
            self._sock_up = False
            return
        # Our journal is the queue: forget paho's copies and send again, in order, from the first
        # event the broker did not confirm. If the broker lost our session (restarted without its
        # persistence) it may have lost what it confirmed too: then start over from HQ's ack.
        client.drop_out_messages()
        self._subscribed = False
        if not getattr(flags, "session_present", False):
            self._cursor = self._last_ack + 1
        elif self._inflight:
            self._cursor = min(self._cursor, *(seq for seq, _ in self._inflight.values()))
        self._inflight.clear()
        if self._cursor > self._last_ack + 1 and self._unacked_since is None:
            self._unacked_since = time.monotonic()
        self._connected = True
        self._reconnects += 1
        if self._down_logged:
            log.info("uplink %s: connected again to %s:%d", self.post_id, self.broker.host, self.broker.port)
            self._down_logged = False
        else:
            log.info("uplink %s: connected to %s:%d (MQTT %s)", self.post_id, self.broker.host,
                     self.broker.port, "5" if self._mqtt5 else "3.1.1")
        client.subscribe([(self.topics.ack, 1), (self.topics.cmd, 1)])
        client.publish(self.topics.status, self._status_payload("online"), qos=1, retain=True)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode], properties: Any
    ) -> None:
        if any(r.is_failure for r in reasons):
            self._last_error = f"subscription to ack/cmd refused: {reasons}"
            log.error("uplink %s: the broker refused the ack/cmd subscription (%s): events will never be"
                      " marked delivered; check the ACL", self.post_id, reasons)
            return
        self._subscribed = True

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        self._connected = False
        self._subscribed = False
        self._sock_up = False
        if not self._stop.is_set():
            self._note_down(f"disconnected ({reason})")

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        entry = self._inflight.pop(mid, None)
        if entry is None:
            return
        seq = entry[0]
        if reason.is_failure:
            self._refusals += 1
            self._last_refusal = f"seq {seq}: {reason}"
            log.error(
                "ALERT broker refused event seq %d of post %s: %s; it stays in the journal and is retried",
                seq, self.post_id, reason,
            )
            # Retry after a pause that doubles while the refusals go on (up to 5 min): the alert
            # repeats, but a misconfigured ACL does not turn into a flood.
            self._hold_until = time.monotonic() + self._refusal_pause
            self._refusal_pause = min(self._refusal_pause * 2, 300.0)
            self._cursor = min(self._cursor, seq)
            return
        self._refusal_pause = _REFUSAL_PAUSE_S
        self._published.append(seq)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.topics.ack:
            self._handle_ack(bytes(msg.payload))
        elif msg.topic == self.topics.cmd:
            self._handle_command(bytes(msg.payload))

    def _handle_ack(self, data: bytes) -> None:
        try:
            body = json.loads(data)
            seq = int(body["seq"])
        except (ValueError, KeyError, TypeError) as err:
            log.warning("uplink %s: ignoring a malformed ack (%s)", self.post_id, err)
            return
        if seq <= self._last_ack:
            return
        self._flush_published()
        self._last_ack = self.journal.mark_acked(seq)
        self._cursor = max(self._cursor, self._last_ack + 1)
        self._ack_backoff = 1
        self._unacked_since = time.monotonic() if self._cursor > self._last_ack + 1 else None

    def _handle_command(self, data: bytes) -> None:
        if self.on_command is None:
            log.warning("uplink %s: received a command but no command handler is installed", self.post_id)
            return
        with self._command_lock:
            try:
                result = self.on_command(data)
            except Exception as err:  # a handler bug must not take the uplink down
                log.exception("command handler failed")
                result = {"ok": False, "error": f"handler failed: {err}", "id": None}
            if result is not None:
                self.publish(self.topics.cmd_result, result, qos=1)

    # -- publishing --------------------------------------------------------------------------------

    def _flush_published(self) -> None:
        if self._published:
            seqs, self._published = self._published, []
            self.journal.mark_published(seqs)

    def _pump(self) -> None:
        client = self._client
        assert client is not None
        now = time.monotonic()
        self._flush_published()
        while self._outbox:
            topic, data, qos, retain = self._outbox.popleft()
            client.publish(topic, data, qos=qos, retain=retain)
        # A PUBACK that never comes cannot be retransmitted on the same connection: reconnect.
        if self._inflight:
            oldest = min(t for _, t in self._inflight.values())
            if now - oldest > self.ack_timeout_s:
                log.warning("uplink %s: no PUBACK for %.1f s; reconnecting to resend", self.post_id,
                            now - oldest)
                self._resends += 1
                # A clean DISCONNECT first, so the broker does not publish our last will ('offline').
                client.disconnect()
                client.loop(timeout=0.05)
                self._connected = False
                self._subscribed = False
                self._sock_up = False
                return
        # HQ silent about what we sent: go back to the ack and send again, backing off.
        if self._unacked_since is not None and self._cursor > self._last_ack + 1:
            if now - self._unacked_since > self.ack_timeout_s * self._ack_backoff:
                log.warning(
                    "uplink %s: HQ has not acknowledged seqs %d..%d; sending them again",
                    self.post_id, self._last_ack + 1, self._cursor - 1,
                )
                self._resends += 1
                self._ack_backoff = min(self._ack_backoff * 2, 32)
                self._cursor = self._last_ack + 1
                self._unacked_since = now
        if now < self._hold_until:
            return
        room = self.max_inflight - len(self._inflight)
        span = self.window - (self._cursor - 1 - self._last_ack)
        limit = min(room, span)
        if limit <= 0:
            return
        for ev in self.journal.pending(limit, after_seq=self._cursor - 1):
            info = client.publish(self.topics.events(ev.lane_id), ev.raw, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                # Not sent (link dropped under us): paho's copy is discarded at the next connect and the
                # event is sent again from the journal.
                self._note_down(f"publish of seq {ev.seq} failed: {mqtt.error_string(info.rc)}")
                self._connected = False
                self._sock_up = False
                break
            self._inflight[info.mid] = (ev.seq, now)
            if self._unacked_since is None:
                self._unacked_since = now
            self._cursor = ev.seq + 1

