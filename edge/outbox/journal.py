"""The post's journal: every vehicle event, committed and signed before anyone else sees it.

SQLite in WAL mode with ``synchronous=FULL``: :meth:`Journal.append` returns only after the commit
reached the disk, so a crash (or SIGKILL, or power loss) right after it cannot lose the event. The
journal, not an MQTT library's memory, is what the uplink publishes from; HQ's end-to-end ack is the
only thing that marks an event delivered, and only delivered events older than the retention are
ever pruned: the quota raises an alarm, it never evicts evidence.

Each event gets the next per-post ``seq`` and an ``integrity`` block chaining it to the previous
event (see :mod:`edge.outbox.signing`). The ``meta`` table remembers the last seq and hash, and the
anchor left by pruning, so :meth:`Journal.verify` can tell a deleted tail or a deleted head.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import IntegrityError, StorageError
from edge.outbox.rotation import ROTATION_LANE, check_rotation, is_rotation
from edge.outbox.signing import (
    GENESIS_HASH,
    PostKey,
    b64,
    canonical_json,
    key_id_of,
    public_key_from,
    public_raw,
    seal,
    verify_event,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
COMMAND_MEMORY_S = 7 * 24 * 3600
"""How long after its expiry a command id is still kept (expired commands are refused anyway)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    lane_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    published_at REAL,
    acked_at REAL
);
CREATE INDEX IF NOT EXISTS events_acked ON events (acked_at);
CREATE TABLE IF NOT EXISTS commands_seen (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    received_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    state TEXT NOT NULL,
    result TEXT
);
"""


@dataclass(frozen=True)
class StoredEvent:
    """One committed event: ``payload`` is exactly what HQ receives (with ``seq`` and ``integrity``)."""

    seq: int
    event_id: str
    lane_id: str
    payload: dict[str, Any]
    raw: bytes
    created_at: float
    published_at: float | None = None
    acked_at: float | None = None


@dataclass(frozen=True)
class QuotaStatus:
    size_bytes: int
    quota_bytes: int | None
    alarm: bool
    over: bool


class Journal:
    """The durable, signed event journal of one post. Thread-safe (one connection, one lock)."""

    def __init__(
        self,
        path: Path,
        key: PostKey,
        post_id: str,
        *,
        quota_bytes: int | None = None,
        alarm_fraction: float = 0.8,
    ) -> None:
        self.path = Path(path)
        self.key = key
        self.post_id = post_id
        self.quota_bytes = quota_bytes
        self.alarm_fraction = alarm_fraction
        self._lock = threading.RLock()
        self._alarmed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._init_meta()
        except sqlite3.Error as err:
            raise StorageError(f"{self.path}: cannot open the journal: {err}") from err

    # -- setup -------------------------------------------------------------------------------------

    def _init_meta(self) -> None:
        with self._tx():
            meta = self._meta_all()
            if "post_id" not in meta:
                for k, v in {
                    "schema_version": str(SCHEMA_VERSION),
                    "post_id": self.post_id,
                    "public_key": self.key.public_b64,
                    "key_id": self.key.key_id,
                    "last_seq": "0",
                    "last_hash": GENESIS_HASH,
                    "pruned_upto": "0",
                    "pruned_hash": GENESIS_HASH,
                    "last_ack": "0",
                }.items():
                    self._set_meta(k, v)
                return
        if meta["post_id"] != self.post_id:
            raise StorageError(f"{self.path} is the journal of post {meta['post_id']!r}, not {self.post_id!r}")
        in_force = meta.get("signing_key_id", meta.get("key_id"))
        if in_force != self.key.key_id:
            # A replaced key is legitimate (a repaired post) but HQ must be told: log loudly. A rotated
            # key is not replaced: signing_key_id follows the rotations announced in the chain.
            log.warning(
                "journal %s was signed with key %s, now signing with %s", self.path, in_force, self.key.key_id,
            )

    def _meta_all(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    class _Tx:
        """BEGIN IMMEDIATE .. COMMIT under the lock; ``durable=False`` skips the fsync of the commit.

        Only for bookkeeping that can be lost safely in a crash (published/acked marks: the uplink
        then sends again and HQ drops the duplicates; HQ's retained ack restores the ack). The next
        durable commit flushes those pages too.
        """

        def __init__(self, j: Journal, durable: bool) -> None:
            self.j = j
            self.durable = durable

        def __enter__(self) -> sqlite3.Connection:
            self.j._lock.acquire()
            try:
                if not self.durable:
                    self.j._db.execute("PRAGMA synchronous=NORMAL")
                self.j._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self._restore()
                self.j._lock.release()
                raise
            return self.j._db

        def _restore(self) -> None:
            if not self.durable:
                self.j._db.execute("PRAGMA synchronous=FULL")

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
            try:
                self.j._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
            finally:
                try:
                    self._restore()
                finally:
                    self.j._lock.release()

    def _tx(self, durable: bool = True) -> Journal._Tx:
        return Journal._Tx(self, durable)

    # -- writing -----------------------------------------------------------------------------------

    def append(self, payload: dict[str, Any]) -> StoredEvent:
        """Assign the next seq, chain, sign and commit (fsync) the event; return it once durable."""
        for k in ("event_id", "lane_id"):
            if not isinstance(payload.get(k), str):
                raise StorageError(f"event payload has no {k!r}")
        if payload.get("post_id", self.post_id) != self.post_id:
            raise StorageError(f"event of post {payload.get('post_id')!r} offered to the journal of {self.post_id!r}")
        new_key: str | None = None
        if is_rotation(payload):
            # Only a statement by the key that seals it can enter the chain (HQ would refuse anything else).
            new_key = check_rotation(payload, self.key.public_b64, self.post_id)
        try:
            with self._tx() as db:
                seq = int(self._meta("last_seq") or 0) + 1
                prev = self._meta("last_hash") or GENESIS_HASH
                body = dict(payload)
                body["post_id"] = self.post_id
                body["seq"] = seq
                sealed = seal(body, self.key, prev)
                raw = canonical_json(sealed)
                now = time.time()
                db.execute(
                    "INSERT INTO events (seq, event_id, lane_id, payload, hash, prev_hash, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (seq, sealed["event_id"], sealed["lane_id"], raw.decode("utf-8"),
                     sealed["integrity"]["hash"], prev, now),
                )
                self._set_meta("last_seq", str(seq))
                self._set_meta("last_hash", sealed["integrity"]["hash"])
                if new_key is not None:
                    # Same transaction as the announcement: after a crash the next start knows it was made.
                    self._set_meta("signing_public_key", new_key)
                    self._set_meta("signing_key_id", key_id_of(public_raw(public_key_from(new_key))))
        except sqlite3.IntegrityError as err:
            raise StorageError(f"event {payload.get('event_id')} is already in the journal") from err
        except (sqlite3.Error, TypeError, ValueError) as err:
            raise StorageError(f"{self.path}: cannot commit event {payload.get('event_id')}: {err}") from err
        self._check_quota()
        return StoredEvent(seq, sealed["event_id"], sealed["lane_id"], sealed, raw, now)

    def rotate_key(self, new: PostKey) -> StoredEvent:
        """Announce ``new`` in the chain (sealed by the current key) and sign every later event with it.

        See :mod:`edge.outbox.rotation`; the key files are the caller's business.
        """
        from edge.outbox.rotation import rotation_event

        with self._lock:
            stored = self.append(rotation_event(self.key, new.public_b64, self.post_id))
            self.key = new
        return stored

    def signing_key_id(self) -> str:
        """The key id the chain says is in force after the last event (the last rotation's new key)."""
        with self._lock:
            return str(self._meta("signing_key_id") or self._meta("key_id"))

    def mark_published(self, seq: int | list[int]) -> None:
        """The broker accepted (PUBACK) these events; bookkeeping only, HQ's ack is what counts."""
        seqs = [seq] if isinstance(seq, int) else list(seq)
        if not seqs:
            return
        now = time.time()
        with self._tx(durable=False) as db:
            db.executemany(
                "UPDATE events SET published_at = ? WHERE seq = ? AND published_at IS NULL",
                [(now, s) for s in seqs],
            )

    def mark_acked(self, upto_seq: int) -> int:
        """HQ durably holds every event up to ``upto_seq``: mark them delivered. Returns the new ack."""
        now = time.time()
        with self._tx(durable=False) as db:
            last_ack = int(self._meta("last_ack") or 0)
            last_seq = int(self._meta("last_seq") or 0)
            if upto_seq > last_seq:
                log.warning(
                    "HQ acknowledged seq %d but the journal ends at %d (HQ holds another journal's events?)",
                    upto_seq, last_seq,
                )
                upto_seq = last_seq
            if upto_seq <= last_ack:
                return last_ack
            db.execute(
                "UPDATE events SET acked_at = ? WHERE seq > ? AND seq <= ? AND acked_at IS NULL",
                (now, last_ack, upto_seq),
            )
            db.execute(
                "UPDATE events SET published_at = ? WHERE seq > ? AND seq <= ? AND published_at IS NULL",
                (now, last_ack, upto_seq),
            )
            self._set_meta("last_ack", str(upto_seq))
        return upto_seq

    # -- reading -----------------------------------------------------------------------------------

    def _row(self, r: tuple[Any, ...]) -> StoredEvent:
        raw = str(r[3]).encode("utf-8")
        return StoredEvent(int(r[0]), r[1], r[2], json.loads(raw), raw, r[4], r[5], r[6])

    def pending(self, limit: int = 100, after_seq: int | None = None) -> list[StoredEvent]:
        """Events HQ has not acknowledged, in seq order, starting after ``after_seq`` (default: the ack)."""
        with self._lock:
            start = self.last_ack() if after_seq is None else max(after_seq, self.last_ack())
            rows = self._db.execute(
                "SELECT seq, event_id, lane_id, payload, created_at, published_at, acked_at FROM events"
                " WHERE seq > ? AND acked_at IS NULL ORDER BY seq LIMIT ?",
                (start, limit),
            ).fetchall()
        return [self._row(r) for r in rows]

    def get(self, seq: int) -> StoredEvent | None:
        with self._lock:
            r = self._db.execute(
                "SELECT seq, event_id, lane_id, payload, created_at, published_at, acked_at FROM events"
                " WHERE seq = ?",
                (seq,),
            ).fetchone()
        return None if r is None else self._row(r)

    def last_ack(self) -> int:
        with self._lock:
            return int(self._meta("last_ack") or 0)

    def last_seq(self) -> int:
        with self._lock:
            return int(self._meta("last_seq") or 0)

    def backlog(self) -> tuple[int, float | None]:
        """(events not acknowledged by HQ, age in seconds of the oldest of them or None)."""
        with self._lock:
            count, oldest = self._db.execute(
                "SELECT COUNT(*), MIN(created_at) FROM events WHERE seq > ? AND acked_at IS NULL",
                (int(self._meta("last_ack") or 0),),
            ).fetchone()
        return int(count), (None if oldest is None else max(0.0, time.time() - float(oldest)))

    # -- retention and quota -----------------------------------------------------------------------

    def prune(self, retention_s: float) -> int:
        """Delete delivered events older than the retention; never an undelivered one. Returns count.

        Only a contiguous head is pruned, and its last hash is kept as the chain's new anchor so
        :meth:`verify` still checks the rest.
        """
        cutoff = time.time() - retention_s
        with self._tx() as db:
            # Command ids only need remembering while a replay could still be accepted (until expiry).
            db.execute("DELETE FROM commands_seen WHERE expires_at < ?", (time.time() - COMMAND_MEMORY_S,))
        with self._tx() as db:
            last_ack = int(self._meta("last_ack") or 0)
            row = db.execute(
                "SELECT MIN(seq) FROM events WHERE seq <= ? AND (acked_at IS NULL OR created_at >= ?)",
                (last_ack, cutoff),
            ).fetchone()
            upto = last_ack if row[0] is None else int(row[0]) - 1
            if upto <= int(self._meta("pruned_upto") or 0):
                return 0
            anchor = db.execute("SELECT hash FROM events WHERE seq = ?", (upto,)).fetchone()
            if anchor is None:
                return 0
            # The key in force at the anchor: verify starts from it once the rotations before are gone.
            for (payload,) in db.execute(
                "SELECT payload FROM events WHERE lane_id = ? AND seq <= ? ORDER BY seq", (ROTATION_LANE, upto)
            ).fetchall():
                body = json.loads(payload)
                if is_rotation(body):
                    self._set_meta("pruned_public_key", str(body["key_rotation"]["new_public_key"]))
            n = db.execute("DELETE FROM events WHERE seq <= ?", (upto,)).rowcount
            self._set_meta("pruned_upto", str(upto))
            self._set_meta("pruned_hash", str(anchor[0]))
        if n:
            log.info("pruned %d delivered events up to seq %d (retention %.0f s)", n, upto, retention_s)
        return int(n)

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            p = self.path.with_name(self.path.name + suffix)
            if p.exists():
                total += p.stat().st_size
        return total

    def quota(self) -> QuotaStatus:
        size = self.size_bytes()
        q = self.quota_bytes
        return QuotaStatus(size, q, q is not None and size >= q * self.alarm_fraction, q is not None and size >= q)

    def _check_quota(self) -> None:
        if self.quota_bytes is None:
            return
        st = self.quota()
        if st.alarm and not self._alarmed:
            self._alarmed = True
            log.error(
                "journal %s uses %d of %d bytes (alarm at %.0f%%): undelivered events are never evicted;"
                " restore the uplink or add disk", self.path, st.size_bytes, st.quota_bytes,
                self.alarm_fraction * 100,
            )
        elif not st.alarm and self._alarmed:
            self._alarmed = False
            log.info("journal %s is back under its quota alarm (%d bytes)", self.path, st.size_bytes)

    # -- commands seen (replay protection for edge.commands) ----------------------------------------

    def claim_command(self, cmd_id: str, cmd_type: str, expires_at: float) -> bool:
        """Record a command id as taken; False if it was seen before (a replay). Durable before it runs."""
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO commands_seen (id, type, received_at, expires_at, state) VALUES (?, ?, ?, ?, ?)",
                    (cmd_id, cmd_type, time.time(), expires_at, "running"),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def finish_command(self, cmd_id: str, state: str, result: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE commands_seen SET state = ?, result = ? WHERE id = ?",
                (state, json.dumps(result), cmd_id),
            )

    def command_state(self, cmd_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT state FROM commands_seen WHERE id = ?", (cmd_id,)).fetchone()
        return None if row is None else str(row[0])

    # -- integrity ---------------------------------------------------------------------------------

    def integrity_check(self) -> str:
        with self._lock:
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    def verify(self) -> list[str]:
        """Check the whole journal offline; one line per problem, naming the seqs. Empty means intact.

        The chain is followed from the journal's first key through every rotation it announces, and
        must end at the key this journal signs with.
        """
        with self._lock:
            return verify_db(self._db, final_key=self.key.public_b64)

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error as err:
                log.warning("closing journal %s: %s", self.path, err)


def verify_db(db: sqlite3.Connection, public_key: str | None = None, *, final_key: str | None = None) -> list[str]:
    """The checks behind ``edgectl verify``: signatures, hashes, the chain, and no missing seqs.

    ``public_key`` is the key trusted for the first event kept (default: the journal's own record of
    it, which pruning moves past the rotations it removes); each verified key rotation event hands
    the chain to the key it announces. ``final_key``, when given, is the key that must be in force
    at the end (the one the journal signs with).
    """
    problems: list[str] = []
    ic = str(db.execute("PRAGMA integrity_check").fetchone()[0])
    if ic != "ok":
        problems.append(f"SQLite integrity_check: {ic}")
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    pub = public_key_from(public_key or meta.get("pruned_public_key") or meta["public_key"])
    post_id = meta.get("post_id")
    expected_seq = int(meta.get("pruned_upto", "0")) + 1
    prev_hash = meta.get("pruned_hash", GENESIS_HASH)
    last_seq = int(meta.get("last_seq", "0"))
    for seq, event_id, payload, h, ph in db.execute(
        "SELECT seq, event_id, payload, hash, prev_hash FROM events ORDER BY seq"
    ):
        seq = int(seq)
        if seq < expected_seq:
            problems.append(f"seq {seq}: present although seqs up to {expected_seq - 1} were pruned (inserted)")
            continue
        if seq > expected_seq:
            missing = _ranges(range(expected_seq, seq))
            problems.append(f"seq {missing}: missing (deleted) before seq {seq}")
        try:
            body = json.loads(payload)
            digest = verify_event(body, pub)
        except (IntegrityError, ValueError) as err:
            problems.append(f"seq {seq}: {err}")
            digest = h
            body = {}
        if body and is_rotation(body):
            try:
                pub = public_key_from(check_rotation(body, b64(public_raw(pub)), str(post_id)))
            except IntegrityError as err:
                problems.append(f"seq {seq}: key rotation refused: {err}")
        if body:
            if body.get("seq") != seq or body.get("event_id") != event_id or body.get("post_id") != post_id:
                problems.append(f"seq {seq}: stored seq/event_id/post_id differ from the signed payload")
            if digest != h:
                problems.append(f"seq {seq}: stored hash differs from the payload's")
            if body.get("integrity", {}).get("prev_hash") != prev_hash:
                problems.append(f"seq {seq}: chain broken (prev_hash does not match seq {seq - 1})")
        elif ph != prev_hash:
            problems.append(f"seq {seq}: chain broken (prev_hash does not match seq {seq - 1})")
        prev_hash = digest
        expected_seq = seq + 1
    if expected_seq <= last_seq:
        problems.append(f"seq {_ranges(range(expected_seq, last_seq + 1))}: missing (deleted) at the end")
    elif expected_seq - 1 > last_seq:
        problems.append(f"seq {last_seq + 1}..{expected_seq - 1}: beyond the recorded last seq (inserted)")
    elif last_seq and prev_hash != meta.get("last_hash"):
        problems.append(f"seq {last_seq}: hash differs from the recorded last hash (replaced)")
    if final_key is not None:
        want = public_key_from(final_key)
        if public_raw(want) != public_raw(pub):
            problems.append(
                f"the chain ends with key {key_id_of(public_raw(pub))} in force, but the journal signs with"
                f" {key_id_of(public_raw(want))} (a key replaced without an announced rotation)"
            )
    return problems


def verify_file(path: Path, public_key: str | None = None) -> list[str]:
    """Open a journal read-only and verify it (for ``edgectl verify``)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise StorageError(f"{path}: cannot open: {err}") from err
    try:
        return verify_db(db, public_key)
    except (sqlite3.Error, KeyError) as err:
        raise StorageError(f"{path}: not a journal: {err}") from err
    finally:
        db.close()


def _ranges(r: range) -> str:
    seqs = list(r)
    if len(seqs) == 1:
        return str(seqs[0])
    return f"{seqs[0]}..{seqs[-1]}"
