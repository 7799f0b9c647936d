"""``customs-edge hq query`` on both stores: the answers an officer and a script get."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Collection
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge import contract
from edge.broker import BrokerHandle
from edge.hq import query
from edge.hq.store import EventStore
from edge.hq.subscriber import HQSubscriber
from edge.topics import Topics
from tests.hq_pg.conftest import PostChain, StoreFactory


def fill(store: EventStore, post: PostChain, plates: list[str | None], skip: Collection[int] = ()) -> None:
    hq = HQSubscriber("127.0.0.1", 1, store, keys={post.post_id: post.key.public_b64}, gap_grace_s=0)
    for p in plates:
        ev = post.next(plate=p)
        if ev["seq"] not in skip:
            hq.handle(Topics(post.post_id).events(ev["lane_id"]), json.dumps(ev).encode())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    rc = query.main(list(argv))
    out = capsys.readouterr()
    try:
        return rc, json.loads(out.out), out.err
    except ValueError:
        return rc, out.out, out.err


def test_recent_crossings_per_post_and_lane(
    store_url: str, store_factory: StoreFactory, chain: Callable[..., PostChain], capsys: pytest.CaptureFixture[str]
) -> None:
    post = chain(lanes=("lane1", "lane2"))
    fill(store_factory(), post, ["01A123BC", "10B777AA", None, "40C555DD"])
    rc, out, _ = run(capsys, "recent", post.post_id, "--store", store_url, "--json")
    assert rc == 0 and out["count"] == 4
    assert [c["seq"] for c in out["crossings"]] == [4, 3, 2, 1]
    assert out["crossings"][1]["plate"] is None and "unreadable_plate" in out["crossings"][1]["flags"]
    assert out["crossings"][0]["gross"] == 38240.0 and out["crossings"][0]["unit"] == "kg"
    rc, out, _ = run(capsys, "recent", post.post_id, "--lane", "lane1", "--limit", "1", "--store", store_url, "--json")
    assert [(c["seq"], c["lane_id"], c["plate"]) for c in out["crossings"]] == [(3, "lane1", None)]
    rc, text, _ = run(capsys, "recent", post.post_id, "--store", store_url)
    assert rc == 0 and "4 crossing(s)" in text and "(unread)" in text and "40C555DD" in text


def test_a_crossings_adr_plates_are_listed(
    store_url: str, store_factory: StoreFactory, chain: Callable[..., PostChain], capsys: pytest.CaptureFixture[str]
) -> None:
    post = chain()
    store = store_factory()
    hq = HQSubscriber("127.0.0.1", 1, store, keys={post.post_id: post.key.public_b64}, gap_grace_s=0)
    for ev in (post.next(plate="01A123BC"),  # a version 1 event, from before the post's upgrade
               post.next(plate="10B777AA", schema="customs.vehicle_event/2",
                         adr=[{"hazard": "33", "un": "1203", "confidence": 0.9, "camera": "rear"},
                              {"hazard": "30", "un": "1202"}])):
        contract.validate("vehicle_event", ev)
        hq.handle(Topics(post.post_id).events(ev["lane_id"]), json.dumps(ev).encode())
    rc, out, _ = run(capsys, "recent", post.post_id, "--store", store_url, "--json")
    assert rc == 0 and [c["adr"] for c in out["crossings"]] == [["33/1203", "30/1202"], []]
    rc, text, _ = run(capsys, "recent", post.post_id, "--store", store_url)
    assert rc == 0 and "10B777AA  38240 kg  ADR 33/1203,30/1202" in text


def test_plate_search_finds_misreads_closest_first(
    store_url: str, store_factory: StoreFactory, chain: Callable[..., PostChain], capsys: pytest.CaptureFixture[str]
) -> None:
    post = chain()
    fill(store_factory(), post, ["01A123BC", "O1AI23BC", "01A123B", "99X999XX"])
    rc, out, _ = run(capsys, "plate", "01 A 123 BC", "--store", store_url, "--json")
    assert rc == 0 and out["normalised"] == "01A123BC"
    found = [(m["plate"], m["distance"]) for m in out["matches"]]
    assert found[0] == ("01A123BC", 0)  # the exact read ranks before its confusable twin
    assert set(found) == {("01A123BC", 0), ("O1AI23BC", 0), ("01A123B", 1)}
    rc, out, _ = run(capsys, "plate", "01a123bc", "--exact", "--store", store_url, "--json")
    assert [m["plate"] for m in out["matches"]] == ["01A123BC"]
    rc, _, err = run(capsys, "plate", "--- ", "--store", store_url)
    assert rc == 2 and "no letters or digits" in err


def test_gaps_and_integrity_failures(
    store_url: str, store_factory: StoreFactory, chain: Callable[..., PostChain], capsys: pytest.CaptureFixture[str]
) -> None:
    good, holed = chain(), chain()
    store = store_factory()
    fill(store, good, ["01A123BC"] * 3)
    fill(store, holed, ["01A123BC"] * 7, skip={3, 4, 6})
    store.record_problem(holed.post_id, 9, "tampered", "signature does not verify")
    rc, out, _ = run(capsys, "gaps", "--store", store_url, "--json")
    assert rc == 1 and not out["ok"]
    [gap] = out["gaps"]
    assert gap["post_id"] == holed.post_id and gap["missing"] == ["3..4", "6"] and gap["contiguous_seq"] == 2
    assert out["integrity_failures"] == 1
    assert {p["kind"] for p in out["problems"]} == {"gap", "tampered"}
    rc, out, _ = run(capsys, "gaps", "--post", good.post_id, "--store", store_url, "--json")
    assert rc == 0 and out["ok"]
    rc, text, _ = run(capsys, "gaps", "--store", store_url)
    assert "missing 3..4, 6" in text


def test_backlog_and_offline_from_the_store_alone(
    store_factory: StoreFactory, chain: Callable[..., PostChain]
) -> None:
    post = chain()
    store = store_factory()
    fill(store, post, ["01A123BC"] * 5, skip={2})
    [row] = query.backlog(store)["posts"]
    assert (row["acked_seq"], row["max_seq"], row["held_back_at_hq"], row["missing_at_hq"]) == (1, 5, 4, 1)
    now = time.time()
    assert query.posts_offline(store, now=now)["offline"] == []
    later = query.posts_offline(store, now=now + 3600, stale_after_s=900)
    assert later["offline"] == [post.post_id] and later["posts"][0]["state"] == "silent"
    store.set_post_status(post.post_id, "online")  # what the subscriber records from the retained status
    assert query.posts_offline(store, now=now + 3600)["offline"] == []
    store.set_post_status(post.post_id, "offline")
    [row] = query.posts_offline(store)["posts"]
    assert (row["state"], row["source"]) == ("offline", "store") and row["status_at"].endswith("Z")


@pytest.mark.broker
def test_offline_and_backlog_from_the_posts_own_messages(
    mqtt_broker: BrokerHandle, store_url: str, store_factory: StoreFactory, chain: Callable[..., PostChain],
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}/v1"  # our own prefix: no other run's retained statuses
    up, down = chain(), chain()
    fill(store_factory(), up, ["01A123BC"])
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"q-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv311)
    pub.connect(mqtt_broker.host, mqtt_broker.port)
    pub.loop_start()
    retained = [Topics(up.post_id, prefix).status, Topics(down.post_id, prefix).status]
    try:
        for post_id, state in ((up.post_id, "online"), (down.post_id, "offline")):
            body = {"post_id": post_id, "state": state, "at": "2026-11-28T21:00:00.000Z"}
            pub.publish(Topics(post_id, prefix).status, json.dumps(body), qos=1, retain=True).wait_for_publish(5)
        rc, out, _ = run(capsys, "offline", "--store", store_url, "--broker",
                         f"{mqtt_broker.host}:{mqtt_broker.port}", "--prefix", prefix, "--json")
        assert rc == 0 and out["checked_broker"]
        assert out["offline"] == [down.post_id]
        states = {p["post_id"]: (p["state"], p["source"]) for p in out["posts"]}
        assert states == {up.post_id: ("online", "broker"), down.post_id: ("offline", "broker")}

        tele = {"schema": "customs.telemetry/1", "post_id": up.post_id, "at": "2026-11-28T21:00:00.000Z",
                "backlog": {"events": 12, "oldest_age_s": 40.5, "unsaved": 0}}
        contract.validate("telemetry", tele)
        live: dict[str, Any] = {}

        def listen() -> None:
            live.update(query.read_live(mqtt_broker.host, mqtt_broker.port, prefix, listen_s=1.5))

        t = threading.Thread(target=listen)
        t.start()
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:  # telemetry is not retained: keep sending while it listens
            pub.publish(Topics(up.post_id, prefix).telemetry, json.dumps(tele), qos=0)
            time.sleep(0.1)
        t.join(10)
        rows = {r["post_id"]: r for r in query.backlog(store_factory(), live)["posts"]}
        assert (rows[up.post_id]["post_backlog"], rows[up.post_id]["post_oldest_age_s"]) == (12, 40.5)
        assert rows[down.post_id]["acked_seq"] is None  # known only from the broker
    finally:
        for t_ in retained:
            pub.publish(t_, b"", qos=1, retain=True).wait_for_publish(5)
        pub.loop_stop()
        pub.disconnect()


def test_unreachable_store_and_broker_are_clear_errors(
    store_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    rc, _, err = run(capsys, "recent", "p", "--store", "postgresql://postgres@127.0.0.1:1/none")
    assert rc == 2 and "cannot open the HQ store" in err
    rc, _, err = run(capsys, "offline", "--store", store_url, "--broker", "127.0.0.1:1")
    assert rc == 2 and "cannot reach the broker at 127.0.0.1:1" in err
    rc, _, err = run(capsys, "offline", "--store", store_url, "--broker", "nohost")
    assert rc == 2 and "HOST:PORT" in err
