"""``customs-edge hq``: HQ's subscriber process (verify, store, acknowledge), and its query commands."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from edge.config import BrokerSection, HQConfig, load_hq_config
from edge.errors import ConfigError
from edge.hq.query import adr_labels
from edge.hq.store import EventStore, SqliteEventStore
from edge.outbox.signing import PublicKeyLike

log = logging.getLogger(__name__)


def open_store(db: str) -> EventStore:
    """A path or ``sqlite:///path`` is SQLite; ``postgresql://`` is PostgreSQL (``pip install .[pg]``)."""
    if db.startswith(("postgresql://", "postgres://")):
        from edge.hq.store_pg import PostgresEventStore

        return PostgresEventStore.from_url(db)
    return SqliteEventStore(db.removeprefix("sqlite:///"))


def load_post_keys(folder: Path | None) -> dict[str, PublicKeyLike]:
    """Posts' public keys enrolled at HQ: ``<post_id>.pub`` (base64 of the raw key) or ``<post_id>.pem``."""
    keys: dict[str, PublicKeyLike] = {}
    if folder is None:
        return keys
    if not folder.is_dir():
        raise ConfigError(str(folder), [("hq.keys_dir", "not a folder")])
    for path in sorted(folder.iterdir()):
        if path.suffix in (".pub", ".pem") and path.is_file():
            keys[path.stem] = path.read_text().strip()
    return keys


def format_event(payload: dict[str, Any]) -> str:
    plate = payload.get("plate") or {}
    weighing = payload.get("weighing") or {}
    gross = weighing.get("gross")
    weight = f"{gross:g} {weighing.get('unit', '')}" if gross is not None else "no weight"
    adr = adr_labels(payload)
    dangerous = f" ADR {','.join(adr)}" if adr else ""
    return (
        f"{payload.get('post_id')}/{payload.get('lane_id')} #{payload.get('seq')} "
        f"{plate.get('display') or '(unreadable)'} {plate.get('country') or '??'} "
        f"{weight}{dangerous} seen {payload.get('first_seen')} left {payload.get('left_at')}"
    )


def _settings(args: argparse.Namespace) -> HQConfig:
    if args.config is not None:
        return load_hq_config(args.config)
    host, _, port = args.broker.rpartition(":")
    try:
        port_n = int(port)
    except ValueError as err:
        raise ConfigError("--broker", [("", f"expected HOST:PORT, got {args.broker!r}")]) from err
    return HQConfig.model_validate({
        "broker": BrokerSection.model_validate({"host": host or "127.0.0.1", "port": port_n}).model_dump(),
        "hq": {"db": args.db, "share_group": args.group, "keys_dir": args.keys,
               "trust_on_first_use": args.trust_on_first_use},
    })


def run_hq(args: argparse.Namespace) -> int:
    from edge.hq.subscriber import HQSubscriber

    cfg = _settings(args)
    store = open_store(cfg.hq.db)
    keys = load_post_keys(cfg.hq.keys_dir)
    if not keys and not cfg.hq.trust_on_first_use:
        log.warning("no post keys enrolled and trust-on-first-use off: every event will be refused")
    out_lock = threading.Lock()

    def on_event(payload: dict[str, Any]) -> None:
        if args.quiet:
            return
        line = json.dumps(payload) if args.json else format_event(payload)
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    sub = HQSubscriber(
        cfg.broker.host,
        cfg.broker.port,
        store,
        share_group=cfg.hq.share_group,
        prefix=cfg.broker.topic_prefix,
        keys=keys,
        trust_on_first_use=cfg.hq.trust_on_first_use,
        on_event=on_event,
        client_id=cfg.hq.client_id,
        broker=cfg.broker,
    )
    sub.start(wait_s=None)
    from edge.cli.main import _start_service, _wait_for_signal

    stop_service = _start_service(sub.alive)
    log.info("HQ subscriber on %s:%d, group %s, store %s", cfg.broker.host, cfg.broker.port,
             cfg.hq.share_group, cfg.hq.db.split("@")[-1])
    try:
        _wait_for_signal()
    finally:
        stop_service()
        sub.stop()
        store.close()
    return 0
