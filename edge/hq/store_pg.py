"""HQ's event store on PostgreSQL: what a national centre runs, with several HQ processes on one database.

Same interface and same migration numbers as :class:`edge.hq.store.SqliteEventStore` (the list in
:data:`MIGRATIONS` mirrors :data:`edge.hq.store.MIGRATIONS` version for version, in PostgreSQL's
dialect), so a deployment can move from the laptop store to this one without the subscriber noticing,
and the shared test suite (tests/hq_pg) holds both to the same behaviour.

Why it is built this way:

* The payload is stored as the exact JSON text, not JSONB: JSONB reorders keys and rewrites numbers
  (``38240.0`` becomes ``38240``), after which the post's hash and signature could no longer be
  re-verified from what HQ holds. Evidence must stay byte-for-byte checkable.
* Several HQ processes share the database, so every decision that two of them could race on is made
  by a constraint, not by a read-then-write: the event id is UNIQUE (``ON CONFLICT DO NOTHING`` means
  duplicate), ``(post_id, seq)`` is the primary key (a second event claiming a seq is a conflict), the
  contiguous point only moves up (``GREATEST``), and migrations take an advisory lock.
* ``synchronous_commit`` is forced on for this connection: the subscriber acknowledges an event to
  the post once :meth:`insert_event` returns, so the commit must be on disk by then.

Needs the optional ``pg`` extra (``pip install customs-post-edge[pg]``, psycopg 3).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from edge.errors import StorageError
from edge.hq.store import SqlEventStore, plate_of

try:  # psycopg is an optional extra; importing this module without it must say so clearly.
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg import sql
except ImportError as _err:  # pragma: no cover - exercised only where the extra is missing
    psycopg = None  # type: ignore[assignment]
    _IMPORT_ERROR: ImportError | None = _err
else:
    _IMPORT_ERROR = None

log = logging.getLogger(__name__)

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MIGRATION_LOCK = 0x637573746F6D73  # "customs": serialises migrations across HQ processes

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE posts (
            post_id TEXT PRIMARY KEY,
            public_key TEXT,
            key_id TEXT,
            contiguous_seq BIGINT NOT NULL DEFAULT 0,
            last_seen DOUBLE PRECISION,
            status TEXT,
            status_at DOUBLE PRECISION
        );
        CREATE TABLE events (
            post_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            event_id TEXT NOT NULL UNIQUE,
            lane_id TEXT NOT NULL,
            plate_text TEXT,
            first_seen TEXT,
            hash TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
            payload TEXT NOT NULL,
            PRIMARY KEY (post_id, seq)
        );
        CREATE INDEX events_lane ON events (post_id, lane_id, seq);
        CREATE INDEX events_plate ON events (plate_text);
        CREATE TABLE problems (
            id BIGSERIAL PRIMARY KEY,
            post_id TEXT NOT NULL,
            seq BIGINT,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            payload TEXT
        );
        CREATE INDEX problems_post ON problems (post_id, at);
        """,
    ),
]
"""(version, SQL) in PostgreSQL's dialect, one entry per entry of edge.hq.store.MIGRATIONS. Append only."""


def split_url(url: str) -> tuple[str, str | None]:
    """``postgresql://h/db?schema=hq&sslmode=require`` -> (libpq URL without ``schema``, ``"hq"``).

    libpq refuses parameters it does not know, so our own ``schema`` parameter is taken out here.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def redact_dsn(dsn: str) -> str:
    """A DSN for log lines: the password, if any, replaced."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", re.sub(r"(password=)\S+", r"\1***", dsn))


