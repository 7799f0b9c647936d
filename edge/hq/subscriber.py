"""The HQ subscriber: receive every post's events, verify, store durably, then acknowledge.

Order of operations per message, and why:

1. validate the payload's shape (schema, ids, seq, topic agrees with payload): garbage is recorded as
   a problem, never stored, never acknowledged;
2. verify hash and Ed25519 signature with the post's known key (or the key pinned on first use): a
   tampered event is flagged and not acknowledged, so the post keeps it and HQ's people see it;
3. store it (a duplicate event id is dropped: re-sends are normal);
4. walk the chain forward from the contiguous point, checking each ``prev_hash``; a break stops the
   walk and is flagged;
5. publish the per-post ack (retained, QoS 1): the highest seq stored with no gap and an intact chain.
   Only this marks events delivered at the post.

Missing seqs are reported the moment a later seq arrives, by number (log + problems table).

Key rotation (:mod:`edge.outbox.rotation`): a post announces a new signing key with an event in lane
``_post`` (schema ``customs.key_rotation/1``), sealed by its old key. HQ verifies the statement
against the key in force at that seq; a refused one is flagged ``bad_rotation`` and not acknowledged.
The key in force at any seq is derived from the stored (hence verified) rotation events: the old key
of the first rotation at or after it, else the new key of the last one, else the enrolled or pinned
key. An event signed by a key no stored rotation announced is refused. Rotation events are stored and
acknowledged like any event (they are part of the chain) but are not crossings: ``on_event`` is not
called for them (they are logged instead) and ``recent()`` without a lane leaves them out.
Several HQ processes share the load with an MQTT v5 shared subscription ``$share/<group>/...``.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.broker import speaks_mqtt5
from edge.config import BrokerSection
from edge.errors import IntegrityError, StorageError
from edge.events import iso_time
from edge.hq.store import EventStore
from edge.outbox.rotation import ROTATION_LANE, ROTATION_SCHEMA, check_rotation, is_rotation
from edge.outbox.signing import (
    GENESIS_HASH,
    PublicKeyLike,
    b64,
    canonical_json,
    key_id_of,
    public_key_from,
    public_raw,
    verify_event,
)
from edge.outbox.uplink import build_client
from edge.topics import DEFAULT_PREFIX, Topics, all_posts_events, post_of

log = logging.getLogger(__name__)

SCHEMA_PREFIX = "customs.vehicle_event/"
REQUIRED = ("schema", "event_id", "post_id", "lane_id", "seq", "integrity")
_REACK_INTERVAL_S = 1.0


def validate_payload(payload: Any, topic_post: str | None, topic_lane: str | None) -> list[str]:
    """Problems with the shape of an event payload (empty when fine)."""
    if not isinstance(payload, dict):
        return ["payload is not a JSON object"]
    errs = [f"missing key {k!r}" for k in REQUIRED if k not in payload]
    if errs:
        return errs
    schema = payload["schema"]
    if not isinstance(schema, str) or not (schema.startswith(SCHEMA_PREFIX) or schema == ROTATION_SCHEMA):
        errs.append(f"unknown schema {schema!r}")
    elif (schema == ROTATION_SCHEMA) != (payload.get("lane_id") == ROTATION_LANE):
        errs.append(f"lane {ROTATION_LANE!r} carries key rotations ({ROTATION_SCHEMA}) and nothing else")
    for k in ("event_id", "post_id", "lane_id"):
        if not isinstance(payload[k], str) or not payload[k]:
            errs.append(f"{k} must be a non-empty string")
    if not isinstance(payload["seq"], int) or isinstance(payload["seq"], bool) or payload["seq"] < 1:
        errs.append("seq must be a positive integer")
    if not isinstance(payload["integrity"], dict):
        errs.append("integrity must be an object")
    if topic_post is not None and payload.get("post_id") != topic_post:
        errs.append(f"post_id {payload.get('post_id')!r} does not match the topic's post {topic_post!r}")
    if topic_lane is not None and payload.get("lane_id") != topic_lane:
        errs.append(f"lane_id {payload.get('lane_id')!r} does not match the topic's lane {topic_lane!r}")
    return errs


def _key_id(key: PublicKeyLike) -> str:
    return key_id_of(public_raw(public_key_from(key)))


def _ranges(seqs: list[int]) -> str:
    out: list[str] = []
    start = prev = None
    for s in seqs:
        if prev is not None and s == prev + 1:
            prev = s
            continue
        if start is not None:
            out.append(str(start) if start == prev else f"{start}..{prev}")
        start = prev = s
    if start is not None:
        out.append(str(start) if start == prev else f"{start}..{prev}")
    return ", ".join(out)


class HQSubscriber:
    """Subscribes to all posts' events, verifies, stores and acknowledges them."""

    def __init__(
        self,
        host: str,
        port: int,
        store: EventStore,
        *,
        share_group: str | None = "hq",
        prefix: str = DEFAULT_PREFIX,
        keys: dict[str, PublicKeyLike] | None = None,
        trust_on_first_use: bool = False,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        client_id: str | None = None,
        broker: BrokerSection | None = None,
        session_expiry_s: int = 24 * 3600,
        gap_grace_s: float = 1.0,
        batch_max: int = 200,
        queue_max: int = 10_000,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.share_group = share_group
        self.keys = {p: public_key_from(k) for p, k in (keys or {}).items()}
        self.trust_on_first_use = trust_on_first_use
        self.on_event = on_event
        self.broker = broker or BrokerSection.model_validate({"host": host, "port": port, "topic_prefix": prefix})
        if broker is not None:
            self.broker = broker.model_copy(update={"host": host, "port": port})
        self.client_id = client_id or f"hq-{share_group or 'solo'}-{socket.gethostname()}"
        self.session_expiry_s = session_expiry_s
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._reported_missing: dict[str, set[int]] = {}
        self._reported_breaks: set[tuple[str, int]] = set()
        self._last_ack_sent: dict[str, tuple[int, float]] = {}
        self.gap_grace_s = gap_grace_s
        self._gap_timers: dict[str, threading.Timer] = {}
        self._timer_lock = threading.Lock()
        self.mqtt5 = True
        self._last_activity = time.monotonic()
        self._post_states: dict[str, str] = {}
        self.batch_max = batch_max
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(maxsize=queue_max)
        self._worker: threading.Thread | None = None
        self._busy = False
        self.stats = {"received": 0, "stored": 0, "duplicates": 0, "rejected": 0, "acks": 0}
        self._rotations: dict[str, list[tuple[int, str, str]]] = {}
        """post -> [(seq, old key b64, new key b64)] of verified rotations, cached from the store."""

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def subscription(self) -> str:
        topic = all_posts_events(self.prefix)
        if self.share_group and self.mqtt5:
            return f"$share/{self.share_group}/{topic}"
        return topic

    def start(self, wait_s: float | None = 10.0) -> None:
        """Connect and subscribe in paho's network thread; with ``wait_s``, wait for the SUBACK."""
        self.mqtt5 = speaks_mqtt5(self.broker.host, self.broker.port, refresh=True)
        if not self.mqtt5:
            log.warning("broker speaks MQTT 3.1.1 only: no shared subscription, one HQ process only")
        client, props = build_client(self.broker, self.client_id, mqtt5=self.mqtt5)
        if props is not None:
            props.SessionExpiryInterval = self.session_expiry_s
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.reconnect_delay_set(1, 10)
        kwargs: dict[str, Any] = {"keepalive": self.broker.keepalive_s}
        if self.mqtt5:
            kwargs["clean_start"] = False
            kwargs["properties"] = props
        client.connect_async(self.broker.host, self.broker.port, **kwargs)
        self._client = client
        self._worker = threading.Thread(target=self._work, name="hq-worker", daemon=True)
        self._worker.start()
        client.loop_start()
        if wait_s is not None and not self._subscribed.wait(wait_s):
            log.warning("HQ subscriber: not subscribed after %.0f s (broker %s:%d down?); retrying in the"
                        " background", wait_s, self.broker.host, self.broker.port)

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        self._connected.clear()
        with self._timer_lock:
            timers, self._gap_timers = list(self._gap_timers.values()), {}
        for t in timers:
            t.cancel()
        try:
            client.disconnect()
        finally:
            client.loop_stop()
        # What was already received is processed (stored; its acks may not go out now, the posts'
        # re-sends fetch them), then the worker ends.
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(30)
            self._worker = None

    def wait_idle(self, timeout: float, quiet_s: float = 0.5) -> bool:
        """Wait until no message has arrived for ``quiet_s`` (the stream has drained); False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            idle_for = time.monotonic() - self._last_activity
            if idle_for >= quiet_s and self._queue.empty() and not self._busy:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(quiet_s - idle_for, max(0.0, deadline - time.monotonic()), 0.1) + 0.001)

    def wait_subscribed(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def alive(self) -> bool:
        """The storing worker still runs: what the systemd watchdog checks."""
        return self._worker is not None and self._worker.is_alive()

    # -- paho callbacks (paho's thread) ------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        if reason.is_failure:
            log.error("HQ subscriber: broker refused the connection: %s", reason)
            return
        self._connected.set()
        log.info("HQ subscriber connected to %s:%d; subscribing %s", self.broker.host, self.broker.port,
                 self.subscription)
        # Status is retained, and retained messages are not sent to shared subscriptions: every HQ
        # process reads it directly (it is small and idempotent).
        client.subscribe([(self.subscription, 1), (f"{self.prefix}/+/status", 1)])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode],
                      props: Any) -> None:
        if reasons and reasons[0].is_failure:
            log.error("HQ subscriber: subscription to %s refused: %s", self.subscription, reasons[0])
            return
        if len(reasons) > 1 and reasons[1].is_failure:
            log.warning("HQ subscriber: status subscription refused (%s): posts' online state unknown", reasons[1])
        self._subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                       props: Any) -> None:
        if self._connected.is_set():
            log.warning("HQ subscriber disconnected (%s); reconnecting", reason)
        self._connected.clear()
        self._subscribed.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._last_activity = time.monotonic()
        if msg.topic.endswith("/status"):
            self._handle_status(msg.topic, bytes(msg.payload))
            return
        # To the worker; a full queue blocks paho's thread, which is the backpressure we want.
        self._queue.put((msg.topic, bytes(msg.payload)))

    def _work(self) -> None:
        """Take what has arrived (up to ``batch_max``) and process it with one commit."""
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self.batch_max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._busy = True
            try:
                self.handle_batch(batch)
            except StorageError as err:
                # Not stored, so not acked: the posts send it again. Say why, loudly.
                log.error("HQ store failed for %d message(s): %s", len(batch), err)
            except Exception:
                log.exception("HQ subscriber: unexpected failure handling %d message(s)", len(batch))
            finally:
                self._busy = False
                self._last_activity = time.monotonic()
            if stop:
                return

    def _handle_status(self, topic: str, data: bytes) -> None:
        post = post_of(topic, self.prefix)
        try:
            state = json.loads(data)["state"] if data else "unknown"
        except (ValueError, KeyError, TypeError):
            log.warning("post %s: malformed status message", post)
            return
        if post is None or not isinstance(state, str):
            return
        try:
            self.store.set_post_status(post, state)
        except StorageError as err:
            log.error("HQ store: cannot record the status of post %s: %s", post, err)
            return
        before = self._post_states.get(post)
        self._post_states[post] = state
        if before is not None and before != state:
            # A change while we watch: worth the log. Retained states replayed at connect are not.
            (log.warning if state == "offline" else log.info)("post %s is now %s", post, state)

    # -- the pipeline ------------------------------------------------------------------------------

    def handle(self, topic: str, data: bytes) -> str:
        """Process one message; returns what happened: stored, gap, duplicate, or the rejection kind."""
        return self.handle_batch([(topic, data)])[0]

    def handle_batch(self, items: list[tuple[str, bytes]]) -> list[str]:
        """Process messages in arrival order with one durable commit for all of them (group commit).

        Acks are published only after that commit. A store failure raises StorageError: nothing of
        the batch is acknowledged and the posts send it again.
        """
        with self._lock:
            results: list[str] = [""] * len(items)
            candidates: list[tuple[int, str, int, dict[str, Any]]] = []
            for i, (topic, data) in enumerate(items):
                checked = self._check(topic, data)
                if isinstance(checked, str):
                    results[i] = checked
                else:
                    candidates.append((i, *checked))
            if not candidates:
                return results
            rotated = {c[1] for c in candidates if is_rotation(c[3])}
            try:
                outcomes = self.store.insert_events([c[3] for c in candidates])
            finally:
                for post in rotated:  # tentative until stored: re-read from the store when next needed
                    self._rotations.pop(post, None)
            new: list[tuple[int, str, int, dict[str, Any]]] = []
            dup_posts: set[str] = set()
            for cand, outcome in zip(candidates, outcomes, strict=True):
                i, post, seq, payload = cand
                if outcome == "new":
                    self.stats["stored"] += 1
                    new.append(cand)
                elif outcome == "duplicate":
                    self.stats["duplicates"] += 1
                    results[i] = "duplicate"
                    dup_posts.add(post)
                else:
                    results[i] = self._reject(post, seq, "seq_conflict", outcome.removeprefix("conflict: "),
                                              canonical_json(payload))
            advanced = {post for post in {c[1] for c in new} if self._advance(post)}
            for i, post, seq, _payload in new:
                results[i] = "stored"
                if seq > self.store.contiguous_seq(post):
                    results[i] = "gap"
                    # A new hole opens only when this event's predecessor is absent; otherwise the hole
                    # before it is known already (a long-lasting gap must not cost a scan per event).
                    if self.store.get_link(post, seq - 1) is None:
                        self._report_gap(post)
            for post in advanced:
                self._reack(post, force=True)
            for post in dup_posts - advanced:
                self._reack(post, force=False)
            for _i, post, seq, payload in new:
                if is_rotation(payload):
                    self._rotation_stored(post, seq, payload)
            if self.on_event is not None:
                for _i, _post, _seq, payload in new:
                    if is_rotation(payload):
                        continue  # not a crossing
                    try:
                        self.on_event(payload)
                    except Exception:
                        log.exception("on_event callback failed")
            return results

    def _reject(self, post: str, seq: int | None, kind: str, detail: str, data: bytes) -> str:
        self.stats["rejected"] += 1
        log.error("post %s seq %s REJECTED (%s): %s", post, seq, kind, detail)
        self.store.record_problem(post, seq, kind, detail, data)
        return kind

    def _check(self, topic: str, data: bytes) -> str | tuple[str, int, dict[str, Any]]:
        """Shape, key and signature: the rejection kind, or (post, seq, payload) ready to store."""
        self.stats["received"] += 1
        parts = topic.split("/")
        head = self.prefix.split("/")
        topic_post = parts[len(head)] if len(parts) == len(head) + 3 else None
        topic_lane = parts[-1] if topic_post is not None else None
        post = topic_post or "?"
        try:
            payload = json.loads(data)
        except (ValueError, UnicodeDecodeError) as err:
            return self._reject(post, None, "malformed", f"not JSON: {err}", data)
        problems = validate_payload(payload, topic_post, topic_lane)
        if problems:
            seq = payload.get("seq") if isinstance(payload, dict) else None
            return self._reject(post, seq if isinstance(seq, int) else None, "invalid", "; ".join(problems), data)
        seq = int(payload["seq"])
        base = self._key_for(post, payload)
        if base is None:
            return self._reject(post, seq, "unknown_post", "no public key known for this post", data)
        key = self._key_at(post, seq, base)
        if payload["integrity"].get("key_id") != _key_id(key):
            # Another HQ process may have stored a rotation meanwhile: ask the store once more.
            key = self._key_at(post, seq, base, refresh=True)
        try:
            verify_event(payload, key)
        except IntegrityError as err:
            detail = str(err)
            if payload["integrity"].get("key_id") != _key_id(key):
                detail += " (no key rotation announcing that key has been received)"
            return self._reject(post, seq, "tampered", detail, data)
        if is_rotation(payload):
            try:
                new_key = check_rotation(payload, b64(public_raw(public_key_from(key))), post)
            except IntegrityError as err:
                return self._reject(post, seq, "bad_rotation", str(err), data)
            # Later events of this batch are checked before it is stored: trust it tentatively.
            rots = self._rotations_of(post)
            if not any(r[0] == seq for r in rots):
                rots.append((seq, b64(public_raw(public_key_from(key))), new_key))
                rots.sort()
        return post, seq, payload

    def _rotations_of(self, post: str, refresh: bool = False) -> list[tuple[int, str, str]]:
        if refresh or post not in self._rotations:
            rots = []
            for p in self.store.key_rotations(post):
                st = p["key_rotation"]
                rots.append((int(p["seq"]), str(st["old_public_key"]), str(st["new_public_key"])))
            self._rotations[post] = sorted(rots)
        return self._rotations[post]

    def _key_at(self, post: str, seq: int, base: PublicKeyLike, refresh: bool = False) -> PublicKeyLike:
        """The key that must have signed ``post``'s event ``seq``, following its verified rotations."""
        rots = self._rotations_of(post, refresh)
        for r_seq, old, _new in rots:
            if r_seq >= seq:
                return old  # the rotation event itself is sealed by the old key
        return rots[-1][2] if rots else base

    def _rotation_stored(self, post: str, seq: int, payload: dict[str, Any]) -> None:
        st = payload["key_rotation"]
        log.warning("post %s rotated its signing key %s -> %s at seq %d (announced by the old key)",
                    post, st.get("old_key_id"), st.get("new_key_id"), seq)
        rots = self._rotations_of(post)
        if rots and rots[-1][0] == seq:
            # The pinned key is the one in force now; earlier ones stay provable from the stored rotations.
            self.store.pin_post_key(post, str(st["new_public_key"]), str(st["new_key_id"]))

    def _key_for(self, post: str, payload: dict[str, Any]) -> PublicKeyLike | None:
        if post in self.keys:
            return self.keys[post]
        pinned = self.store.post_key(post)
        if pinned is not None:
            return pinned
        if not self.trust_on_first_use:
            return None
        offered = payload["integrity"].get("public_key")
        if not isinstance(offered, str):
            return None
        try:
            pub = public_key_from(offered)
        except IntegrityError:
            return None
        try:
            verify_event(payload, pub)
        except IntegrityError:
            return pub  # not pinned: the caller's verify rejects it with the reason
        kid = key_id_of(public_raw(pub))
        self.store.pin_post_key(post, b64(public_raw(pub)), kid)
        log.warning("post %s: trusting its key %s on first use", post, kid)
        return pub

    def _advance(self, post: str) -> bool:
        """Move the contiguous point over stored events whose chain links check out."""
        start = c = self.store.contiguous_seq(post)
        prev_hash = GENESIS_HASH
        if c > 0:
            link = self.store.get_link(post, c)
            prev_hash = link[0] if link else ""
        while True:
            link = self.store.get_link(post, c + 1)
            if link is None:
                break
            if link[1] != prev_hash:
                if (post, c + 1) not in self._reported_breaks:
                    self._reported_breaks.add((post, c + 1))
                    detail = f"seq {c + 1}: prev_hash does not match the hash of seq {c} (chain broken)"
                    log.error("post %s INTEGRITY: %s", post, detail)
                    self.store.record_problem(post, c + 1, "chain_break", detail)
                break
            c += 1
            prev_hash = link[0]
        if c > start:
            self.store.set_contiguous_seq(post, c)
            missing = self._reported_missing.get(post)
            if missing:
                filled = sorted(s for s in missing if s <= c)
                if filled:
                    log.info("post %s: gap filled (seqs %s arrived)", post, _ranges(filled))
                    missing.difference_update(filled)
            return True
        return False

    def _report_gap(self, post: str) -> None:
        """Report missing seqs, after ``gap_grace_s`` if they are still missing then.

        The grace exists for shared subscriptions: when two HQ processes split one post's stream, each
        briefly sees the other's in-flight events as missing. With one process it can be 0.
        """
        missing = self.store.missing_seqs(post)
        if not missing:
            return
        if self.gap_grace_s <= 0:
            self._report_missing(post, missing)
            return
        with self._timer_lock:
            if post in self._gap_timers or self._client is None:
                return
            t = threading.Timer(self.gap_grace_s, self._gap_timer_fired, (post, set(missing)))
            t.daemon = True
            self._gap_timers[post] = t
            t.start()

    def _gap_timer_fired(self, post: str, earlier: set[int]) -> None:
        with self._timer_lock:
            if self._gap_timers.pop(post, None) is None:
                return  # cancelled by stop()
        try:
            with self._lock:
                if self._advance(post):  # another HQ process may have filled it meanwhile
                    self._reack(post, force=True)
                missing = self.store.missing_seqs(post)
                still = [s for s in missing if s in earlier]
                if still:
                    self._report_missing(post, still)
                if any(s not in earlier for s in missing):
                    self._report_gap(post)
        except Exception:
            log.exception("HQ subscriber: gap check for post %s failed", post)

    def _report_missing(self, post: str, missing: list[int]) -> None:
        reported = self._reported_missing.setdefault(post, set())
        new = [s for s in missing if s not in reported]
        if not new:
            return
        reported.update(new)
        detail = f"missing seqs {_ranges(new)} (have up to {self.store.contiguous_seq(post)} contiguous)"
        log.error("post %s GAP: %s", post, detail)
        self.store.record_problem(post, new[0], "gap", detail)

    def _reack(self, post: str, *, force: bool) -> None:
        seq = self.store.contiguous_seq(post)
        last = self._last_ack_sent.get(post)
        now = time.monotonic()
        if not force and last is not None and last[0] == seq and now - last[1] < _REACK_INTERVAL_S:
            return
        client = self._client
        if client is None or seq == 0:
            return
        body = json.dumps({"schema": "customs.ack/1", "post_id": post, "seq": seq,
                           "at": iso_time(time.time())}).encode()
        props = None
        if self.mqtt5:
            props = Properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = 30 * 24 * 3600
        info = client.publish(Topics(post, self.prefix).ack, body, qos=1, retain=True, properties=props)
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._last_ack_sent[post] = (seq, now)
            self.stats["acks"] += 1
