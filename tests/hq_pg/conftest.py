"""Stores for the shared HQ store suite: SQLite always; PostgreSQL when a server answers.

The server is ``$CUSTOMS_EDGE_TEST_PG`` or ``postgresql://postgres@127.0.0.1:5432/test`` (trust
auth on our machines). Each test gets its own PostgreSQL schema, dropped afterwards, so runs never
see each other's rows. Where psycopg or the server is missing the PostgreSQL cases skip and say why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.hq.store import EventStore
from edge.outbox.signing import GENESIS_HASH, PostKey, seal

PG_URL = os.environ.get("CUSTOMS_EDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_unavailable() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[pg]')"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        return f"no PostgreSQL server at {PG_URL}: {str(err).strip().splitlines()[0]}"
    return None


@pytest.fixture(scope="session")
def pg_url() -> str:
    why = _pg_unavailable()
    if why is not None:
        pytest.skip(why)
    return PG_URL


StoreFactory = Callable[[], EventStore]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty HQ database of each kind, as the URL ``--store`` takes; dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hq.sqlite'}"
        return
    from edge.hq.store_pg import PostgresEventStore

    base = request.getfixturevalue("pg_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{base}?schema={schema}"
    cleaner = PostgresEventStore(base, schema=schema)
    cleaner.drop_schema()
    cleaner.close()


@pytest.fixture
def store_factory(store_url: str) -> Iterator[StoreFactory]:
    """Opens stores on ONE database (call it twice for two HQ processes' views of the same data)."""
    from edge.hq.query import open_store_url

    opened: list[EventStore] = []

    def make() -> EventStore:
        opened.append(open_store_url(store_url))
        return opened[-1]

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> EventStore:
    return store_factory()


class PostChain:
    """Signed, chained events of one post, as its journal would commit them (no disk needed)."""

    def __init__(self, post_id: str, lanes: tuple[str, ...] = ("lane1",)) -> None:
        self.post_id = post_id
        self.key = PostKey.generate()
        self.lanes = lanes
        self.prev = GENESIS_HASH
        self.seq = 0

    def next(self, plate: str | None = "01A123BC", lane: str | None = None, **extra: Any) -> dict[str, Any]:
        self.seq += 1
        body: dict[str, Any] = {
            "schema": "customs.vehicle_event/1",
            "event_id": str(uuid.uuid4()),
            "post_id": self.post_id,
            "lane_id": lane or self.lanes[(self.seq - 1) % len(self.lanes)],
            "seq": self.seq,
            "first_seen": f"2026-11-28T21:{self.seq // 60 % 60:02d}:{self.seq % 60:02d}.000Z",
            "weighed_at": None,
            "left_at": f"2026-11-28T21:{self.seq // 60 % 60:02d}:{self.seq % 60:02d}.500Z",
            "plate": None if plate is None else {"text": plate, "display": plate, "country": "UZ",
                                                   "syntax": "uz_private", "confidence": 0.9, "camera": "front"},
            "reads": [],
            "trailer_plate": None,
            "containers": [],
            "weighing": {"gross": 38240.0, "tare": None, "net": None, "unit": "kg", "record_id": f"w-{self.seq}"},
            "flags": {"unreadable_plate": plate is None, "watchlist_hit": False, "weight_mismatch": False,
                      "no_weighing": False},
            "declaration": None,
            "software": {"version": "0.1.0", "models": {}},
            **extra,
        }
        sealed = seal(body, self.key, self.prev)
        self.prev = sealed["integrity"]["hash"]
        return sealed

    def take(self, n: int, **kw: Any) -> list[dict[str, Any]]:
        return [self.next(**kw) for _ in range(n)]


@pytest.fixture
def chain() -> Callable[..., PostChain]:
    return lambda post_id=None, lanes=("lane1",): PostChain(post_id or f"post-{uuid.uuid4().hex[:6]}", lanes)
