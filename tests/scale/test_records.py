"""Weighing records: append-only at the SQL level, and any change, insertion or deletion detected."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from drivers.scale.weighing import Weighing
from edge.errors import IntegrityError
from edge.weighing.records import WeighingRecords, canonical


def weighing(gross: float, t: float = 1_790_000_000.0) -> Weighing:
    return Weighing(
        gross=gross, tare=0.0, net=gross, unit="kg", taken_at=t, stable_span_s=1.52, spread=10.0,
        readings=(b"ST,GS,+0012340kg\r\n", b"ST,GS,+0012350kg\r\n"), scale_id="lane1-scale",
        protocol="ascii", window_start=t - 1.52, stable_window_s=1.5, tolerance=20.0, zero_before=0.0,
    )


def fill(path: Path, n: int = 5) -> list[str]:
    with WeighingRecords(path) as rec:
        return [rec.append(weighing(10000.0 + i * 10), "lane1", "0.1.0") for i in range(n)]


def raw_db(path: Path) -> sqlite3.Connection:
    """A tamperer with file access: triggers dropped first, as they would have to."""
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("DROP TRIGGER weighing_records_no_update")
    db.execute("DROP TRIGGER weighing_records_no_delete")
    return db


def test_append_and_reconstruct_alone(tmp_path: Path) -> None:
    ids = fill(tmp_path / "w.sqlite")
    with WeighingRecords(tmp_path / "w.sqlite") as rec:
        assert rec.verify() == [] and rec.count() == 5
        assert len(set(ids)) == 5 and ids[0].startswith("wr-00000001-")
        body = rec.get(ids[2])
        assert body is not None
        assert body["seq"] == 3 and body["lane_id"] == "lane1" and body["software_version"] == "0.1.0"
        assert body["scale_id"] == "lane1-scale" and body["protocol"] == "ascii"
        w = body["weighing"]
        assert (w["gross"], w["tare"], w["net"], w["unit"]) == (10020.0, 0.0, 10020.0, "kg")
        assert bytes.fromhex(w["readings"][0]) == b"ST,GS,+0012340kg\r\n"
        assert (w["stable_span_s"], w["spread"], w["stable_window_s"], w["tolerance"]) == (1.52, 10.0, 1.5, 20.0)
        assert rec.head() == (5, next(r["hash"] for r in rec.records(4)))
        assert [r["seq"] for r in rec.records(since_seq=3)] == [4, 5]


def test_sql_refuses_update_and_delete(tmp_path: Path) -> None:
    fill(tmp_path / "w.sqlite", 2)
    db = sqlite3.connect(str(tmp_path / "w.sqlite"))
    with pytest.raises(sqlite3.DatabaseError, match="append-only: UPDATE refused"):
        db.execute("UPDATE weighing_records SET body = '{}' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only: DELETE refused"):
        db.execute("DELETE FROM weighing_records WHERE seq = 2")
    db.close()
    with WeighingRecords(tmp_path / "w.sqlite") as rec:
        assert rec.verify() == []


def test_changed_record_is_named(tmp_path: Path) -> None:
    ids = fill(tmp_path / "w.sqlite")
    db = raw_db(tmp_path / "w.sqlite")
    body = json.loads(db.execute("SELECT body FROM weighing_records WHERE seq = 3").fetchone()[0])
    body["weighing"]["gross"] = 9000.0
    db.execute("UPDATE weighing_records SET body = ? WHERE seq = 3", (canonical(body),))
    db.close()
    with WeighingRecords(tmp_path / "w.sqlite") as rec:
        problems = rec.verify()
        assert problems == [f"record seq 3 ({ids[2]}): content does not match its hash: changed"]
        with pytest.raises(IntegrityError, match="seq 3"):
            rec.check()


def test_changed_and_rehashed_record_breaks_the_chain(tmp_path: Path) -> None:
    """Recomputing the changed record's own hash is not enough: the next record's link breaks."""
    fill(tmp_path / "w.sqlite")
    db = raw_db(tmp_path / "w.sqlite")
    body = json.loads(db.execute("SELECT body FROM weighing_records WHERE seq = 2").fetchone()[0])
    body["weighing"]["gross"] = 1.0
    import hashlib

    text = canonical(body)
    digest = hashlib.sha256(text.encode()).hexdigest()
    db.execute("UPDATE weighing_records SET body = ?, hash = ?, record_id = ? WHERE seq = 2",
               (text, digest, f"wr-00000002-{digest[:12]}"))
    db.close()
    with WeighingRecords(tmp_path / "w.sqlite") as rec:
        problems = rec.verify()
        assert len(problems) == 1 and problems[0].startswith("record seq 3 ") and "link broken" in problems[0]


def test_deleted_and_inserted_records_are_named(tmp_path: Path) -> None:
    fill(tmp_path / "w.sqlite", 6)
    with WeighingRecords(tmp_path / "w.sqlite") as rec:
        head = rec.head()
    db = raw_db(tmp_path / "w.sqlite")
    db.execute("DELETE FROM weighing_records WHERE seq IN (2, 3)")
    db.execute("DELETE FROM weighing_records WHERE seq = 6")
    row = db.execute("SELECT record_id, body, prev_hash, hash FROM weighing_records WHERE seq = 5").fetchone()
    db.execute("INSERT INTO weighing_records VALUES (?,?,?,?,?)", (2, "wr-00000002-forged", *row[1:]))
    db.close()
    with WeighingRecords(tmp_path / "w.sqlite") as rec:
        problems = rec.verify(expected_head=head)
    text = "\n".join(problems)
    assert "record seq 2 (wr-00000002-forged): body says seq 5" in text
    assert "seq 3 missing before record seq 4" in text
    assert "record seq 4" in text and "link broken" in text
    assert "record seq 6 (last known head) is missing: newest records deleted" in text


def test_hmac_key_needed_to_verify(tmp_path: Path) -> None:
    with WeighingRecords(tmp_path / "w.sqlite", hmac_key=b"k" * 32) as rec:
        rec.append(weighing(12000.0), "lane1", "0.1.0")
        assert rec.verify() == []
    with WeighingRecords(tmp_path / "w.sqlite", hmac_key=b"x" * 32) as rec:
        assert "does not match its hash" in rec.verify()[0]


def test_records_survive_reopen_and_continue_the_chain(tmp_path: Path) -> None:
    fill(tmp_path / "w.sqlite", 2)
    ids = fill(tmp_path / "w.sqlite", 2)
    assert ids[0].startswith("wr-00000003-")
    with WeighingRecords(tmp_path / "w.sqlite") as rec:
        assert rec.verify() == [] and rec.count() == 4
