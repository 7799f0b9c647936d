"""One suite, two stores: SQLite (default) and PostgreSQL must behave the same for the HQ subscriber."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.errors import StorageError
from edge.hq import store as sqlite_store
from edge.hq.store import EventStore
from edge.outbox.signing import GENESIS_HASH, verify_event
from tests.hq_pg.conftest import PostChain, StoreFactory


def test_migrations_are_numbered_alike_for_both_dialects() -> None:
    from edge.hq import store_pg

    assert [v for v, _ in store_pg.MIGRATIONS] == [v for v, _ in sqlite_store.MIGRATIONS]


def test_fresh_store_is_at_the_latest_schema_and_reopening_keeps_data(
    store_factory: StoreFactory, chain: Callable[..., PostChain]
) -> None:
    first = store_factory()
    assert first.schema_version() == sqlite_store.MIGRATIONS[-1][0]
    assert first.count() == 0
    post = chain()
    assert first.insert_event(post.next())
    first.close()
    again = store_factory()
    assert again.schema_version() == sqlite_store.MIGRATIONS[-1][0]
    assert again.count() == 1 and again.max_seq(post.post_id) == 1


def test_duplicates_are_dropped_by_event_id(store: EventStore, chain: Callable[..., PostChain]) -> None:
    post = chain()
    ev = post.next()
    assert store.insert_event(ev) is True
    assert store.insert_event(ev) is False
    assert store.count() == 1 and store.count(post.post_id) == 1 and store.count("other") == 0


def test_a_second_event_claiming_a_stored_seq_is_a_conflict(
    store: EventStore, chain: Callable[..., PostChain]
) -> None:
    post = chain()
    ev = post.next()
    store.insert_event(ev)
    forged = dict(ev, event_id="00000000-0000-4000-8000-000000000000")
    with pytest.raises(StorageError, match=rf"post {post.post_id} seq 1: already held by event {ev['event_id']}"):
        store.insert_event(forged)
    assert store.count() == 1


def test_links_contiguous_point_and_missing_seqs(store: EventStore, chain: Callable[..., PostChain]) -> None:
    post = chain()
    evs = post.take(8)
    assert store.contiguous_seq(post.post_id) == 0 and store.max_seq(post.post_id) == 0
    assert store.missing_seqs(post.post_id) == []
    for ev in (evs[0], evs[1], evs[4], evs[6]):  # seqs 1, 2, 5, 7
        store.insert_event(ev)
    assert store.get_link(post.post_id, 1) == (evs[0]["integrity"]["hash"], GENESIS_HASH)
    assert store.get_link(post.post_id, 2) == (evs[1]["integrity"]["hash"], evs[0]["integrity"]["hash"])
    assert store.get_link(post.post_id, 3) is None
    store.set_contiguous_seq(post.post_id, 2)
    assert store.contiguous_seq(post.post_id) == 2
    assert store.max_seq(post.post_id) == 7
    assert store.missing_seqs(post.post_id) == [3, 4, 6]
    assert store.missing_seqs(post.post_id, limit=2) == [3, 4]
    store.set_contiguous_seq(post.post_id, 1)  # never moves back (two HQ processes racing)
    assert store.contiguous_seq(post.post_id) == 2


def test_problems_are_kept_newest_first_even_for_garbage_bytes(store: EventStore) -> None:
    store.record_problem("p1", None, "malformed", "not JSON", b"\xff\xfe\x00garbage")
    store.record_problem("p2", 4, "gap", "missing seqs 4..5")
    store.record_problem("p1", 7, "tampered", "signature does not verify", b'{"seq": 7}')
    all_ = store.problems()
    assert [(p.post_id, p.seq, p.kind) for p in all_] == [("p1", 7, "tampered"), ("p2", 4, "gap"),
                                                          ("p1", None, "malformed")]
    assert [p.kind for p in store.problems("p1")] == ["tampered", "malformed"]
    assert len(store.problems(limit=1)) == 1
    assert all(isinstance(p.at, float) and p.at > 0 for p in all_)


def test_keys_and_post_states(store: EventStore, chain: Callable[..., PostChain]) -> None:
    a, b = chain("post-a"), chain("post-b")
    assert store.post_key("post-a") is None
    store.pin_post_key("post-a", a.key.public_b64, a.key.key_id)
    assert store.post_key("post-a") == a.key.public_b64
    for ev in a.take(3):
        store.insert_event(ev)
    store.set_contiguous_seq("post-a", 3)
    store.insert_event(b.next())
    states = {s.post_id: s for s in store.posts()}
    assert set(states) == {"post-a", "post-b"}
    assert (states["post-a"].key_id, states["post-a"].contiguous_seq, states["post-a"].max_seq) == (a.key.key_id, 3, 3)
    assert states["post-a"].last_seen is not None
    assert (states["post-b"].public_key, states["post-b"].contiguous_seq, states["post-b"].max_seq) == (None, 0, 1)
    store.pin_post_key("post-a", b.key.public_b64, b.key.key_id)  # a re-keyed post
    assert store.post_key("post-a") == b.key.public_b64
    assert states["post-a"].status is None
    store.set_post_status("post-a", "offline")
    store.set_post_status("post-c", "online")  # status before any event
    states = {s.post_id: s for s in store.posts()}
    assert (states["post-a"].status, states["post-a"].contiguous_seq) == ("offline", 3)
    assert states["post-c"].status == "online" and states["post-c"].status_at is not None


def test_recent_newest_first_per_lane(store: EventStore, chain: Callable[..., PostChain]) -> None:
    post = chain(lanes=("lane1", "lane2"))
    evs = post.take(6)
    for ev in evs:
        store.insert_event(ev)
    assert [e["seq"] for e in store.recent(post.post_id)] == [6, 5, 4, 3, 2, 1]
    assert [e["seq"] for e in store.recent(post.post_id, "lane2")] == [6, 4, 2]
    assert [e["seq"] for e in store.recent(post.post_id, "lane1", limit=2)] == [5, 3]
    assert store.recent("nobody") == []


def test_stored_payload_is_still_verifiable_evidence(store: EventStore, chain: Callable[..., PostChain]) -> None:
    """Floats, key order and non-ASCII survive storage: the post's signature still verifies."""
    post = chain()
    ev = post.next(extra_note="Тошкент — ўтиш", ratio=0.1 + 0.2)
    store.insert_event(ev)
    [back] = store.recent(post.post_id)
    assert back == ev
    assert isinstance(back["weighing"]["gross"], float)
    verify_event(back, post.key.public_b64)


