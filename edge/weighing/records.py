"""Append-only weighing records in the spirit of WELMEC 7.2 "alibi memory".

Every weighing the post publishes is first written here, with everything needed to reconstruct it
alone (scale, protocol, the raw indicator frames, gross/tare/net and unit, the stability evidence,
time, lane, software version). Records are never changed: SQL triggers refuse UPDATE and DELETE, and
each record carries a sequence number and the SHA-256 of its canonical JSON, which includes the
previous record's hash. :meth:`WeighingRecords.verify` walks the chain and names every record that
was changed, inserted or removed. Optionally the hash is an HMAC under a key kept outside the
database, so that someone who can write the file cannot simply recompute the chain.

Removal of the newest records leaves a valid shorter chain; it is caught by comparing with a head
held elsewhere (``verify(expected_head=...)``; the record id that travels in each vehicle event to
HQ embeds the sequence number and hash prefix for exactly this).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from drivers.scale.weighing import Weighing
from edge.errors import IntegrityError, StorageError

SCHEMA = "customs.weighing_record/1"
GENESIS = "0" * 64

_DDL = """
CREATE TABLE IF NOT EXISTS weighing_records (
    seq       INTEGER PRIMARY KEY,
    record_id TEXT NOT NULL UNIQUE,
    body      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS weighing_records_no_update BEFORE UPDATE ON weighing_records
BEGIN SELECT RAISE(ABORT, 'weighing records are append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS weighing_records_no_delete BEFORE DELETE ON weighing_records
BEGIN SELECT RAISE(ABORT, 'weighing records are append-only: DELETE refused'); END;
"""


def canonical(obj: Any) -> str:
    """One spelling per value: sorted keys, no spaces, so the hash is reproducible anywhere."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def make_record_id(seq: int, digest: str) -> str:
    return f"wr-{seq:08d}-{digest[:12]}"


class WeighingRecords:
    """The store at ``path``; safe to share between threads of one process."""

    def __init__(self, path: str | Path, hmac_key: bytes | None = None) -> None:
        self.path = Path(path)
        self._key = hmac_key
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_DDL)
        except (sqlite3.Error, OSError) as err:
            raise StorageError(f"cannot open weighing records {self.path}: {err}") from err

    # ------------------------------------------------------------------ writing

    def _digest(self, body_text: str) -> str:
        data = body_text.encode()
        if self._key is not None:
            return hmac.new(self._key, data, hashlib.sha256).hexdigest()
        return hashlib.sha256(data).hexdigest()

    def append(self, weighing: Weighing, lane_id: str, software_version: str) -> str:
        """Store ``weighing`` durably (fsync'd before returning) and return its record id."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    row = self._db.execute(
                        "SELECT seq, hash FROM weighing_records ORDER BY seq DESC LIMIT 1"
                    ).fetchone()
                    seq = 1 if row is None else int(row[0]) + 1
                    prev = GENESIS if row is None else str(row[1])
                    body = {
                        "schema": SCHEMA,
                        "seq": seq,
                        "prev_hash": prev,
                        "alg": "hmac-sha256" if self._key is not None else "sha256",
                        "recorded_at": time.time(),
                        "lane_id": lane_id,
                        "scale_id": weighing.scale_id,
                        "protocol": weighing.protocol,
                        "software_version": software_version,
                        "weighing": weighing.as_dict(frames=True),
                    }
                    text = canonical(body)
                    digest = self._digest(text)
                    record_id = make_record_id(seq, digest)
                    self._db.execute(
                        "INSERT INTO weighing_records (seq, record_id, body, prev_hash, hash) VALUES (?,?,?,?,?)",
                        (seq, record_id, text, prev, digest),
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, ValueError) as err:
                raise StorageError(f"cannot append weighing record to {self.path}: {err}") from err
        return record_id

    # ------------------------------------------------------------------ reading

    def get(self, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM weighing_records WHERE record_id = ?", (record_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def records(self, since_seq: int = 0) -> Iterator[dict[str, Any]]:
        """Every record after ``since_seq`` (for export to HQ or an inspector), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT record_id, body, hash FROM weighing_records WHERE seq > ? ORDER BY seq", (since_seq,)
            ).fetchall()
        for record_id, body, digest in rows:
            yield {"record_id": record_id, "hash": digest, **json.loads(body)}

    def head(self) -> tuple[int, str] | None:
        """(seq, hash) of the newest record: keep it elsewhere to detect removal of the newest records."""
        with self._lock:
            row = self._db.execute("SELECT seq, hash FROM weighing_records ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM weighing_records").fetchone()[0])

    def verify(self, expected_head: tuple[int, str] | None = None) -> list[str]:
        """Walk the chain; return one line per problem (empty: intact)."""
        problems: list[str] = []
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT seq, record_id, body, prev_hash, hash FROM weighing_records ORDER BY seq"
                ).fetchall()
            except sqlite3.Error as err:
                return [f"cannot read weighing records: {err}"]
        prev = GENESIS
        expected = 1
        for seq, record_id, text, prev_col, digest in rows:
            where = f"record seq {seq} ({record_id})"
            if seq > expected:
                gap = f"seq {expected}" if seq == expected + 1 else f"seq {expected}..{seq - 1}"
                problems.append(f"{gap} missing before {where}: records deleted")
            try:
                body = json.loads(text)
            except (TypeError, ValueError):
                problems.append(f"{where}: body is not valid JSON: changed")
                prev, expected = digest, seq + 1
                continue
            if not isinstance(body, dict):
                problems.append(f"{where}: body is not a record: changed")
                prev, expected = digest, seq + 1
                continue
            if self._digest(text) != digest or canonical(body) != text:
                problems.append(f"{where}: content does not match its hash: changed")
            if body.get("seq") != seq:
                problems.append(f"{where}: body says seq {body.get('seq')}: moved or inserted")
            if body.get("prev_hash") != prev_col or prev_col != prev:
                problems.append(
                    f"{where}: previous-hash link broken: a record before it was inserted, removed or changed"
                )
            if record_id != make_record_id(seq, digest):
                problems.append(f"{where}: record id does not match its seq and hash: changed")
            prev, expected = digest, seq + 1
        if expected_head is not None:
            seq, digest = expected_head
            have = {r[0]: r[4] for r in rows}
            if seq not in have:
                problems.append(f"record seq {seq} (last known head) is missing: newest records deleted")
            elif have[seq] != digest:
                problems.append(f"record seq {seq} does not match the last known head hash: changed")
        return problems

    def check(self, expected_head: tuple[int, str] | None = None) -> None:
        """Like :meth:`verify`, raising :class:`IntegrityError` listing every problem."""
        problems = self.verify(expected_head)
        if problems:
            raise IntegrityError(f"weighing records {self.path}: " + "; ".join(problems))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> WeighingRecords:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
