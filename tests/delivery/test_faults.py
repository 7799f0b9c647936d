"""Delivery through faults: broker outage, lost PUBACKs, a deleted journal record, broker refusals."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from edge.broker import BrokerHandle
from tests.conftest import WaitFor
from tests.delivery.harness import make_hq, make_post
from tests.delivery.proxy import MqttProxy


def _assert_every_event_once_in_order(hq_store: object, post_id: str, n: int) -> None:
    events = hq_store.events_in_order(post_id)  # type: ignore[attr-defined]
    assert [e["seq"] for e in events] == list(range(1, n + 1))
    assert len({e["event_id"] for e in events}) == n


def test_broker_outage_during_steady_stream(
    tmp_path: Path, private_broker: BrokerHandle, unique_id: Callable[[str], str], wait_for: WaitFor
) -> None:
    post_id = unique_id("post")
    hq = make_hq(tmp_path, private_broker.host, private_broker.port, unique_id("g"), watch=post_id)
    post = make_post(tmp_path, post_id, private_broker.host, private_broker.port, ack_timeout_s=2.0)
    stop = threading.Event()
    appended: list[int] = []

    def produce() -> None:
        i = 0
        while not stop.is_set():
            appended.append(post.append(f"lane{i % 2 + 1}", i))
            i += 1
            stop.wait(0.01)

    producer = threading.Thread(target=produce, daemon=True)
    try:
        hq.sub.start()
        post.uplink.start()
        producer.start()
        wait_for(lambda: post.journal.last_ack() >= 20, what="first acks")
        private_broker.stop()
        outage_start = len(appended)
        wait_for(lambda: len(appended) >= outage_start + 60, what="events appended during the outage")
        assert not post.uplink.status()["connected"]
        backlog, age = post.journal.backlog()
        assert backlog >= 60 and age is not None
        private_broker.start()
        wait_for(lambda: len(appended) >= outage_start + 120, what="events after the outage")
        stop.set()
        producer.join()
        n = post.journal.last_seq()
        wait_for(lambda: post.journal.last_ack() == n, timeout=40, what=f"HQ ack of all {n} events")
        _assert_every_event_once_in_order(hq.store, post_id, n)
        for lane in ("lane1", "lane2"):
            seen = [p["seq"] for p in hq.seen if p["lane_id"] == lane]
            assert seen == sorted(seen) and len(seen) == len(set(seen))
        assert hq.store.problems(post_id) == []
        assert post.journal.backlog() == (0, None)
    finally:
        stop.set()
        post.close()
        hq.close()


def test_dropped_pubacks_lose_nothing_and_duplicates_are_removed(
    tmp_path: Path, mqtt_broker: BrokerHandle, unique_id: Callable[[str], str], wait_for: WaitFor
) -> None:
    post_id = unique_id("post")
    # Phase 1: a tenth of the PUBACKs and all of HQ's acks are lost on the post's link, so the post
    # re-sends what HQ already stored: HQ must drop those duplicates.
    proxy = MqttProxy(mqtt_broker.host, mqtt_broker.port, drop_puback=0.1, drop_publish=1.0, seed=7)
    hq = make_hq(tmp_path, mqtt_broker.host, mqtt_broker.port, unique_id("g"))
    post = make_post(tmp_path, post_id, "127.0.0.1", proxy.port, ack_timeout_s=0.3, max_inflight=5)
    try:
        hq.sub.start()
        post.uplink.start()
        for i in range(60):
            post.append(f"lane{i % 3 + 1}", i)
        wait_for(lambda: hq.store.count(post_id) == 60, timeout=60, what="all 60 events at HQ")
        wait_for(lambda: hq.sub.stats["duplicates"] > 0, what="re-sent duplicates reaching HQ")
        assert post.journal.last_ack() == 0 and proxy.dropped > 0
        # Phase 2: the link heals (and drops once): on reconnecting the post gets HQ's retained ack.
        proxy.drop_publish = proxy.drop_puback = 0.0
        proxy.cut()
        wait_for(lambda: post.journal.last_ack() == 60, timeout=60, what="HQ ack of all 60 events")
        _assert_every_event_once_in_order(hq.store, post_id, 60)
        assert post.uplink.status()["resends"] > 0
        assert hq.store.count(post_id) == 60
        assert hq.store.problems(post_id) == []
    finally:
        post.close()
        hq.close()
        proxy.close()


def test_deleted_journal_record_reported_by_hq_and_verify(
    tmp_path: Path, mqtt_broker: BrokerHandle, unique_id: Callable[[str], str], wait_for: WaitFor
) -> None:
    post_id = unique_id("post")
    hq = make_hq(tmp_path, mqtt_broker.host, mqtt_broker.port, unique_id("g"))
    post = make_post(tmp_path, post_id, mqtt_broker.host, mqtt_broker.port)
    try:
        hq.sub.start()
        for i in range(10):
            post.append("lane1", i)
        # Someone at the post removes seq 5 before it was sent.
        db = sqlite3.connect(post.journal.path, isolation_level=None)
        db.execute("DELETE FROM events WHERE seq = 5")
        db.close()
        problems = post.journal.verify()
        assert any(p.startswith("seq 5: missing") for p in problems), problems
        post.uplink.start()
        wait_for(lambda: hq.store.count(post_id) == 9, what="the 9 remaining events at HQ")
        wait_for(lambda: post.journal.last_ack() == 4, what="ack up to the gap")
        wait_for(lambda: any(p.kind == "gap" for p in hq.store.problems(post_id)), what="HQ reporting the gap")
        gaps = [p for p in hq.store.problems(post_id) if p.kind == "gap"]
        assert gaps and "missing seqs 5 " in gaps[0].detail and gaps[0].seq == 5
        assert hq.store.missing_seqs(post_id) == [5]
        assert hq.store.contiguous_seq(post_id) == 4  # never acknowledged past the hole
        assert post.journal.last_ack() == 4
    finally:
        post.close()
        hq.close()
