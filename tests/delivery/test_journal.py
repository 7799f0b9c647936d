"""The journal: durable, chained, signed; verify() names changed, inserted and deleted records."""

from __future__ import annotations

import json
import sqlite3
import stat
import time
import uuid
from pathlib import Path

import pytest

from edge.errors import IntegrityError, StorageError
from edge.outbox.journal import Journal, verify_file
from edge.outbox.signing import GENESIS_HASH, PostKey, canonical_json, verify_event


def _payload(lane: str = "lane1", **extra: object) -> dict[str, object]:
    return {"schema": "customs.vehicle_event/1", "event_id": str(uuid.uuid4()), "post_id": "p1",
            "lane_id": lane, "plate": {"text": "01A123BC"}, **extra}


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    key = PostKey.load_or_create(tmp_path / "post.key")
    return Journal(tmp_path / "journal.sqlite", key, "p1")


def test_key_file_is_private_and_reloads(tmp_path: Path) -> None:
    k1 = PostKey.load_or_create(tmp_path / "keys" / "post.key")
    mode = stat.S_IMODE((tmp_path / "keys" / "post.key").stat().st_mode)
    assert mode == 0o600
    k2 = PostKey.load_or_create(tmp_path / "keys" / "post.key")
    assert k1.key_id == k2.key_id and len(k1.key_id) == 16


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": "Ўзбек"}) == '{"a":"Ўзбек","b":1}'.encode()


def test_append_assigns_seq_and_chains(journal: Journal) -> None:
    a = journal.append(_payload())
    b = journal.append(_payload("lane2"))
    assert (a.seq, b.seq) == (1, 2)
    assert a.payload["integrity"]["prev_hash"] == GENESIS_HASH
    assert b.payload["integrity"]["prev_hash"] == a.payload["integrity"]["hash"]
    assert verify_event(b.payload, journal.key.public) == b.payload["integrity"]["hash"]
    assert json.loads(b.raw) == b.payload
    tampered = json.loads(b.raw)
    tampered["lane_id"] = "lane9"
    with pytest.raises(IntegrityError, match="hash"):
        verify_event(tampered, journal.key.public)
    other = PostKey.generate()
    with pytest.raises(IntegrityError, match="key"):
        verify_event(b.payload, other.public)


def test_duplicate_event_id_refused(journal: Journal) -> None:
    p = _payload()
    journal.append(p)
    with pytest.raises(StorageError, match="already"):
        journal.append(p)
    assert journal.last_seq() == 1


def test_pending_ack_backlog_and_restart(tmp_path: Path, journal: Journal) -> None:
    for _ in range(5):
        journal.append(_payload())
    assert [e.seq for e in journal.pending(10)] == [1, 2, 3, 4, 5]
    journal.mark_published([1, 2, 3])
    assert journal.mark_acked(3) == 3
    assert [e.seq for e in journal.pending(10)] == [4, 5]
    assert [e.seq for e in journal.pending(10, after_seq=4)] == [5]
    count, age = journal.backlog()
    assert count == 2 and age is not None and age >= 0
    assert journal.mark_acked(2) == 3  # an old ack never moves it back
    assert journal.mark_acked(99) == 5  # capped at what exists
    journal.close()
    again = Journal(tmp_path / "journal.sqlite", PostKey.load_or_create(tmp_path / "post.key"), "p1")
    assert again.last_ack() == 5 and again.append(_payload()).seq == 6
    assert again.verify() == []
    with pytest.raises(StorageError, match="post"):
        Journal(tmp_path / "journal.sqlite", again.key, "other-post")


def test_prune_keeps_undelivered_and_chain_anchor(journal: Journal) -> None:
    assert journal.claim_command("old", "diag.run", expires_at=time.time() - 30 * 86400)
    assert journal.claim_command("fresh", "diag.run", expires_at=time.time() + 3600)
    for _ in range(6):
        journal.append(_payload())
    journal.mark_acked(4)
    assert journal.prune(0) == 4
    assert [e.seq for e in journal.pending(10)] == [5, 6]
    assert journal.prune(0) == 0
    assert journal.verify() == []
    assert journal.append(_payload()).seq == 7
    assert journal.verify() == []
    # Long-expired command ids are forgotten (their commands are refused as expired anyway).
    assert journal.command_state("old") is None and journal.command_state("fresh") == "running"


def test_quota_alarm(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    j = Journal(tmp_path / "j.sqlite", PostKey.generate(), "p1", quota_bytes=50_000, alarm_fraction=0.5)
    for _ in range(100):
        j.append(_payload(blob="x" * 500))
    st = j.quota()
    assert st.alarm and j.last_seq() == 100  # alarm raised, nothing refused or evicted
    assert any("never evicted" in r.message for r in caplog.records)


def _db(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_verify_names_deleted_changed_inserted(tmp_path: Path, journal: Journal) -> None:
    for _ in range(8):
        journal.append(_payload())
    path = journal.path
    db = _db(path)
    db.execute("DELETE FROM events WHERE seq = 3")
    problems = journal.verify()
    assert any(p.startswith("seq 3: missing") for p in problems), problems
    assert verify_file(path) == problems

    row = db.execute("SELECT payload FROM events WHERE seq = 5").fetchone()
    body = json.loads(row[0])
    body["plate"]["text"] = "99Z999ZZ"
    db.execute("UPDATE events SET payload = ? WHERE seq = 5", (json.dumps(body),))
    problems = journal.verify()
    assert any(p.startswith("seq 5:") and "hash" in p for p in problems), problems

    db.execute("DELETE FROM events WHERE seq = 8")
    assert any("seq 8: missing" in p for p in journal.verify())
    db.close()


def test_verify_detects_forged_insert(tmp_path: Path, journal: Journal) -> None:
    for _ in range(3):
        journal.append(_payload())
    forger = Journal(tmp_path / "forged.sqlite", PostKey.generate(), "p1")
    for _ in range(4):
        forged = forger.append(_payload())
    db = _db(journal.path)
    db.execute(
        "INSERT INTO events (seq, event_id, lane_id, payload, hash, prev_hash, created_at) VALUES (4,?,?,?,?,?,0)",
        (forged.event_id, "lane1", forged.raw.decode(), forged.payload["integrity"]["hash"], "x"),
    )
    problems = journal.verify()
    assert any(p.startswith("seq 4:") for p in problems), problems
    db.close()
