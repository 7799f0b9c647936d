"""HQ's event store: an interface and the SQLite implementation (PostgreSQL follows the same migrations).

The subscriber acknowledges an event to the post only after :meth:`EventStore.insert_event` returned,
so the store must be durable at that point (SQLite: WAL with ``synchronous=FULL``). Migrations are a
numbered list of SQL scripts recorded in ``schema_version``; a PostgreSQL store applies the same
numbers with its own dialect so both stores stay in step.
"""

from __future__ import annotations

import abc
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import StorageError
from edge.outbox.rotation import ROTATION_LANE, is_rotation
from edge.plates import normalise_plate, plate_distance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PostState:
    post_id: str
    public_key: str | None
    key_id: str | None
    contiguous_seq: int
    max_seq: int
    last_seen: float | None
    status: str | None = None
    status_at: float | None = None


@dataclass(frozen=True)
class Problem:
    post_id: str
    seq: int | None
    kind: str
    detail: str
    at: float


MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE posts (
            post_id TEXT PRIMARY KEY,
            public_key TEXT,
            key_id TEXT,
            contiguous_seq INTEGER NOT NULL DEFAULT 0,
            last_seen REAL,
            status TEXT,
            status_at REAL
        );
        CREATE TABLE events (
            post_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            event_id TEXT NOT NULL UNIQUE,
            lane_id TEXT NOT NULL,
            plate_text TEXT,
            first_seen TEXT,
            hash TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            received_at REAL NOT NULL,
            payload TEXT NOT NULL,
            PRIMARY KEY (post_id, seq)
        );
        CREATE INDEX events_lane ON events (post_id, lane_id, seq);
        CREATE INDEX events_plate ON events (plate_text);
        CREATE TABLE problems (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            post_id TEXT NOT NULL,
            seq INTEGER,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL,
            at REAL NOT NULL,
            payload TEXT
        );
        CREATE INDEX problems_post ON problems (post_id, at);
        """,
    ),
]
"""(version, SQL). Append only; never edit a released migration."""


class EventStore(abc.ABC):
    """What the HQ subscriber needs from storage. Implementations must be durable on return."""

    @abc.abstractmethod
    def insert_event(self, payload: dict[str, Any]) -> bool:
        """Store a verified event; False when its event_id is already stored (a duplicate).

        Raises StorageError when another event already holds the same (post, seq).
        """

    def insert_events(self, payloads: list[dict[str, Any]]) -> list[str]:
        """Store several verified events, durable on return; one outcome each, in order:
        ``"new"``, ``"duplicate"`` or ``"conflict: <why>"`` (another event holds that post and seq).

        The subscriber calls this with everything that arrived together (group commit). This default
        stores them one by one; a store should override it with a single transaction.
        """
        out: list[str] = []
        for p in payloads:
            try:
                out.append("new" if self.insert_event(p) else "duplicate")
            except StorageError as err:
                if "already held" not in str(err):
                    raise
                out.append(f"conflict: {err}")
        return out

    @abc.abstractmethod
    def get_link(self, post_id: str, seq: int) -> tuple[str, str] | None:
        """The stored event's ``(hash, prev_hash)``: what the chain check walks."""

    @abc.abstractmethod
    def contiguous_seq(self, post_id: str) -> int:
        """Highest seq such that every seq from 1 up to it is stored (and chain-checked)."""

    @abc.abstractmethod
    def set_contiguous_seq(self, post_id: str, seq: int) -> None: ...

    @abc.abstractmethod
    def max_seq(self, post_id: str) -> int: ...

    @abc.abstractmethod
    def missing_seqs(self, post_id: str, limit: int = 1000) -> list[int]:
        """Seqs above the contiguous point and below the highest stored one that are absent."""

    @abc.abstractmethod
    def record_problem(
        self, post_id: str, seq: int | None, kind: str, detail: str, payload: bytes | None = None
    ) -> None: ...

    @abc.abstractmethod
    def problems(self, post_id: str | None = None, limit: int = 100) -> list[Problem]: ...

    @abc.abstractmethod
    def post_key(self, post_id: str) -> str | None:
        """The pinned public key (base64) of a post, if any."""

    @abc.abstractmethod
    def pin_post_key(self, post_id: str, public_key: str, key_id: str) -> None: ...

    def key_rotations(self, post_id: str) -> list[dict[str, Any]]:
        """The post's stored (so already verified) key rotation events, oldest first.

        The subscriber derives the key in force at any seq from them; a store may override this
        with a narrower query. Rotation events are the only ones in lane ``_post``.
        """
        rows = self.recent(post_id, ROTATION_LANE, 1_000_000)
        return sorted((p for p in rows if is_rotation(p)), key=lambda p: int(p["seq"]))

    @abc.abstractmethod
    def posts(self) -> list[PostState]: ...

    @abc.abstractmethod
    def set_post_status(self, post_id: str, status: str) -> None:
        """The post's retained online/offline status (its last will says offline)."""

    @abc.abstractmethod
    def recent(self, post_id: str, lane_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Newest first."""

    @abc.abstractmethod
    def search_plate(self, text: str, fuzzy: bool = False, limit: int = 50) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    def count(self, post_id: str | None = None) -> int: ...

    @abc.abstractmethod
    def schema_version(self) -> int: ...

    @abc.abstractmethod
    def close(self) -> None: ...


def plate_of(payload: dict[str, Any]) -> str | None:
    plate = payload.get("plate")
    if isinstance(plate, dict) and isinstance(plate.get("text"), str):
        return normalise_plate(plate["text"])
    return None


class SqlEventStore(EventStore):
    """The queries both SQL stores share, written once with ``?`` placeholders.

    A subclass supplies ``_q`` for its driver (translating the placeholder where the driver wants
    another) and the dialect-specific parts: migrations, inserts, the gap query.
    """

    @abc.abstractmethod
    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...

    def schema_version(self) -> int:
        return int(self._q("SELECT MAX(version) FROM schema_version")[0][0])

    def get_link(self, post_id: str, seq: int) -> tuple[str, str] | None:
        rows = self._q("SELECT hash, prev_hash FROM events WHERE post_id = ? AND seq = ?", (post_id, seq))
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def contiguous_seq(self, post_id: str) -> int:
        rows = self._q("SELECT contiguous_seq FROM posts WHERE post_id = ?", (post_id,))
        return int(rows[0][0]) if rows else 0

    def max_seq(self, post_id: str) -> int:
        return int(self._q("SELECT COALESCE(MAX(seq), 0) FROM events WHERE post_id = ?", (post_id,))[0][0])

    def problems(self, post_id: str | None = None, limit: int = 100) -> list[Problem]:
        if post_id is None:
            rows = self._q("SELECT post_id, seq, kind, detail, at FROM problems ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._q(
                "SELECT post_id, seq, kind, detail, at FROM problems WHERE post_id = ? ORDER BY id DESC LIMIT ?",
                (post_id, limit),
            )
        return [Problem(r[0], None if r[1] is None else int(r[1]), r[2], r[3], float(r[4])) for r in rows]

    def post_key(self, post_id: str) -> str | None:
        rows = self._q("SELECT public_key FROM posts WHERE post_id = ?", (post_id,))
        return rows[0][0] if rows and rows[0][0] else None

    def pin_post_key(self, post_id: str, public_key: str, key_id: str) -> None:
        self._q(
            "INSERT INTO posts (post_id, public_key, key_id) VALUES (?, ?, ?)"
            " ON CONFLICT (post_id) DO UPDATE SET public_key = excluded.public_key, key_id = excluded.key_id",
            (post_id, public_key, key_id),
        )

    def posts(self) -> list[PostState]:
        rows = self._q(
            "SELECT p.post_id, p.public_key, p.key_id, p.contiguous_seq, p.last_seen,"
            " (SELECT COALESCE(MAX(seq), 0) FROM events e WHERE e.post_id = p.post_id), p.status, p.status_at"
            " FROM posts p ORDER BY p.post_id"
        )
        return [PostState(r[0], r[1], r[2], int(r[3]), int(r[5]), r[4], r[6], r[7]) for r in rows]

    def set_post_status(self, post_id: str, status: str) -> None:
        self._q(
            "INSERT INTO posts (post_id, status, status_at) VALUES (?, ?, ?)"
            " ON CONFLICT (post_id) DO UPDATE SET status = excluded.status, status_at = excluded.status_at",
            (post_id, status, time.time()),
        )

    @staticmethod
    def _payloads(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in rows]

    def recent(self, post_id: str, lane_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        if lane_id is None:
            # Crossings: the post-level lane (key rotations) is asked for by name only.
            rows = self._q(
                "SELECT payload FROM events WHERE post_id = ? AND lane_id != ? ORDER BY seq DESC LIMIT ?",
                (post_id, ROTATION_LANE, limit),
            )
        else:
            rows = self._q(
                "SELECT payload FROM events WHERE post_id = ? AND lane_id = ? ORDER BY seq DESC LIMIT ?",
                (post_id, lane_id, limit),
            )
        return self._payloads(rows)

    def key_rotations(self, post_id: str) -> list[dict[str, Any]]:
        rows = self._q("SELECT payload FROM events WHERE post_id = ? AND lane_id = ? ORDER BY seq",
                       (post_id, ROTATION_LANE))
        return [p for p in self._payloads(rows) if is_rotation(p)]

    def events_in_order(self, post_id: str) -> list[dict[str, Any]]:
        return self._payloads(self._q("SELECT payload FROM events WHERE post_id = ? ORDER BY seq", (post_id,)))

    def search_plate(self, text: str, fuzzy: bool = False, limit: int = 50) -> list[dict[str, Any]]:
        want = normalise_plate(text)
        if not fuzzy:
            rows = self._q(
                "SELECT payload FROM events WHERE plate_text = ? ORDER BY received_at DESC LIMIT ?", (want, limit)
            )
            return self._payloads(rows)
        # Fuzzy: candidates of similar length, ranked by OCR-aware edit distance (at most 2).
        rows = self._q(
            "SELECT plate_text, payload FROM events"
            " WHERE plate_text IS NOT NULL AND length(plate_text) BETWEEN ? AND ?",
            (len(want) - 2, len(want) + 2),
        )
        scored = sorted(
            ((plate_distance(want, r[0]), r[1]) for r in rows), key=lambda t: t[0]
        )
        return [json.loads(p) for d, p in scored if d <= 2][:limit]

    def count(self, post_id: str | None = None) -> int:
        if post_id is None:
            return int(self._q("SELECT COUNT(*) FROM events")[0][0])
        return int(self._q("SELECT COUNT(*) FROM events WHERE post_id = ?", (post_id,))[0][0])


class SqliteEventStore(SqlEventStore):
    """The default store: one SQLite file, WAL, ``synchronous=FULL``. Safe for several HQ processes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.Error as err:
            raise StorageError(f"{self.path}: cannot open the HQ store: {err}") from err

    def _migrate(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at REAL)"
                )
                current = self._db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
                for version, sql in MIGRATIONS:
                    if version <= current:
                        continue
                    for stmt in (s.strip() for s in sql.split(";")):
                        if stmt:
                            self._db.execute(stmt)
                    self._db.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))
                    log.info("HQ store %s migrated to schema version %d", self.path, version)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as err:
                raise StorageError(f"{self.path}: {err}") from err

    def insert_event(self, payload: dict[str, Any]) -> bool:
        outcome = self.insert_events([payload])[0]
        if outcome.startswith("conflict"):
            raise StorageError(outcome.removeprefix("conflict: "))
        return outcome == "new"

    def insert_events(self, payloads: list[dict[str, Any]]) -> list[str]:
        now = time.time()
        out: list[str] = []
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for payload in payloads:
                        out.append(self._insert_one(payload, now))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise StorageError(f"{self.path}: cannot store {len(payloads)} event(s): {err}") from err
        return out

    def _insert_one(self, payload: dict[str, Any], now: float) -> str:
        post_id, seq, event_id = payload["post_id"], int(payload["seq"]), payload["event_id"]
        if self._db.execute("SELECT 1 FROM events WHERE event_id = ?", (event_id,)).fetchone():
            return "duplicate"
        other = self._db.execute(
            "SELECT event_id FROM events WHERE post_id = ? AND seq = ?", (post_id, seq)
        ).fetchone()
        if other is not None:
            return f"conflict: post {post_id} seq {seq}: already held by event {other[0]}, offered {event_id}"
        integ = payload["integrity"]
        self._db.execute(
            "INSERT INTO events (post_id, seq, event_id, lane_id, plate_text, first_seen, hash,"
            " prev_hash, received_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (post_id, seq, event_id, payload.get("lane_id", ""), plate_of(payload),
             payload.get("first_seen"), integ["hash"], integ["prev_hash"], now,
             json.dumps(payload, ensure_ascii=False, sort_keys=True)),
        )
        self._db.execute(
            "INSERT INTO posts (post_id, last_seen) VALUES (?, ?)"
            " ON CONFLICT (post_id) DO UPDATE SET last_seen = excluded.last_seen",
            (post_id, now),
        )
        return "new"

    def set_contiguous_seq(self, post_id: str, seq: int) -> None:
        # Derived data (the subscriber re-walks the chain from it), so it may skip the fsync: after a
        # crash it is merely lower and the next event walks it forward again.
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._set_contiguous(post_id, seq)
            finally:
                self._db.execute("PRAGMA synchronous=FULL")

    def _set_contiguous(self, post_id: str, seq: int) -> None:
        self._q(
            "INSERT INTO posts (post_id, contiguous_seq) VALUES (?, ?)"
            " ON CONFLICT (post_id) DO UPDATE SET contiguous_seq = MAX(contiguous_seq, excluded.contiguous_seq)",
            (post_id, seq),
        )

    def missing_seqs(self, post_id: str, limit: int = 1000) -> list[int]:
        start = self.contiguous_seq(post_id)
        have = {int(r[0]) for r in self._q("SELECT seq FROM events WHERE post_id = ? AND seq > ?", (post_id, start))}
        if not have:
            return []
        out = [s for s in range(start + 1, max(have)) if s not in have]
        return out[:limit]

    def record_problem(
        self, post_id: str, seq: int | None, kind: str, detail: str, payload: bytes | None = None
    ) -> None:
        self._q(
            "INSERT INTO problems (post_id, seq, kind, detail, at, payload) VALUES (?, ?, ?, ?, ?, ?)",
            (post_id, seq, kind, detail, time.time(),
             None if payload is None else payload.decode("utf-8", "replace")),
        )

    def integrity_check(self) -> str:
        return str(self._q("PRAGMA integrity_check")[0][0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(url: str) -> EventStore:
    """Choose the store by URL: ``sqlite:///path`` (default). PostgreSQL lands with issue 7."""
    if url.startswith("sqlite:///"):
        return SqliteEventStore(url[len("sqlite:///") :])
    if url.startswith(("postgresql://", "postgres://")):
        raise StorageError("the PostgreSQL store is not available yet; use sqlite:///PATH")
    if "://" not in url:
        return SqliteEventStore(url)
    raise StorageError(f"unsupported store URL {url!r}: use sqlite:///PATH")
