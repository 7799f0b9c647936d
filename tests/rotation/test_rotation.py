"""Rotating a post's signing key without breaking its chain: the journal, ``edgectl verify``, a crash
half-way, and HQ (pinned to the old key) on a real broker, which must follow only announced rotations."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge import contract
from edge.broker import BrokerHandle, free_port
from edge.cli.edgectl import main as edgectl_main
from edge.config import PostConfig, load_config
from edge.controller import PostController
from edge.errors import IntegrityError
from edge.hq.store import SqliteEventStore
from edge.hq.subscriber import HQSubscriber
from edge.outbox.journal import Journal
from edge.outbox.rotation import (
    CURRENT_KEY,
    NEXT_KEY,
    ROTATION_LANE,
    ROTATION_SCHEMA,
    apply_staged_rotation,
    retired_name,
    rotation_event,
)
from edge.outbox.signing import PostKey, canonical_json, seal
from edge.outbox.uplink import Uplink
from edge.service.keys import main as keys_main
from edge.service.keys import rotation_statement, verify_rotation
from edge.topics import Topics
from tests.conftest import WaitFor
from tests.delivery.harness import Wire, broker_section, event_payload
from tests.edgectl.conftest import write_config


def _config(tmp_path: Path, post_id: str, broker: tuple[str, int] | None = None) -> PostConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write_config(tmp_path / "post.toml", post_id=post_id, data_dir=tmp_path / "data",
                        broker=broker or ("127.0.0.1", free_port()),
                        lanes=[{"id": "lane1", "cameras": [("front", "synthetic://lane1?seed=1&fps=5")]}])
    return load_config(path)


def _keys(cfg: PostConfig) -> Path:
    return Path(cfg.storage.data_dir) / "keys"


def _stage(cfg: PostConfig) -> PostKey:
    """``python -m edge.service.keys rotate-signing`` as the deploy doc says; returns the staged key."""
    assert keys_main(["rotate-signing", "--dir", str(_keys(cfg))]) == 0
    return PostKey.load_or_create(_keys(cfg) / NEXT_KEY)


def _append(c: PostController, n: int, lane: str = "lane1") -> list[int]:
    return [c.journal.append(event_payload(c.post_id, lane, i)).seq for i in range(n)]


def _verify_cli(cfg_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    rc = edgectl_main(["verify", "--json", "--config", str(cfg_path)])
    return rc, json.loads(capsys.readouterr().out)


def test_rotation_keeps_the_chain_and_edgectl_verify_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, "uz-rot-01")
    c = PostController(cfg, connect=False)
    old = c.key
    assert _append(c, 3) == [1, 2, 3]
    c.stop()

    staged = _stage(cfg)
    c = PostController(cfg, connect=False)  # the restart announces and switches
    assert c.key.key_id == staged.key_id != old.key_id
    assert not (_keys(cfg) / NEXT_KEY).exists()
    assert PostKey.load_or_create(_keys(cfg) / CURRENT_KEY).key_id == staged.key_id
    assert PostKey.load_or_create(_keys(cfg) / retired_name(old.key_id)).key_id == old.key_id
    rot = c.journal.get(4)
    assert rot is not None and rot.lane_id == ROTATION_LANE and rot.payload["schema"] == ROTATION_SCHEMA
    assert rot.payload["integrity"]["key_id"] == old.key_id  # sealed by the OLD key
    assert verify_rotation(rot.payload["key_rotation"], old.public_b64, "uz-rot-01") == staged.public_b64
    contract.validate("key_rotation", rot.payload)
    assert _append(c, 3) == [5, 6, 7]
    after = c.journal.get(5)
    assert after is not None and after.payload["integrity"]["key_id"] == staged.key_id
    assert after.payload["integrity"]["prev_hash"] == rot.payload["integrity"]["hash"]  # the chain goes on
    assert c.journal.verify() == []
    c.stop()

    cfg_path = tmp_path / "post.toml"
    rc, v = _verify_cli(cfg_path, capsys)
    assert rc == 0 and v["journal"]["records"] == 7 and v["journal"]["problems"] == []

    # A plain restart announces nothing more; a second rotation is followed too.
    c = PostController(cfg, connect=False)
    assert c.journal.last_seq() == 7 and c.key.key_id == staged.key_id
    c.stop()
    third = _stage(cfg)
    c = PostController(cfg, connect=False)
    assert c.key.key_id == third.key_id and c.journal.last_seq() == 8
    _append(c, 2)
    assert c.journal.verify() == []
    # Pruning past both rotations keeps the rest verifiable (the anchor remembers the key in force).
    c.journal.mark_acked(9)
    assert c.journal.prune(0) == 9
    assert c.journal.verify() == []
    c.stop()
    rc, v = _verify_cli(cfg_path, capsys)
    assert rc == 0 and v["journal"]["problems"] == [], v

    # And verify can fail: seq 10 (signed by the third key) claiming the first key is reported.
    db = sqlite3.connect(Path(cfg.storage.data_dir) / "journal.sqlite")
    body = json.loads(db.execute("SELECT payload FROM events WHERE seq = 10").fetchone()[0])
    body["integrity"]["key_id"] = old.key_id
    db.execute("UPDATE events SET payload = ? WHERE seq = 10", (json.dumps(body),))
    db.commit()
    db.close()
    rc, v = _verify_cli(cfg_path, capsys)
    assert rc == 1 and any(p.startswith("seq 10:") for p in v["journal"]["problems"]), v


def test_a_changed_rotation_statement_is_reported_by_verify(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, "uz-rot-02")
    c = PostController(cfg, connect=False)
    _append(c, 2)
    c.stop()
    _stage(cfg)
    c = PostController(cfg, connect=False)
    _append(c, 2)
    c.stop()
    thief = PostKey.generate()
    db = sqlite3.connect(Path(cfg.storage.data_dir) / "journal.sqlite")
    body = json.loads(db.execute("SELECT payload FROM events WHERE seq = 3").fetchone()[0])
    body["key_rotation"]["new_public_key"] = thief.public_b64  # someone swaps in their own key
    db.execute("UPDATE events SET payload = ? WHERE seq = 3", (json.dumps(body),))
    db.commit()
    db.close()
    rc, v = _verify_cli(tmp_path / "post.toml", capsys)
    assert rc == 1
    assert any(p.startswith("seq 3:") and "hash" in p for p in v["journal"]["problems"]), v


@pytest.mark.parametrize("crash_after", ["commit", "link"])
def test_a_crash_between_announcing_and_renaming_finishes_on_the_next_start(tmp_path: Path, crash_after: str) -> None:
    cfg = _config(tmp_path, "uz-rot-03")
    c = PostController(cfg, connect=False)
    old = c.key
    _append(c, 2)
    c.stop()
    staged = _stage(cfg)
    # Step 1 only, as a start that died right after the fsync of the announcement would leave it.
    j = Journal(Path(cfg.storage.data_dir) / "journal.sqlite", old, cfg.post.id)
    assert j.rotate_key(staged).seq == 3
    j.close()
    if crash_after == "link":
        os.link(_keys(cfg) / CURRENT_KEY, _keys(cfg) / retired_name(old.key_id))
    assert PostKey.load_or_create(_keys(cfg) / CURRENT_KEY).key_id == old.key_id

    c = PostController(cfg, connect=False)
    assert c.key.key_id == staged.key_id
    assert c.journal.last_seq() == 3  # no second announcement
    assert not (_keys(cfg) / NEXT_KEY).exists()
    assert PostKey.load_or_create(_keys(cfg) / CURRENT_KEY).key_id == staged.key_id
    assert PostKey.load_or_create(_keys(cfg) / retired_name(old.key_id)).key_id == old.key_id
    assert _append(c, 1) == [4]
    ev = c.journal.get(4)
    assert ev is not None and ev.payload["integrity"]["key_id"] == staged.key_id
    assert c.journal.verify() == []
    c.stop()


def test_a_missing_current_key_with_an_unannounced_staged_key_refuses_to_start(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "uz-rot-04")
    c = PostController(cfg, connect=False)
    _append(c, 1)
    c.stop()
    _stage(cfg)
    (_keys(cfg) / CURRENT_KEY).unlink()  # someone "tidied up" the keys folder
    with pytest.raises(Exception, match="never announced"):
        apply_staged_rotation(_keys(cfg), Path(cfg.storage.data_dir) / "journal.sqlite", cfg.post.id)
    assert not (_keys(cfg) / CURRENT_KEY).exists()  # no key made up in its place


def test_the_journal_refuses_a_statement_not_by_its_own_key(tmp_path: Path) -> None:
    key, other = PostKey.generate(), PostKey.generate()
    j = Journal(tmp_path / "j.sqlite", key, "uz-rot-05")
    try:
        with pytest.raises(IntegrityError, match="does not trust"):
            j.append(rotation_event(other, PostKey.generate().public_b64, "uz-rot-05"))
        assert j.last_seq() == 0
    finally:
        j.close()


# -- HQ, on a real broker --------------------------------------------------------------------------


def _hq(tmp_path: Path, broker: BrokerHandle, post_id: str, key: PostKey, group: str,
        seen: list[dict[str, Any]]) -> tuple[SqliteEventStore, HQSubscriber]:
    store = SqliteEventStore(tmp_path / "hq.sqlite")
    sub = HQSubscriber(broker.host, broker.port, store, share_group=group, keys={post_id: key.public_b64},
                       on_event=lambda p: seen.append(p) if p.get("post_id") == post_id else None,
                       client_id=f"{group}-hq", session_expiry_s=60)
    sub.start()
    return store, sub


@pytest.fixture
def hq_rig(tmp_path: Path, mqtt_broker: BrokerHandle, unique_id: Callable[[str], str]) -> Iterator[dict[str, Any]]:
    post_id = unique_id("post")
    key = PostKey.generate()
    seen: list[dict[str, Any]] = []
    store, sub = _hq(tmp_path, mqtt_broker, post_id, key, unique_id("g"), seen)
    journal = Journal(tmp_path / "journal.sqlite", key, post_id)
    wire = Wire(mqtt_broker, post_id, unique_id("wire"))
    yield {"post_id": post_id, "key": key, "store": store, "sub": sub, "journal": journal, "wire": wire,
           "seen": seen}
    wire.close()
    sub.stop()
    store.close()
    journal.close()


def test_hq_pinned_to_the_old_key_follows_the_rotation_over_a_real_broker(
    tmp_path: Path, mqtt_broker: BrokerHandle, unique_id: Callable[[str], str], wait_for: WaitFor
) -> None:
    post_id = unique_id("post")
    post_dir = tmp_path / "post"
    cfg = _config(post_dir, post_id, broker=(mqtt_broker.host, mqtt_broker.port))
    broker = broker_section(mqtt_broker.host, mqtt_broker.port, client_id=f"post-{post_id}", session_expiry_s=60)
    c = PostController(cfg, connect=False)
    old = c.key
    seen: list[dict[str, Any]] = []
    group = unique_id("g")
    store, sub = _hq(tmp_path, mqtt_broker, post_id, old, group, seen)  # enrolled with the OLD key
    try:
        uplink = Uplink(broker, post_id, c.journal)
        uplink.start()
        _append(c, 3)
        uplink.kick()
        wait_for(lambda: c.journal.last_ack() == 3, what="HQ acks the first three events")
        uplink.stop()
        c.stop()

        # Rotate while offline: the announcement and the new key's events then reach HQ together.
        staged = _stage(cfg)
        c = PostController(cfg, connect=False)
        assert c.key.key_id == staged.key_id
        _append(c, 3)
        uplink = Uplink(broker, post_id, c.journal)
        uplink.start()
        wait_for(lambda: c.journal.last_ack() == 7, what="HQ acks everything across the rotation")
        assert store.count(post_id) == 7 and store.contiguous_seq(post_id) == 7
        assert store.problems(post_id) == []
        assert store.post_key(post_id) == staged.public_b64  # pinned from the rotation on
        assert [p["seq"] for p in store.key_rotations(post_id)] == [4]
        # Not a crossing: no on_event for it, and not among the recent crossings.
        wait_for(lambda: len(seen) == 6, what="six crossings seen")
        assert all(p["schema"] != ROTATION_SCHEMA for p in seen)
        assert [p["seq"] for p in store.recent(post_id)] == [7, 6, 5, 3, 2, 1]

        # A restarted HQ, still configured with the enrolled (old) key, accepts the new key's events.
        sub.stop()
        sub = HQSubscriber(mqtt_broker.host, mqtt_broker.port, store, share_group=group,
                           keys={post_id: old.public_b64}, client_id=f"{group}-hq", session_expiry_s=60)
        sub.start()
        _append(c, 1)
        uplink.kick()
        wait_for(lambda: c.journal.last_ack() == 8, what="HQ acks an event of the new key after its restart")
        assert store.problems(post_id) == []
        uplink.stop()
        assert c.journal.verify() == []
    finally:
        c.stop()
        sub.stop()
        store.close()


def test_hq_refuses_a_rotation_not_signed_by_the_pinned_key(hq_rig: dict[str, Any], wait_for: WaitFor) -> None:
    post_id, key, store, journal, wire = (hq_rig[k] for k in ("post_id", "key", "store", "journal", "wire"))
    evs = [journal.append(event_payload(post_id, "lane1", i)).payload for i in range(2)]
    for ev in evs:
        wire.send(ev)
    wait_for(lambda: wire.last_ack == 2, what="ack 2")

    # Sealed by the post's (pinned) key, but the statement inside is by another key.
    other, new = PostKey.generate(), PostKey.generate()
    forged = {"schema": ROTATION_SCHEMA, "event_id": "3d6a0f0e-1c1b-4d0e-9a55-0b7b9f3c2e11", "post_id": post_id,
              "lane_id": ROTATION_LANE, "seq": 3, "key_rotation": rotation_statement(other, new.public_b64, post_id)}
    wire.send(seal(forged, key, evs[-1]["integrity"]["hash"]))
    wait_for(lambda: any(p.kind == "bad_rotation" for p in store.problems(post_id)), what="bad rotation flagged")
    prob = next(p for p in store.problems(post_id) if p.kind == "bad_rotation")
    assert prob.seq == 3 and "does not trust" in prob.detail
    # A rotation by a key HQ never trusted, sealed by that key too.
    thief = Journal(Path(journal.path).with_name("thief.sqlite"), other, post_id)
    for i in range(2):
        thief.append(event_payload(post_id, "lane1", i))
    stolen = thief.rotate_key(new).payload
    thief.close()
    wire.send(stolen)
    wait_for(lambda: any(p.kind == "tampered" and p.seq == 3 for p in store.problems(post_id)),
             what="foreign rotation refused")
    assert store.count(post_id) == 2 and store.contiguous_seq(post_id) == 2 and store.key_rotations(post_id) == []
    assert store.post_key(post_id) is None  # enrolled by configuration; nothing pinned by the forgeries

    # The genuine rotation still gets in, then the new key's events, and the ack moves on.
    genuine = journal.rotate_key(new).payload
    after = journal.append(event_payload(post_id, "lane1", 9)).payload
    wire.send(genuine)
    wire.send(after)
    wait_for(lambda: wire.last_ack == 4, what="ack 4 after the genuine rotation")
    assert sorted(p.kind for p in store.problems(post_id)) == ["bad_rotation", "tampered"]  # nothing new
    assert [p["event_id"] for p in store.key_rotations(post_id)] == [genuine["event_id"]]
    assert store.post_key(post_id) == new.public_b64


def test_hq_refuses_the_new_key_without_a_prior_rotation(hq_rig: dict[str, Any], wait_for: WaitFor) -> None:
    post_id, store, journal, wire, seen = (hq_rig[k] for k in ("post_id", "store", "journal", "wire", "seen"))
    first = journal.append(event_payload(post_id, "lane1", 0)).payload
    wire.send(first)
    wait_for(lambda: wire.last_ack == 1, what="ack 1")
    # The post's key replaced by hand, no announcement: seq 2 chains correctly but is signed by a stranger.
    journal.key = PostKey.generate()
    unannounced = journal.append(event_payload(post_id, "lane1", 1)).payload
    wire.send(unannounced)
    wait_for(lambda: any(p.kind == "tampered" and p.seq == 2 for p in store.problems(post_id)),
             what="unannounced key refused")
    prob = next(p for p in store.problems(post_id) if p.seq == 2)
    assert "no key rotation announcing that key" in prob.detail
    assert store.count(post_id) == 1 and store.contiguous_seq(post_id) == 1 and wire.acks == [1]
    assert [p["seq"] for p in seen] == [1]
    # The journal itself says so too.
    assert any("without an announced rotation" in p for p in journal.verify())


def test_a_rotation_schema_outside_the_post_lane_is_invalid(hq_rig: dict[str, Any]) -> None:
    post_id, key, sub, store = (hq_rig[k] for k in ("post_id", "key", "sub", "store"))
    ev = rotation_event(key, PostKey.generate().public_b64, post_id)
    ev["lane_id"] = "lane1"
    sealed = seal({**ev, "seq": 1}, key, "0" * 64)
    assert sub.handle(Topics(post_id).events("lane1"), canonical_json(sealed)) == "invalid"
    vehicle = seal({**event_payload(post_id, ROTATION_LANE), "seq": 1}, key, "0" * 64)
    assert sub.handle(Topics(post_id).events(ROTATION_LANE), canonical_json(vehicle)) == "invalid"
    assert store.count(post_id) == 0
