"""The HQ subscriber on a real broker: verification, tamper and chain detection, gaps, acks, sharing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge.broker import BrokerHandle
from edge.cli.hq import format_event
from edge.hq.store import SqliteEventStore
from edge.hq.subscriber import HQSubscriber, validate_payload
from edge.outbox.journal import Journal
from edge.outbox.signing import PostKey, canonical_json
from edge.topics import Topics
from tests.conftest import WaitFor
from tests.delivery.harness import Wire, event_payload, make_hq, make_post


@pytest.fixture
def rig(tmp_path: Path, mqtt_broker: BrokerHandle, unique_id: Callable[[str], str]) -> Any:
    post_id = unique_id("post")
    key = PostKey.generate()
    journal = Journal(tmp_path / "journal.sqlite", key, post_id)
    store = SqliteEventStore(tmp_path / "hq.sqlite")
    seen: list[dict[str, Any]] = []
    sub = HQSubscriber(mqtt_broker.host, mqtt_broker.port, store, share_group=unique_id("g"),
                       keys={post_id: key.public_b64}, on_event=seen.append, client_id=unique_id("hq"),
                       session_expiry_s=60)
    sub.start()
    wire = Wire(mqtt_broker, post_id, unique_id("wire"))
    yield post_id, journal, store, sub, wire, seen
    wire.close()
    sub.stop()
    store.close()
    journal.close()


def test_tampered_payload_flagged_and_not_acked(rig: Any, wait_for: WaitFor) -> None:
    post_id, journal, store, sub, wire, _seen = rig
    evs = [journal.append(event_payload(post_id, "lane1", i)).payload for i in range(3)]
    wire.send(evs[0])
    wait_for(lambda: wire.last_ack == 1, what="ack 1")
    bad = json.loads(json.dumps(evs[1]))
    bad["weighing"]["gross"] = 1000  # someone lightens a truck
    wire.send(bad)
    wait_for(lambda: any(p.kind == "tampered" for p in store.problems(post_id)), what="tamper flagged")
    assert store.count(post_id) == 1 and store.contiguous_seq(post_id) == 1
    prob = next(p for p in store.problems(post_id) if p.kind == "tampered")
    assert prob.seq == 2 and "hash" in prob.detail
    assert wire.acks == [1] and sub.stats["acks"] == 1
    # The genuine event still gets in and the ack moves on.
    wire.send(evs[1])
    wire.send(evs[2])
    wait_for(lambda: wire.last_ack == 3, what="ack 3")


def test_broken_chain_flagged_and_not_acked(rig: Any, tmp_path: Path, wait_for: WaitFor) -> None:
    post_id, journal, store, _sub, wire, _seen = rig
    evs = [journal.append(event_payload(post_id, "lane1", i)).payload for i in range(2)]
    # A second journal with the same key (a cloned post, or a rewritten history): seq 3 chains elsewhere.
    fork = Journal(tmp_path / "fork.sqlite", journal.key, post_id)
    forked = [fork.append(event_payload(post_id, "lane1", 100 + i)).payload for i in range(3)]
    wire.send(evs[0])
    wire.send(evs[1])
    wait_for(lambda: wire.last_ack == 2, what="ack 2")
    wire.send(forked[2])  # validly signed seq 3, but its prev_hash is not seq 2's hash
    wait_for(lambda: any(p.kind == "chain_break" for p in store.problems(post_id)), what="chain break flagged")
    brk = next(p for p in store.problems(post_id) if p.kind == "chain_break")
    assert brk.seq == 3 and "prev_hash" in brk.detail
    assert store.contiguous_seq(post_id) == 2 and max(wire.acks) == 2  # (1 and 2 may share one ack)


def test_gap_reported_by_number_then_filled(rig: Any, wait_for: WaitFor) -> None:
    post_id, journal, store, _sub, wire, seen = rig
    evs = [journal.append(event_payload(post_id, "lane1", i)).payload for i in range(6)]
    for e in (evs[0], evs[1], evs[4], evs[5]):
        wire.send(e)
    wait_for(lambda: store.count(post_id) == 4, what="4 events stored")
    wait_for(lambda: any(p.kind == "gap" for p in store.problems(post_id)), what="the gap reported")
    gap = next(p for p in store.problems(post_id) if p.kind == "gap")
    assert gap.seq == 3 and "missing seqs 3..4" in gap.detail
    wait_for(lambda: wire.last_ack == 2, what="ack 2 (not beyond the gap)")
    assert max(wire.acks) == 2
    wire.send(evs[2])
    wire.send(evs[3])
    wait_for(lambda: wire.last_ack == 6, what="ack 6 once the gap is filled")
    assert store.missing_seqs(post_id) == []
    assert sorted(p["seq"] for p in seen) == [1, 2, 3, 4, 5, 6]


def test_a_post_upgraded_to_version_2_goes_on_in_the_same_chain(rig: Any, wait_for: WaitFor) -> None:
    from edge.hq.query import crossing_summary

    post_id, journal, store, _sub, wire, _seen = rig
    old = journal.append(event_payload(post_id, "lane1", 1)).payload
    new = journal.append({**event_payload(post_id, "lane1", 2), "schema": "customs.vehicle_event/2",
                          "adr": [{"hazard": "33", "un": "1203", "confidence": 0.9, "camera": "rear"}]}).payload
    wire.send(old)
    wire.send(new)
    wait_for(lambda: wire.last_ack == 2, what="ack 2")
    assert store.problems(post_id) == []
    rows = {e["seq"]: crossing_summary(e) for e in store.recent(post_id, None, 10)}
    assert rows[1]["adr"] == [] and rows[2]["adr"] == ["33/1203"]
    assert " ADR 33/1203 " in format_event(new) and "ADR" not in format_event(old)


def test_garbage_unknown_post_and_duplicates(rig: Any, wait_for: WaitFor, mqtt_broker: BrokerHandle) -> None:
    post_id, journal, store, sub, wire, seen = rig
    ev = journal.append(event_payload(post_id, "lane1")).payload
    wire.send(b"\x00not json")
    wire.send({"schema": "customs.vehicle_event/1", "post_id": post_id})
    wrong_lane = dict(ev)
    wire.send(wrong_lane, lane="lane7")
    wait_for(lambda: len(store.problems(post_id)) == 3, what="three rejections")
    kinds = sorted(p.kind for p in store.problems(post_id))
    assert kinds == ["invalid", "invalid", "malformed"]
    wire.send(ev)
    wire.send(ev)
    wait_for(lambda: sub.stats["duplicates"] == 1, what="duplicate dropped")
    wait_for(lambda: wire.last_ack == 1, what="ack 1")
    assert store.count(post_id) == 1 and len(seen) == 1
    # A post whose key HQ does not know is not stored (no trust on first use here).
    stranger = Journal(journal.path.with_name("s.sqlite"), PostKey.generate(), "stranger-" + post_id)
    st_ev = stranger.append(event_payload(stranger.post_id, "lane1")).payload
    Wire.send(wire, st_ev)  # on the wrong post's topic: rejected as invalid
    assert validate_payload(st_ev, post_id, "lane1")
    assert sub.handle(Topics(stranger.post_id).events("lane1"), canonical_json(st_ev)) == "unknown_post"
    stranger.close()


def test_two_hq_processes_share_the_load(
    tmp_path: Path, mqtt_broker: BrokerHandle, unique_id: Callable[[str], str], wait_for: WaitFor
) -> None:
    post_id, group = unique_id("post"), unique_id("g")
    store = SqliteEventStore(tmp_path / "hq.sqlite")
    seen: list[list[str]] = [[], []]

    def collector(i: int) -> Callable[[dict[str, Any]], None]:
        def on_event(p: dict[str, Any]) -> None:
            if p["post_id"] == post_id:
                seen[i].append(p["event_id"])

        return on_event

    subs = [
        HQSubscriber(mqtt_broker.host, mqtt_broker.port, store, share_group=group, trust_on_first_use=True,
                     on_event=collector(i), client_id=f"{group}-{i}", session_expiry_s=60)
        for i in range(2)
    ]
    post = make_post(tmp_path, post_id, mqtt_broker.host, mqtt_broker.port)
    try:
        for s in subs:
            s.start()
        post.uplink.start()
        for i in range(60):
            post.append("lane1", i)
        wait_for(lambda: post.journal.last_ack() == 60, what="all 60 acknowledged")
        a, b = set(seen[0]), set(seen[1])
        assert a and b, "both HQ processes got a share"
        assert not a & b and len(a | b) == 60
        assert store.contiguous_seq(post_id) == 60
        assert [p.kind for p in store.problems(post_id)] == []  # no false gaps from the split
    finally:
        post.close()
        for s in subs:
            s.stop()
        store.close()


def test_trust_on_first_use_pins_the_key(
    tmp_path: Path, mqtt_broker: BrokerHandle, unique_id: Callable[[str], str], wait_for: WaitFor
) -> None:
    post_id = unique_id("post")
    hq = make_hq(tmp_path, mqtt_broker.host, mqtt_broker.port, unique_id("g"))
    sub = hq.sub
    j1 = Journal(tmp_path / "a.sqlite", PostKey.generate(), post_id)
    e1 = j1.append(event_payload(post_id, "lane1")).payload
    assert sub.handle(Topics(post_id).events("lane1"), canonical_json(e1)) == "stored"
    assert hq.store.post_key(post_id) == j1.key.public_b64
    # Another key claiming the same post is refused once one is pinned.
    j2 = Journal(tmp_path / "b.sqlite", PostKey.generate(), post_id)
    j2.append(event_payload(post_id, "lane1"))
    e2 = j2.append(event_payload(post_id, "lane1")).payload
    assert sub.handle(Topics(post_id).events("lane1"), canonical_json(e2)) == "tampered"
    hq.close()