class PostgresEventStore(SqlEventStore):
    """The HQ store on a PostgreSQL server. One connection per store; thread-safe (one lock).

    ``schema`` puts the tables in their own PostgreSQL schema (created when missing), so several
    deployments, or test runs, can share one database.
    """

    def __init__(self, dsn: str, *, schema: str | None = None, connect_timeout_s: int = 10) -> None:
        if _IMPORT_ERROR is not None:
            raise StorageError(
                "the PostgreSQL store needs psycopg 3: pip install 'customs-post-edge[pg]'"
            ) from _IMPORT_ERROR
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise StorageError(f"invalid PostgreSQL schema name {schema!r} (lower case, digits, '_')")
        self.dsn = dsn
        self.schema = schema
        self._lock = threading.RLock()
        try:
            self._db = psycopg.connect(dsn, autocommit=True, connect_timeout=connect_timeout_s)
            self._db.execute("SET synchronous_commit = on")
            if schema is not None:
                self._db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
                self._db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            self._migrate()
        except psycopg.Error as err:
            raise StorageError(f"{redact_dsn(dsn)}: cannot open the HQ store: {err}") from err

    @classmethod
    def from_url(cls, url: str) -> PostgresEventStore:
        """For ``open_store``: ``postgresql://user@host:5432/db?schema=hq`` (``schema`` optional)."""
        dsn, schema = split_url(url)
        return cls(dsn, schema=schema)

    # -- plumbing ----------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._lock:
            try:
                with self._db.transaction():
                    yield self._db
            except psycopg.Error as err:
                raise StorageError(f"{redact_dsn(self.dsn)}: {err}") from err

    def _q(self, query: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; the shared queries' ``?`` placeholders become psycopg's ``%s``."""
        with self._lock:
            try:
                cur = self._db.execute(query.replace("?", "%s"), args)
                return cur.fetchall() if cur.description is not None else []
            except psycopg.Error as err:
                raise StorageError(f"{redact_dsn(self.dsn)}: {err}") from err

    def _migrate(self) -> None:
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                " applied_at DOUBLE PRECISION)"
            )
            row = self._db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
            current = int(row[0]) if row else 0
            for version, script in MIGRATIONS:
                if version <= current:
                    continue
                for stmt in (s.strip() for s in script.split(";")):
                    if stmt:
                        self._db.execute(stmt.encode())  # bytes: no client-side parameter parsing
                self._db.execute("INSERT INTO schema_version VALUES (%s, %s)", (version, time.time()))
                log.info("HQ store %s migrated to schema version %d", redact_dsn(self.dsn), version)

    # -- EventStore --------------------------------------------------------------------------------

    def insert_event(self, payload: dict[str, Any]) -> bool:
        post_id, seq, event_id = payload["post_id"], int(payload["seq"]), payload["event_id"]
        integ = payload["integrity"]
        now = time.time()
        text = json.dumps(payload, ensure_ascii=False, sort_keys=True)
        with self._lock:
            try:
                with self._db.transaction():
                    cur = self._db.execute(
                        "INSERT INTO events (post_id, seq, event_id, lane_id, plate_text, first_seen, hash,"
                        " prev_hash, received_at, payload) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                        " ON CONFLICT (event_id) DO NOTHING",
                        (post_id, seq, event_id, payload.get("lane_id", ""), plate_of(payload),
                         payload.get("first_seen"), integ["hash"], integ["prev_hash"], now, text),
                    )
                    if cur.rowcount == 0:
                        return False
                    self._db.execute(
                        "INSERT INTO posts (post_id, last_seen) VALUES (%s, %s) ON CONFLICT (post_id)"
                        " DO UPDATE SET last_seen = GREATEST(posts.last_seen, excluded.last_seen)",
                        (post_id, now),
                    )
            except pg_errors.UniqueViolation as err:
                # The (post, seq) key. Either a concurrent HQ process committed this very event first
                # (its row hit the primary key before the event_id arbiter could see it): a duplicate;
                # or another event holds this seq: a conflict the subscriber must flag.
                rows = self._q("SELECT event_id FROM events WHERE post_id = %s AND seq = %s", (post_id, seq))
                holder = rows[0][0] if rows else "?"
                if holder == event_id:
                    return False
                raise StorageError(
                    f"post {post_id} seq {seq}: already held by event {holder}, offered {event_id}"
                ) from err
            except psycopg.Error as err:
                raise StorageError(f"{redact_dsn(self.dsn)}: cannot store event {event_id}: {err}") from err
        return True

    def set_contiguous_seq(self, post_id: str, seq: int) -> None:
        # Derived state, so committed without waiting for the disk (half the fsyncs per event): the
        # events themselves were committed synchronously, and should a crash lose this pointer, the
        # subscriber's chain walk recomputes it from the stored events with the post's next message.
        with self._tx() as db:
            db.execute("SET LOCAL synchronous_commit TO OFF")
            db.execute(
                "INSERT INTO posts (post_id, contiguous_seq) VALUES (%s, %s) ON CONFLICT (post_id)"
                " DO UPDATE SET contiguous_seq = GREATEST(posts.contiguous_seq, excluded.contiguous_seq)",
                (post_id, seq),
            )

    def missing_seqs(self, post_id: str, limit: int = 1000) -> list[int]:
        start = self.contiguous_seq(post_id)
        rows = self._q(
            "SELECT s FROM generate_series(%s::bigint + 1,"
            " (SELECT COALESCE(MAX(seq), 0) FROM events WHERE post_id = %s) - 1) AS s"
            " WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.post_id = %s AND e.seq = s) ORDER BY s LIMIT %s",
            (start, post_id, post_id, limit),
        )
        return [int(r[0]) for r in rows]

    def record_problem(
        self, post_id: str, seq: int | None, kind: str, detail: str, payload: bytes | None = None
    ) -> None:
        text = None if payload is None else payload.decode("utf-8", "replace").replace("\x00", "\ufffd")
        self._q(
            "INSERT INTO problems (post_id, seq, kind, detail, at, payload) VALUES (%s, %s, %s, %s, %s, %s)",
            (post_id, seq, kind, detail, time.time(), text),
        )

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except psycopg.Error as err:
                log.warning("closing HQ store %s: %s", redact_dsn(self.dsn), err)

    def drop_schema(self) -> None:
        """Remove this store's schema and everything in it (tests and benchmarks clean up with this)."""
        if self.schema is None:
            raise StorageError("drop_schema needs a store opened with its own schema")
        self._q(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)).as_string(self._db))
