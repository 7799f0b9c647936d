"""The HQ subscriber's verify-store-acknowledge pipeline on both stores, with a real broker where needed.

Issue 7's required tests, run against SQLite and PostgreSQL alike: a tampered payload and a broken
chain are flagged and not acknowledged; two HQ processes on one shared subscription (and one database)
receive disjoint sets whose union is every event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.broker import BrokerHandle
from edge.hq.store import EventStore
from edge.hq.subscriber import HQSubscriber
from edge.outbox.signing import PublicKeyLike, seal, signed_body
from edge.topics import Topics
from tests.conftest import WaitFor
from tests.hq_pg.conftest import PostChain, StoreFactory

PREFIX = "customs/v1"


def offline_hq(store: EventStore, chain: PostChain) -> HQSubscriber:
    """A subscriber used without a connection: ``handle()`` is the whole pipeline; acks are its contiguous seq."""
    return HQSubscriber("127.0.0.1", 1, store, keys={chain.post_id: chain.key.public_b64}, prefix=PREFIX,
                        gap_grace_s=0)


def topic(ev: dict[str, Any]) -> str:
    return Topics(ev["post_id"], PREFIX).events(ev["lane_id"])


def send(hq: HQSubscriber, ev: dict[str, Any]) -> str:
    return hq.handle(topic(ev), json.dumps(ev).encode())


def test_tampered_event_is_flagged_and_not_acknowledged(
    store: EventStore, chain: Callable[..., PostChain]
) -> None:
    post = chain()
    hq = offline_hq(store, post)
    e1, e2, e3 = post.take(3)
    assert send(hq, e1) == "stored"
    forged = json.loads(json.dumps(e2))
    forged["weighing"]["gross"] = 18240.0  # ten tonnes fewer, signature left as it was
    assert send(hq, forged) == "tampered"
    assert store.contiguous_seq(post.post_id) == 1  # the ack stays below the tampered event
    assert store.count(post.post_id) == 1
    [problem] = store.problems(post.post_id)
    assert (problem.kind, problem.seq) == ("tampered", 2)
    assert "hash does not match" in problem.detail
    # The genuine event (the post re-sends it) then closes the gap and the ack moves past it.
    assert send(hq, e2) == "stored"
    assert send(hq, e3) == "stored"
    assert store.contiguous_seq(post.post_id) == 3


def test_broken_chain_is_flagged_and_not_acknowledged(store: EventStore, chain: Callable[..., PostChain]) -> None:
    post = chain()
    hq = offline_hq(store, post)
    e1, e2, e3 = post.take(3)
    # A validly signed event whose prev_hash skips e2: a rewritten history, by someone holding the key.
    body = {k: v for k, v in signed_body(e3).items() if k != "integrity"}
    rewritten = seal({**body, "event_id": str(uuid.uuid4())}, post.key, e1["integrity"]["hash"])
    assert send(hq, e1) == "stored"
    assert send(hq, e2) == "stored"
    assert send(hq, rewritten) == "gap"  # stored as evidence, but the chain walk stops before it
    assert store.contiguous_seq(post.post_id) == 2
    kinds = [(p.kind, p.seq) for p in store.problems(post.post_id)]
    assert ("chain_break", 3) in kinds
    assert send(hq, e3) == "seq_conflict"  # the honest seq 3 cannot replace the stored one silently
    assert store.contiguous_seq(post.post_id) == 2


def test_gap_is_named_and_ack_waits_for_it(store: EventStore, chain: Callable[..., PostChain]) -> None:
    post = chain()
    hq = offline_hq(store, post)
    evs = post.take(6)
    for ev in (evs[0], evs[1], evs[4], evs[5]):
        send(hq, ev)
    assert store.contiguous_seq(post.post_id) == 2
    gap = [p for p in store.problems(post.post_id) if p.kind == "gap"]
    assert gap and "3..4" in gap[0].detail
    send(hq, evs[3])
    send(hq, evs[2])
    assert store.contiguous_seq(post.post_id) == 6
    assert send(hq, evs[2]) == "duplicate"


@pytest.mark.broker
def test_two_hq_processes_on_a_shared_subscription_split_the_events(
    mqtt_broker: BrokerHandle, store_factory: StoreFactory, chain: Callable[..., PostChain],
    wait_for: WaitFor,
) -> None:
    if not mqtt_broker.mqtt5:
        pytest.skip("the broker speaks MQTT 3.1.1 only: no shared subscriptions")
    group = f"hq-{uuid.uuid4().hex[:8]}"
    posts = [chain(f"post-{uuid.uuid4().hex[:6]}", ("lane1", "lane2")) for _ in range(3)]
    keys: dict[str, PublicKeyLike] = {p.post_id: p.key.public_b64 for p in posts}
    seen: list[list[str]] = [[], []]

    def recorder(i: int) -> Callable[[dict[str, Any]], None]:
        return lambda ev: seen[i].append(ev["event_id"])

    hqs = [
        HQSubscriber(mqtt_broker.host, mqtt_broker.port, store_factory(), share_group=group, prefix=PREFIX,
                     keys=keys, on_event=recorder(i), client_id=f"{group}-{i}")
        for i in range(2)
    ]
    acks: dict[str, int] = {}
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{group}-pub", protocol=mqtt.MQTTv5)

    def on_ack(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.payload:
            body = json.loads(msg.payload)
            acks[body["post_id"]] = max(acks.get(body["post_id"], 0), int(body["seq"]))

    pub.on_message = on_ack
    try:
        for hq in hqs:
            hq.start(wait_s=10)
            assert hq.wait_subscribed(10)
        pub.connect(mqtt_broker.host, mqtt_broker.port)
        pub.loop_start()
        for p in posts:
            pub.subscribe(Topics(p.post_id, PREFIX).ack, qos=1)
        events = [ev for _ in range(20) for p in posts for ev in [p.next()]]  # interleaved posts
        for ev in events:
            pub.publish(topic(ev), json.dumps(ev).encode(), qos=1).wait_for_publish(10)
        wait_for(lambda: len(seen[0]) + len(seen[1]) >= len(events), timeout=30, what="both HQs to store all")
        wait_for(lambda: all(acks.get(p.post_id) == 20 for p in posts), timeout=30, what="acks up to 20")
        assert seen[0] and seen[1], "the shared subscription gave one process everything"
        assert not set(seen[0]) & set(seen[1])
        assert set(seen[0]) | set(seen[1]) == {ev["event_id"] for ev in events}
        assert hqs[0].store.count() == len(events)
    finally:
        pub.loop_stop()
        for p in posts:  # leave no retained acks behind on the shared broker
            pub.publish(Topics(p.post_id, PREFIX).ack, b"", qos=1, retain=True)
        pub.disconnect()
        for hq in hqs:
            hq.stop()
