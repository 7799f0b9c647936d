"""Building blocks for delivery tests: a post (key, journal, uplink) and an HQ (store, subscriber)."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.broker import BrokerHandle
from edge.config import BrokerSection
from edge.hq.store import SqliteEventStore
from edge.hq.subscriber import HQSubscriber
from edge.outbox.journal import Journal
from edge.outbox.signing import PostKey, canonical_json
from edge.outbox.uplink import Uplink
from edge.topics import Topics
from tests.conftest import clear_retained_posts


def event_payload(post_id: str, lane_id: str, n: int = 0) -> dict[str, Any]:
    return {
        "schema": "customs.vehicle_event/1",
        "event_id": str(uuid.uuid4()),
        "post_id": post_id,
        "lane_id": lane_id,
        "first_seen": "2026-11-28T21:30:01.120Z",
        "plate": {"text": f"01A{n % 1000:03d}BC", "country": "UZ", "confidence": 0.97},
        "weighing": {"gross": 20000 + n, "unit": "kg"},
        "flags": {},
    }


def clear_retained(host: str, port: int, post_id: str) -> None:
    """Remove a test post's retained status and ack so the shared broker does not collect them."""
    clear_retained_posts(host, port, [post_id])


def broker_section(host: str, port: int, **kw: Any) -> BrokerSection:
    return BrokerSection.model_validate({"host": host, "port": port, **kw})


@dataclass
class Post:
    post_id: str
    dir: Path
    key: PostKey
    journal: Journal
    uplink: Uplink

    def append(self, lane: str, n: int = 0) -> int:
        seq = self.journal.append(event_payload(self.post_id, lane, n)).seq
        self.uplink.kick()
        return seq

    def close(self) -> None:
        self.uplink.stop()
        self.journal.close()


def make_post(tmp: Path, post_id: str, host: str, port: int, **broker_kw: Any) -> Post:
    d = tmp / post_id
    key = PostKey.load_or_create(d / "post.key")
    journal = Journal(d / "journal.sqlite", key, post_id)
    # Short session expiry: the shared broker must not keep test sessions (and their queues) for days.
    broker_kw.setdefault("session_expiry_s", 60)
    broker = broker_section(host, port, client_id=f"post-{post_id}", **broker_kw)
    return Post(post_id, d, key, journal, Uplink(broker, post_id, journal))


@dataclass
class HQ:
    store: SqliteEventStore
    sub: HQSubscriber
    seen: list[dict[str, Any]] = field(default_factory=list)

    def close(self) -> None:
        self.sub.stop()
        self.store.close()


def make_hq(tmp: Path, host: str, port: int, group: str, keys: dict[str, Any] | None = None,
            name: str = "hq", watch: str | None = None, **kw: Any) -> HQ:
    """An HQ on the broker; ``seen`` collects the events of post ``watch`` (the shared broker carries others')."""
    store = SqliteEventStore(tmp / f"{name}.sqlite")
    seen: list[dict[str, Any]] = []

    def on_event(p: dict[str, Any]) -> None:
        if watch is None or p.get("post_id") == watch:
            seen.append(p)

    sub = HQSubscriber(
        host, port, store, share_group=group, keys=keys, trust_on_first_use=keys is None,
        on_event=on_event,
        client_id=f"{group}-{name}", session_expiry_s=kw.pop("session_expiry_s", 60), **kw,
    )
    return HQ(store, sub, seen)


class Wire:
    """A bare MQTT client on the real broker: publishes raw payloads as a post would, records HQ's acks."""

    def __init__(self, broker: BrokerHandle, post_id: str, client_id: str) -> None:
        self.topics = Topics(post_id)
        self.acks: list[int] = []
        self._lock = threading.Lock()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.c.on_message = self._msg
        ready = threading.Event()
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()
        self.c.subscribe(self.topics.ack, qos=1)
        assert ready.wait(10)

    def _msg(self, c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        if m.payload:  # an empty retained message only clears the topic
            with self._lock:
                self.acks.append(json.loads(m.payload)["seq"])

    @property
    def last_ack(self) -> int:
        with self._lock:
            return self.acks[-1] if self.acks else 0

    def send(self, payload: dict[str, Any] | bytes, lane: str | None = None) -> None:
        """Publish on ``lane``'s events topic: by default the payload's own lane, else lane1."""
        if lane is None:
            lane = payload.get("lane_id", "lane1") if isinstance(payload, dict) else "lane1"
        data = payload if isinstance(payload, bytes) else canonical_json(payload)
        self.c.publish(self.topics.events(lane), data, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
