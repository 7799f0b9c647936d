"""The controller killed with SIGKILL mid-publishing, several times: nothing committed is ever lost."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from edge.broker import BrokerHandle
from edge.hq.store import SqliteEventStore
from tests.conftest import WaitFor
from tests.delivery.harness import make_hq

ROOT = Path(__file__).resolve().parents[2]


def _spawn(data: Path, post_id: str, broker: BrokerHandle, mode: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.delivery.publisher_proc", str(data), post_id, broker.host,
         str(broker.port), mode],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env,
    )


def _status(store: SqliteEventStore, post_id: str) -> str | None:
    return next((p.status for p in store.posts() if p.post_id == post_id), None)


def test_sigkill_during_publishing_loses_no_committed_event(
    tmp_path: Path, mqtt_broker: BrokerHandle, unique_id: Callable[[str], str], wait_for: WaitFor
) -> None:
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    post_id = unique_id("post")
    data = tmp_path / post_id
    hq = make_hq(tmp_path, mqtt_broker.host, mqtt_broker.port, unique_id("g"))
    hq.sub.start()
    printed: list[int] = []
    try:
        for _ in range(4):
            proc = _spawn(data, post_id, mqtt_broker, "produce")
            try:
                target = rng.randint(5, 150)  # a random point: after this many committed events
                assert proc.stdout is not None
                for n, line in enumerate(proc.stdout, 1):
                    printed.append(int(line))
                    if n >= target:
                        break
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                if proc.stdout is not None:
                    proc.stdout.close()
            db = sqlite3.connect(data / "journal.sqlite")
            try:
                assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                stored = {r[0] for r in db.execute("SELECT seq FROM events")}
                last = int(db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()[0])
            finally:
                db.close()
            # Every seq the process reported as committed is in the journal, with no hole.
            assert set(printed) <= stored
            assert stored == set(range(1, last + 1))
            # The broker published the killed post's last will: HQ knows it is offline.
            wait_for(lambda: _status(hq.store, post_id) == "offline", what="the last will at HQ")
        drain = _spawn(data, post_id, mqtt_broker, "drain")
        assert drain.wait(90) == 0
        if drain.stdout is not None:
            drain.stdout.close()
        db = sqlite3.connect(data / "journal.sqlite")
        last = int(db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()[0])
        db.close()
        wait_for(lambda: hq.store.contiguous_seq(post_id) == last, what=f"HQ holding all {last} events")
        events = hq.store.events_in_order(post_id)
        assert [e["seq"] for e in events] == list(range(1, last + 1))
        assert set(printed) <= {e["seq"] for e in events}
        assert hq.store.problems(post_id) == []
        assert hq.store.integrity_check() == "ok"
    finally:
        hq.close()