def test_plate_search_exact_and_fuzzy(store: EventStore, chain: Callable[..., PostChain]) -> None:
    post = chain()
    plates = ["01A123BC", "01A128BC", "O1A123BC", "10B777AA", None]
    for p in plates:
        store.insert_event(post.next(plate=p))
    assert [e["plate"]["text"] for e in store.search_plate("01 a 123-bc")] == ["01A123BC"]
    fuzzy = {e["plate"]["text"] for e in store.search_plate("01A123BC", fuzzy=True)}
    assert fuzzy == {"01A123BC", "01A128BC", "O1A123BC"}  # 8/3 is one edit; O/0 is a confusion
    best = store.search_plate("01A123BC", fuzzy=True)[0]["plate"]["text"]
    assert best in {"01A123BC", "O1A123BC"}  # distance 0 ranks first
    assert store.search_plate("ZZZZZZZZ", fuzzy=True) == []


def test_two_hq_processes_on_one_database_store_each_event_once(
    store_factory: StoreFactory, chain: Callable[..., PostChain]
) -> None:
    """Both HQ views race on the same events (a re-send reached both): every event lands exactly once."""
    one, two = store_factory(), store_factory()
    posts = [chain() for _ in range(3)]
    events = [ev for p in posts for ev in p.take(15)]
    outcomes: dict[str, list[bool]] = {ev["event_id"]: [] for ev in events}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(s: EventStore) -> None:
        try:
            for ev in events:
                new = s.insert_event(ev)
                with lock:
                    outcomes[ev["event_id"]].append(new)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(s,)) for s in (one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert all(sorted(v) == [False, True] for v in outcomes.values()), outcomes
    assert one.count() == two.count() == len(events)
    for p in posts:
        assert [e["seq"] for e in one.recent(p.post_id, limit=100)] == list(range(15, 0, -1))


def test_both_dialects_create_the_same_tables_and_columns(pg_url: str, tmp_path: Path) -> None:
    """The PostgreSQL migrations mirror the SQLite ones column for column (catches an edit to one only)."""
    import sqlite3

    from edge.hq.store import SqliteEventStore
    from edge.hq.store_pg import PostgresEventStore

    SqliteEventStore(tmp_path / "s.sqlite").close()
    db = sqlite3.connect(tmp_path / "s.sqlite")
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                       " AND name NOT LIKE 'sqlite_%'")]
    lite = {t: {r[1] for r in db.execute(f"PRAGMA table_info({t})")} for t in tables}
    db.close()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    pg = PostgresEventStore(pg_url, schema=schema)
    try:
        rows = pg._q("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s",
                     (schema,))
        theirs: dict[str, set[str]] = {}
        for table, column in rows:
            theirs.setdefault(table, set()).add(column)
        assert theirs == lite
    finally:
        pg.drop_schema()
        pg.close()
