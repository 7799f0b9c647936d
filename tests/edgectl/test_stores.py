"""``outbox``, ``outbox drain``, ``verify``, ``events tail``, ``status`` and ``support-bundle`` against real
journals, a real HQ subscriber on a real broker, and a real running controller."""

from __future__ import annotations

import json
import sqlite3
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.scale.simulator import ScaleSimulator
from edge.broker import BrokerHandle, free_port
from edge.config import load_config
from edge.diag.schema import validate
from edge.evidence import EvidenceStore
from edge.hq.store import SqliteEventStore
from edge.hq.subscriber import HQSubscriber
from tests.edgectl.conftest import RunCli, check_snapshot, event_payload, make_journal, wait_until, write_config


def _cfg(tmp_path: Path, post_id: str = "post-stores", broker: tuple[str, int] | None = None,
         camera: str = "synthetic://lane1?seed=1&fps=5", scale: tuple[str, str] | None = None) -> Path:
    return write_config(tmp_path / "post.toml", post_id=post_id, data_dir=tmp_path / "data",
                        broker=broker or ("127.0.0.1", free_port()),
                        lanes=[{"id": "lane1", "cameras": [("front", camera)], "scale": scale}])


def test_outbox_then_drain_to_a_real_hq(tmp_path: Path, run_cli: RunCli, mqtt_broker: BrokerHandle,
                                        unique_id: Callable[[str], str]) -> None:
    post = unique_id("post")
    cfg_path = _cfg(tmp_path, post, broker=(mqtt_broker.host, mqtt_broker.port))
    make_journal(load_config(cfg_path), 3).close()
    r = run_cli("outbox", "--json", "--config", cfg_path)
    assert r.rc == 0
    o = json.loads(r.out)
    validate("outbox", o)
    assert (o["backlog"], o["last_seq"], o["last_ack"], o["oldest_undelivered"]["seq"]) == (3, 3, 0, 1)
    r = run_cli("outbox", "--config", cfg_path, "--max-age", "0")  # "too old" at once: the check fails
    assert r.rc == 1
    check_snapshot("outbox_backlog.txt", r.out.replace(post, "<POST>"), tmp_path)
    hq = HQSubscriber(mqtt_broker.host, mqtt_broker.port, SqliteEventStore(tmp_path / "hq.sqlite"),
                      share_group=unique_id("grp"), trust_on_first_use=True, client_id=unique_id("hq"))
    hq.start(wait_s=10)
    try:
        r = run_cli("outbox", "drain", "--json", "--config", cfg_path, "--timeout", "20")
    finally:
        hq.stop()
    assert r.rc == 0, r.out + r.err
    d = json.loads(r.out)
    validate("outbox_drain", d)
    assert (d["backlog_before"], d["backlog_after"], d["delivered"], d["last_ack"]) == (3, 0, 3, 3)
    r = run_cli("outbox", "--json", "--config", cfg_path)
    o = json.loads(r.out)
    assert o["backlog"] == 0 and o["last_ack"] == 3 and o["last_ack_at"] is not None


def test_drain_without_hq_fails_and_says_why(tmp_path: Path, run_cli: RunCli) -> None:
    cfg_path = _cfg(tmp_path)
    make_journal(load_config(cfg_path), 1).close()
    r = run_cli("outbox", "drain", "--config", cfg_path, "--timeout", "1.5")
    assert r.rc == 1 and "delivered 0 of 1" in r.out and "cannot connect to 127.0.0.1:" in r.out


def test_verify_finds_a_changed_event(tmp_path: Path, run_cli: RunCli) -> None:
    cfg_path = _cfg(tmp_path)
    cfg = load_config(cfg_path)
    assert run_cli("verify", "--config", cfg_path).rc == 2  # nothing there yet
    make_journal(cfg, 3).close()
    r = run_cli("verify", "--json", "--config", cfg_path)
    assert r.rc == 0
    v = json.loads(r.out)
    validate("verify", v)
    assert v["journal"]["records"] == 3 and v["journal"]["problems"] == [] and not v["weighings"]["present"]
    db = sqlite3.connect(tmp_path / "data" / "journal.sqlite")
    db.execute("UPDATE events SET payload = replace(payload, '01A101BC', '01A999BC') WHERE seq = 2")
    db.commit()
    db.close()
    r = run_cli("verify", "--config", cfg_path)
    assert r.rc == 1
    check_snapshot("verify_changed_event.txt", r.out, tmp_path)


