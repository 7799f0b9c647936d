"""The post's durable state seen from outside the controller: journal, weighing records, status file.

Everything here opens the databases read-only: a diagnostic must never create a journal where none
was, nor take a write lock the running controller needs. The one exception is :func:`drain`, which
runs the real uplink over the journal and may only be used while the controller is stopped.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edge.config import PostConfig
from edge.diag.result import CheckResult
from edge.errors import IntegrityError, StorageError
from edge.events import iso_time

STATUS_STALE_S = 10.0
"""The controller rewrites status.json every 2 s; older than this, it is not running (or hung)."""


def paths(cfg: PostConfig) -> dict[str, Path]:
    d = Path(cfg.storage.data_dir)
    return {"data_dir": d, "journal": d / "journal.sqlite", "weighings": d / "weighings.sqlite",
            "key": d / "keys" / "post_ed25519.pem", "evidence": d / "evidence", "status": d / "status.json"}


def _ro(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise StorageError(f"{path} does not exist (the controller has not run on this machine yet?)")
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as err:
        raise StorageError(f"{path}: cannot open read-only: {err}") from err


def outbox_summary(cfg: PostConfig) -> dict[str, Any]:
    """Backlog, the oldest undelivered event and HQ's last acknowledgement, from the journal."""
    path = paths(cfg)["journal"]
    db = _ro(path)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        last_ack = int(meta.get("last_ack", "0"))
        count, oldest_seq = db.execute(
            "SELECT COUNT(*), MIN(seq) FROM events WHERE seq > ? AND acked_at IS NULL", (last_ack,)).fetchone()
        oldest = None
        if oldest_seq is not None:
            row = db.execute("SELECT seq, event_id, lane_id, created_at, published_at FROM events WHERE seq = ?",
                             (oldest_seq,)).fetchone()
            oldest = {"seq": int(row[0]), "event_id": row[1], "lane_id": row[2], "created_at": iso_time(row[3]),
                      "age_s": round(max(0.0, time.time() - float(row[3])), 1), "published": row[4] is not None}
        acked_at = db.execute("SELECT MAX(acked_at) FROM events").fetchone()[0]
        published = db.execute("SELECT COUNT(*) FROM events WHERE seq > ? AND acked_at IS NULL AND "
                               "published_at IS NOT NULL", (last_ack,)).fetchone()[0]
    except (sqlite3.Error, KeyError, ValueError) as err:
        raise StorageError(f"{path}: not a readable journal: {err}") from err
    finally:
        db.close()
    return {
        "journal": str(path), "post_id": meta.get("post_id"), "last_seq": int(meta.get("last_seq", "0")),
        "last_ack": last_ack, "last_ack_at": iso_time(acked_at) if acked_at else None,
        "backlog": int(count), "published_unacked": int(published), "oldest_undelivered": oldest,
    }


def verify_stores(cfg: PostConfig) -> dict[str, Any]:
    """The journal's chain and signatures, and the weighing records' chain: one problem per line."""
    from edge.outbox.journal import verify_file

    p = paths(cfg)
    out: dict[str, Any] = {}
    if p["journal"].is_file():
        try:
            problems = verify_file(p["journal"])
            db = _ro(p["journal"])
            try:
                n = int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
            finally:
                db.close()
            out["journal"] = {"path": str(p["journal"]), "present": True, "records": n, "problems": problems}
        except StorageError as err:
            out["journal"] = {"path": str(p["journal"]), "present": True, "records": 0, "problems": [str(err)]}
    else:
        out["journal"] = {"path": str(p["journal"]), "present": False, "records": 0, "problems": []}
    if p["weighings"].is_file():
        from edge.weighing.records import WeighingRecords

        try:
            with WeighingRecords(p["weighings"]) as rec:
                out["weighings"] = {"path": str(p["weighings"]), "present": True, "records": rec.count(),
                                    "problems": rec.verify()}
        except StorageError as err:
            out["weighings"] = {"path": str(p["weighings"]), "present": True, "records": 0, "problems": [str(err)]}
    else:
        out["weighings"] = {"path": str(p["weighings"]), "present": False, "records": 0, "problems": []}
    out["ok"] = not any(v["problems"] for v in out.values() if isinstance(v, dict))
    return out


