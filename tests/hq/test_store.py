"""The SQLite event store: migrations, duplicates, contiguity, gaps, problems, queries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.errors import StorageError
from edge.hq.store import MIGRATIONS, SqliteEventStore, open_store
from edge.outbox.journal import Journal
from edge.outbox.signing import PostKey
from edge.plates import plate_distance
from tests.delivery.harness import event_payload


def _events(tmp_path: Path, n: int, post: str = "p1") -> list[dict[str, object]]:
    j = Journal(tmp_path / f"{post}.journal", PostKey.generate(), post)
    return [j.append(event_payload(post, f"lane{i % 2 + 1}", i)).payload for i in range(n)]


def test_migrations_are_versioned_and_idempotent(tmp_path: Path) -> None:
    s = SqliteEventStore(tmp_path / "hq.sqlite")
    assert s.schema_version() == MIGRATIONS[-1][0]
    s.close()
    s2 = open_store(f"sqlite:///{tmp_path / 'hq.sqlite'}")
    assert s2.schema_version() == MIGRATIONS[-1][0]
    db = sqlite3.connect(tmp_path / "hq.sqlite")
    assert db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(StorageError, match="unsupported"):
        open_store("mysql://x")


def test_insert_duplicate_conflict_and_missing(tmp_path: Path) -> None:
    s = SqliteEventStore(tmp_path / "hq.sqlite")
    evs = _events(tmp_path, 6)
    assert s.insert_event(evs[0]) and not s.insert_event(evs[0])
    for e in (evs[1], evs[3], evs[5]):
        s.insert_event(e)
    s.set_contiguous_seq("p1", 2)
    assert s.missing_seqs("p1") == [3, 5]
    assert s.max_seq("p1") == 6 and s.count("p1") == 4
    other = dict(evs[2])
    other["event_id"] = "someone-else"
    other["seq"] = 2
    with pytest.raises(StorageError, match="already held"):
        s.insert_event(other)
    s.record_problem("p1", 3, "gap", "missing seqs 3")
    assert [(p.kind, p.seq) for p in s.problems("p1")] == [("gap", 3)]
    assert [e["seq"] for e in s.recent("p1", limit=2)] == [6, 4]
    assert all(e["lane_id"] == "lane2" for e in s.recent("p1", "lane2"))


def test_plate_search_exact_and_fuzzy(tmp_path: Path) -> None:
    s = SqliteEventStore(tmp_path / "hq.sqlite")
    for e in _events(tmp_path, 3):
        s.insert_event(e)
    assert [e["seq"] for e in s.search_plate("01 A 001 BC")] == [2]
    # An OCR misread (O for 0, 8 for B) still finds it when fuzzy.
    assert 2 in [e["seq"] for e in s.search_plate("O1A0018C", fuzzy=True)]
    assert s.search_plate("O1A0018C") == []
    assert plate_distance("01A123BC", "01A123BC") == 0 and plate_distance("01A123BC", "70X999ZZ") > 2
