"""The post controller: builds lanes, the plate reader, the journal and the uplink from one config.

The order of work for every crossing is the project's central promise: the lane assembles the event,
the journal commits it (fsync) and only then is anyone told it exists (uplink, local listeners).
If the commit fails (disk full, I/O error) the event stays in memory and is retried; it is never
handed on uncommitted.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge import __version__
from edge.commands import CommandProcessor
from edge.config import LaneSection, PostConfig, load_config
from edge.errors import CommandError
from edge.events import VehicleEvent
from edge.evidence import EvidenceStore
from edge.lane.runtime import Lane
from edge.lane.screening import Declarations, Watchlist
from edge.outbox.journal import Journal, StoredEvent
from edge.outbox.rotation import apply_staged_rotation
from edge.outbox.uplink import Uplink
from edge.recognition.reader import PlateReader
from edge.weighing.records import WeighingRecords

log = logging.getLogger(__name__)

EventListener = Callable[[StoredEvent], None]


class PostController:
    EVIDENCE_SHARE = 0.5
    """Part of the storage quota that evidence images may use; the journal and records get the rest."""
    JOURNAL_SHARE = 0.4
    TELEMETRY_EVERY_S = 10.0
    HOUSEKEEPING_EVERY_S = 60.0

    def __init__(self, cfg: PostConfig, *, connect: bool = True, config_path: Path | None = None) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.post_id = cfg.post.id
        self.data_dir = Path(cfg.storage.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # A staged next key is announced in the chain (sealed by the old key) before anything is signed.
        self.key = apply_staged_rotation(self.data_dir / "keys", self.data_dir / "journal.sqlite", self.post_id)
        self.journal = Journal(
            self.data_dir / "journal.sqlite", self.key, self.post_id,
            quota_bytes=int(cfg.storage.quota_mb * 1024 * 1024 * self.JOURNAL_SHARE),
            alarm_fraction=cfg.storage.quota_alarm_fraction,
        )
        self.records = WeighingRecords(self.data_dir / "weighings.sqlite")
        self.evidence = EvidenceStore(
            self.data_dir / "evidence",
            quota_bytes=int(cfg.storage.quota_mb * 1024 * 1024 * self.EVIDENCE_SHARE),
            retention_s=cfg.storage.retention_days * 86400,
            alarm_fraction=cfg.storage.quota_alarm_fraction,
        )
        self.reader = PlateReader(cfg.recognition)
        self._reader_lock = threading.Lock()
        self.watchlist = Watchlist(self.data_dir / "watchlist.json")
        self.declarations = Declarations(
            self.data_dir / "declarations.json",
            tolerance_pct=cfg.screening.weight_tolerance_pct,
            tolerance_kg=cfg.screening.weight_tolerance_kg,
        )
        self.commands = self._command_processor()
        self.uplink: Uplink | None = (
            Uplink(cfg.broker, self.post_id, self.journal, on_command=self.commands) if connect else None
        )
        self.lanes = [self._make_lane(lane) for lane in cfg.lanes]
        self._listeners: list[EventListener] = []
        self._unsaved: deque[VehicleEvent] = deque()
        self._unsaved_lock = threading.Lock()
        self._stop = threading.Event()
        self._status_thread: threading.Thread | None = None
        self.started_at = time.time()
        self._last_status_loop = time.monotonic()

    def _make_lane(self, lane: LaneSection) -> Lane:
        return Lane(self.post_id, lane, self.reader, self._reader_lock, self._on_event, records=self.records,
                    evidence=self.evidence.put_image,
                    screening=[self.watchlist.screen, self.declarations.screen])

    def _command_processor(self) -> CommandProcessor | None:
        """Commands from HQ, when the config names HQ's key; without it, none is accepted."""
        key = self.cfg.commands.public_key()
        if key is None:
            log.info("no HQ command key configured: commands from HQ are refused")
            return None
        return CommandProcessor(
            self.journal, key, self.post_id,
            handlers={
                "watchlist.set": self.watchlist.set,
                "watchlist.add": self.watchlist.add,
                "declarations.add": self.declarations.add,
                "config.reload": self._cmd_reload,
                "diag.run": self._cmd_diagnostics,
            },
            max_clock_skew_s=self.cfg.commands.max_clock_skew_s,
        )

    def _cmd_reload(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Validate the config file now; swap the lanes in the background (commands must return quickly)."""
        if self.config_path is None:
            raise CommandError("this controller was not started from a config file")
        new = load_config(self.config_path)  # a ConfigError is the command's answer
        if new.post.id != self.post_id or new.storage != self.cfg.storage or new.broker != self.cfg.broker:
            raise CommandError("post id, storage and broker change only with a restart")
        threading.Thread(target=self.reload_lanes, args=(new,), name="reload", daemon=True).start()
        return {"accepted": True, "lanes": [lane.id for lane in new.lanes]}

    def reload_lanes(self, new: PostConfig) -> None:
        """Stop every lane (closing its open crossing into the journal), then start the new ones."""
        log.info("reloading lanes from %s", self.config_path)
        old, self.lanes = self.lanes, []
        for lane in old:
            lane.stop()
        self.cfg = new
        self.lanes = [self._make_lane(lane) for lane in new.lanes]
        for lane in self.lanes:
            lane.start()

    def _cmd_diagnostics(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Run the checks in the background and publish the report on cmd/result when done.

        Command handlers run on the uplink's network thread; a doctor run takes seconds, and delivery
        must not stall for it.
        """
        from edge.diag import diag_command_handler

        handler = diag_command_handler(self.cfg, self.status)
        assert self.commands is not None and self.commands.current is not None
        cmd = dict(self.commands.current)
        processor = self.commands

        def run() -> None:
            try:
                answer = processor.later_result(cmd, result={"report": handler(payload)})
            except Exception as err:  # the answer says what failed instead of silence
                answer = processor.later_result(cmd, error=f"{type(err).__name__}: {err}")
            if self.uplink is not None:
                self.uplink.publish_command_result(answer)  # after the acceptance, never before it

        threading.Thread(target=run, name="diagnostics", daemon=True).start()
        return {"accepted": True, "report": "follows on cmd/result with the same id"}

    def add_listener(self, fn: EventListener) -> None:
        """Called with each event after it is committed (``edgectl events tail``, the demo)."""
        self._listeners.append(fn)

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        if self.uplink is not None:
            self.uplink.start()
        for lane in self.lanes:
            lane.start()
        self._status_thread = threading.Thread(target=self._status_loop, name="status", daemon=True)
        self._status_thread.start()
        log.info("post %s: %d lane(s) running", self.post_id, len(self.lanes))

    def stop(self) -> None:
        self._stop.set()
        for lane in self.lanes:
            lane.stop()
        self._retry_unsaved()
        if self._status_thread is not None:
            self._status_thread.join(5)
        self._write_status()
        if self.uplink is not None:
            self.uplink.stop()
        self.journal.close()
        self.records.close()
        log.info("post %s stopped", self.post_id)

    def alive(self) -> bool:
        """Every loop of the controller still turns; systemd's watchdog restarts us when one hangs."""
        status_ok = (
            self._status_thread is not None
            and self._status_thread.is_alive()
            and time.monotonic() - self._last_status_loop < 30.0
        )
        uplink_ok = self.uplink is None or self.uplink.alive()
        return status_ok and uplink_ok and all(lane.alive() for lane in self.lanes)

    # -- events -------------------------------------------------------------------------------------

    def _on_event(self, ev: VehicleEvent) -> None:
        with self._unsaved_lock:
            self._unsaved.append(ev)
        self._retry_unsaved()

    def _retry_unsaved(self) -> None:
        """Commit queued events in order; stop at the first failure so order is kept."""
        committed: list[StoredEvent] = []
        with self._unsaved_lock:
            while self._unsaved:
                ev = self._unsaved[0]
                try:
                    stored = self.journal.append(ev.payload())
                except Exception:
                    log.exception("journal commit failed; %d event(s) held in memory, will retry",
                                  len(self._unsaved))
                    break
                self._unsaved.popleft()
                committed.append(stored)
        for stored in committed:
            if self.uplink is not None:
                self.uplink.kick()
            for fn in self._listeners:
                try:
                    fn(stored)
                except Exception:
                    log.exception("event listener failed")

    # -- status -------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        count, oldest = self.journal.backlog()
        return {
            "post_id": self.post_id,
            "version": __version__,
            "pid": os.getpid(),
            "time": time.time(),
            "uptime_s": round(time.time() - self.started_at, 1),
            "lanes": [lane.health() for lane in self.lanes],
            "backlog": {"events": count, "oldest_age_s": oldest, "unsaved": len(self._unsaved)},
            "uplink": self.uplink.status() if self.uplink is not None else None,
            "models": self.reader.model_versions(),
        }

    def _write_status(self) -> None:
        """``edgectl status`` reads this file: the controller's own view, refreshed every few seconds."""
        try:
            data = json.dumps(self.status(), default=str)
            tmp = self.data_dir / "status.json.tmp"
            tmp.write_text(data)
            os.replace(tmp, self.data_dir / "status.json")
        except Exception:
            log.exception("could not write status file")

    def _status_loop(self) -> None:
        last_housekeeping = last_telemetry = 0.0
        while not self._stop.wait(2.0):
            self._last_status_loop = now = time.monotonic()
            self._retry_unsaved()
            self._write_status()
            if self.uplink is not None and now - last_telemetry >= self.TELEMETRY_EVERY_S:
                last_telemetry = now
                self.uplink.publish(self.uplink.topics.telemetry, self.telemetry(), qos=0)
            if now - last_housekeeping >= self.HOUSEKEEPING_EVERY_S:
                last_housekeeping = now
                self.housekeeping()

    def housekeeping(self) -> None:
        """Retention: delivered events and evidence older than the retention go; undelivered never do."""
        retention_s = self.cfg.storage.retention_days * 86400
        for what, job in (("journal", lambda: self.journal.prune(retention_s)), ("evidence", self.evidence.enforce)):
            try:
                job()
            except Exception:
                log.exception("%s housekeeping failed", what)

    def telemetry(self) -> dict[str, Any]:
        """The status HQ's situation centre sees (customs/v1/<post>/telemetry); schema telemetry.v1."""
        status = self.status()
        status["schema"] = "customs.telemetry/1"
        return status