def test_events_tail_follows_new_events_and_saves_crops(tmp_path: Path, run_cli: RunCli) -> None:
    cfg_path = _cfg(tmp_path)
    cfg = load_config(cfg_path)
    journal = make_journal(cfg, 2)
    store = EvidenceStore(tmp_path / "data" / "evidence", quota_bytes=10**8, retention_s=3600)
    crop = store.put_bytes(b"\xff\xd8 not really a jpeg, but the bytes the post saw \xff\xd9")

    def later() -> None:
        time.sleep(0.8)  # after the tail has started: only this one is new
        journal.append(event_payload("lane1", "10B777CD", crop_sha256=crop))

    t = threading.Thread(target=later)
    t.start()
    try:
        r = run_cli("events", "tail", "--json", "--config", cfg_path, "--count", "1", "--seconds", "20",
                    "--crops", tmp_path / "crops")
    finally:
        t.join()
        journal.close()
    assert r.rc == 0
    lines = [json.loads(x) for x in r.out.splitlines()]
    assert len(lines) == 1
    validate("event_line", lines[0])
    assert lines[0]["seq"] == 3 and lines[0]["plate"]["text"] == "10B777CD"
    saved = Path(lines[0]["crop_file"])
    assert saved.parent == tmp_path / "crops" and saved.read_bytes() == store.get(crop)
    r = run_cli("events", "tail", "--config", cfg_path, "--from-start", "--count", "3")
    assert r.rc == 0
    assert [ln.split()[1] for ln in r.out.splitlines()] == ["1", "2", "3"]
    assert "10B777CD (UZ, 0.97)  gross 23450.0 kg" in r.out


def test_status_reads_the_running_controller(tmp_path: Path, run_cli: RunCli,
                                             scale_sim: Callable[..., ScaleSimulator]) -> None:
    from edge.controller import PostController

    sim = scale_sim("ascii", weight=0.0)
    cfg_path = _cfg(tmp_path, scale=(sim.url, "ascii"))
    r = run_cli("status", "--config", cfg_path)
    assert r.rc == 1 and "NOT RUNNING" in r.out and "not running" in r.out
    controller = PostController(load_config(cfg_path), connect=False)
    controller.start()
    try:
        status_file = tmp_path / "data" / "status.json"

        def live() -> bool:
            text = status_file.read_text() if status_file.exists() else ""
            return '"streaming"' in text and '"connected": true' in text

        assert wait_until(live, timeout=20)
        r = run_cli("status", "--json", "--config", cfg_path)
        assert r.rc == 0, r.out
        s = json.loads(r.out)
        validate("status", s)
        assert s["running"] and s["status"]["post_id"] == "post-stores"
        r = run_cli("status", "--config", cfg_path)
        assert r.rc == 0 and "lane1  camera front  streaming" in r.out and "scale         connected" in r.out
        # The doctor takes devices from the controller instead of opening them a second time.
        r = run_cli("doctor", "--json", "--config", cfg_path, "--check", "controller", "--check", "camera",
                    "--check", "scale")
        rep = json.loads(r.out)
        assert r.rc == 0, r.out
        assert all("(controller)" in c["reason"] for c in rep["checks"][1:])
        # ...and a technician's scale watch does not steal the lane's bytes.
        r = run_cli("scale", "watch", "--config", cfg_path, "--count", "1")
        assert r.rc == 2 and "the running controller is reading" in r.err
    finally:
        controller.stop()
    r = run_cli("status", "--config", cfg_path, "--stale-after", "0")
    assert r.rc == 1 and "last written" in r.out


def test_support_bundle_redacts_secrets(tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_path = _cfg(tmp_path, camera="rtsp://admin:hunter2@127.0.0.1:9/stream")
    make_journal(load_config(cfg_path), 2).close()
    out = tmp_path / "bundle.tar.gz"
    r = run_cli("support-bundle", "--json", "--config", cfg_path, "--output", out)
    assert r.rc == 0, r.err
    b = json.loads(r.out)
    validate("support_bundle", b)
    with tarfile.open(out) as tar:
        names = {m.name.split("/", 1)[1]: m for m in tar.getmembers()}
        assert {"config/post.toml", "config/effective.json", "versions.json", "doctor.json", "events.jsonl",
                "outbox.json"} <= set(names)
        assert any(n.startswith("logs/") for n in names)
        texts = {n: tar.extractfile(m).read().decode() for n, m in names.items()}  # type: ignore[union-attr]
    assert not any("hunter2" in t for t in texts.values())
    assert "rtsp://***@127.0.0.1:9/stream" in texts["config/post.toml"]
    assert not any("PRIVATE KEY" in t for t in texts.values())
    doctor = json.loads(texts["doctor.json"])
    validate("doctor", doctor)
    assert {c["name"]: c["status"] for c in doctor["checks"]}["camera:lane1/front"] == "fail"
    assert len(texts["events.jsonl"].splitlines()) == 2
    assert json.loads(texts["versions.json"])["packages"]["paho-mqtt"]