def read_status(cfg: PostConfig, stale_after_s: float = STATUS_STALE_S) -> dict[str, Any]:
    """The controller's own status file: ``running`` when it was written in the last few seconds."""
    path = paths(cfg)["status"]
    out: dict[str, Any] = {"path": str(path), "running": False, "age_s": None, "status": None, "reason": ""}
    try:
        age = time.time() - path.stat().st_mtime
        data = json.loads(path.read_text())
    except FileNotFoundError:
        out["reason"] = f"no {path}: the controller is not running (or has never run with this data_dir)"
        return out
    except (OSError, ValueError) as err:
        out["reason"] = f"cannot read {path}: {err}"
        return out
    out["age_s"] = round(age, 1)
    out["status"] = data
    if age > stale_after_s:
        out["reason"] = f"{path} was last written {age:.0f} s ago: the controller is not running (or hangs)"
        return out
    out["running"] = True
    out["reason"] = f"running (pid {data.get('pid')}, up {data.get('uptime_s')} s)"
    return out


def live_devices(status: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """``camera:lane/cam`` and ``scale:lane`` -> the controller's health dict for that device."""
    out: dict[str, dict[str, Any]] = {}
    if not status:
        return out
    for lane in status.get("lanes") or []:
        lid = lane.get("lane")
        for cam in lane.get("cameras") or []:
            out[f"camera:{lid}/{cam.get('name')}"] = cam
        if lane.get("scale") is not None:
            out[f"scale:{lid}"] = lane["scale"]
    return out


def events_after(cfg: PostConfig, after_seq: int, limit: int = 100) -> list[dict[str, Any]]:
    """Committed events with seq > ``after_seq``, oldest first (each the payload HQ receives)."""
    db = _ro(paths(cfg)["journal"])
    try:
        rows = db.execute("SELECT payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                          (after_seq, limit)).fetchall()
    except sqlite3.Error as err:
        raise StorageError(f"cannot read the journal: {err}") from err
    finally:
        db.close()
    return [json.loads(r[0]) for r in rows]


def last_seq(cfg: PostConfig) -> int:
    db = _ro(paths(cfg)["journal"])
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
    except sqlite3.Error as err:
        raise StorageError(f"cannot read the journal: {err}") from err
    finally:
        db.close()
    return int(row[0]) if row else 0


def tail(cfg: PostConfig, *, after_seq: int | None = None, poll_s: float = 0.5,
         stop: Callable[[], bool] = lambda: False) -> Iterator[dict[str, Any]]:
    """New committed events as the controller makes them (polling the journal, read-only)."""
    path = paths(cfg)["journal"]
    while not path.is_file():
        if stop():
            return
        time.sleep(poll_s)
    cursor = last_seq(cfg) if after_seq is None else after_seq
    while not stop():
        batch = events_after(cfg, cursor)
        for ev in batch:
            cursor = int(ev["seq"])
            yield ev
        if not batch:
            time.sleep(poll_s)


def save_crop(cfg: PostConfig, event: dict[str, Any], out_dir: Path) -> Path | None:
    """Copy the event's plate crop from the evidence store to ``out_dir``, checked against its hash."""
    plate = event.get("plate") or {}
    digest = plate.get("crop_sha256")
    if not digest:
        return None
    src = paths(cfg)["evidence"] / digest[:2] / f"{digest}.jpg"
    try:
        data = src.read_bytes()
    except FileNotFoundError:
        return None
    if hashlib.sha256(data).hexdigest() != digest:
        raise IntegrityError(f"evidence image {src} does not match its hash (changed on disk)")
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / f"{int(event.get('seq', 0)):08d}-{plate.get('text') or 'plate'}.jpg"
    dst.write_bytes(data)
    return dst


def storage_check(cfg: PostConfig) -> CheckResult:
    """The data folder exists, is writable and has room for the quota."""
    d = Path(cfg.storage.data_dir)
    probe_dir = d if d.exists() else d.parent
    if not probe_dir.exists():
        return CheckResult("storage", "fail", f"{d} and its parent do not exist",
                           f"create it: sudo install -d -o customs-edge {d}")
    try:
        usage = shutil.disk_usage(probe_dir)
    except OSError as err:
        return CheckResult("storage", "fail", f"cannot stat {probe_dir}: {err.strerror}", "check the mount")
    details = {"data_dir": str(d), "free_mb": usage.free // 2**20, "quota_mb": cfg.storage.quota_mb}
    test = probe_dir / f".edgectl-write-test-{time.monotonic_ns()}"
    try:
        test.write_bytes(b"x")
        test.unlink()
    except OSError as err:
        return CheckResult("storage", "fail", f"{probe_dir} is not writable: {err.strerror}",
                           "run edgectl as the service user, or fix the folder's owner", details=details)
    free_mb = usage.free // 2**20
    if not d.exists():
        return CheckResult("storage", "warn", f"{d} does not exist yet ({free_mb} MB free on its disk)",
                           "the controller creates it on first start", details=details)
    if free_mb < 1024:
        return CheckResult("storage", "fail", f"only {free_mb} MB free on {d}'s disk",
                           "free disk space; events are never evicted to make room", details=details)
    if free_mb < cfg.storage.quota_mb:
        return CheckResult("storage", "warn", f"{free_mb} MB free on {d}'s disk, less than the quota "
                                              f"({cfg.storage.quota_mb} MB)",
                           "add disk or lower storage.quota_mb", details=details)
    return CheckResult("storage", "pass", f"{d} writable, {free_mb} MB free", details=details)


def journal_check(cfg: PostConfig) -> CheckResult:
    """Integrity of the journal and the weighing records, and how far HQ is behind."""
    v = verify_stores(cfg)
    j, w = v["journal"], v["weighings"]
    details: dict[str, Any] = {"verify": v}
    if j["problems"] or w["problems"]:
        first = (j["problems"] or w["problems"])[0]
        n = len(j["problems"]) + len(w["problems"])
        return CheckResult("journal", "fail", f"integrity: {first}" + (f" (+{n - 1} more)" if n > 1 else ""),
                           "keep the files for HQ (`edgectl support-bundle`); run `edgectl verify` for the list",
                           details=details)
    if not j["present"]:
        return CheckResult("journal", "warn", "no journal yet (the controller has not run)",
                           "start the service: systemctl start customs-edge", details=details)
    o = outbox_summary(cfg)
    details["outbox"] = o
    text = f"{j['records']} events, {w['records']} weighings intact; backlog {o['backlog']}"
    oldest = o["oldest_undelivered"]
    if oldest is not None and oldest["age_s"] > 3600:
        return CheckResult("journal", "warn", f"{text}, oldest undelivered {oldest['age_s'] / 3600:.1f} h old",
                           "HQ has not acknowledged for over an hour: run `edgectl mqtt check`", details=details)
    return CheckResult("journal", "pass", text, details=details)


def drain(cfg: PostConfig, *, timeout_s: float = 60.0,
          progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Deliver the backlog now with the post's own uplink; returns once HQ acknowledged all or at timeout.

    Only while the controller is stopped: two uplinks with one client id would keep kicking each
    other off the broker.
    """
    from edge.outbox.journal import Journal
    from edge.outbox.signing import PostKey
    from edge.outbox.uplink import Uplink

    p = paths(cfg)
    if not p["journal"].is_file() or not p["key"].is_file():
        raise StorageError(f"no journal or key under {p['data_dir']}: nothing to drain")
    key = PostKey.load_or_create(p["key"])
    journal = Journal(p["journal"], key, cfg.post.id)
    before = journal.backlog()[0]
    uplink = Uplink(cfg.broker, cfg.post.id, journal)
    t0 = time.monotonic()
    try:
        uplink.start()
        while True:
            st = uplink.status()
            if progress is not None:
                progress(st)
            if st["backlog"] == 0 or time.monotonic() - t0 > timeout_s:
                break
            time.sleep(0.2)
    finally:
        uplink.stop()
        st = uplink.status()
        journal.close()
    return {"post_id": cfg.post.id, "backlog_before": before, "backlog_after": st["backlog"],
            "delivered": before - st["backlog"], "last_ack": st["last_ack"], "connected": st["connected"],
            "last_error": st["last_error"], "seconds": round(time.monotonic() - t0, 2),
            "ok": st["backlog"] == 0}
