"""Rotating a post's Ed25519 signing key inside the journal's chain, so HQ never loses track of it.

HQ pins one public key per post; an event signed by any other key is refused. A new key therefore has
to be *announced by the old one, inside the chain*: ``python -m edge.service.keys rotate-signing``
stages ``keys/post_ed25519.next.pem`` and, on the next start, :func:`apply_staged_rotation` (called by
the controller before it builds the journal's signer) does, in this order:

1. append one ordinary journal event (``lane_id`` :data:`ROTATION_LANE`, ``schema``
   :data:`ROTATION_SCHEMA`) carrying :func:`edge.service.keys.rotation_statement`, **sealed by the old
   key** and chained like any other event; the commit is fsynced, and the journal's ``meta`` records
   the key now in force in the same transaction;
2. hard-link ``post_ed25519.pem`` to ``post_ed25519.<old key_id>.retired.pem`` (evidence: the old
   public key must stay provable), then atomically replace ``post_ed25519.pem`` by the staged key and
   fsync the directory.

``post_ed25519.pem`` exists at every instant, so a crash can never leave the controller to create a
fresh, unannounced key. A crash after step 1 is finished on the next start without a second
announcement: the journal's ``meta`` already names the staged key as the key in force. A crash
before step 1 committed simply starts over.

The rotation event is not a vehicle crossing: it travels on ``<prefix>/<post>/events/_post`` (no lane
id can start with ``_``), HQ verifies the statement against the key it has pinned and from the next
seq on expects the new key (:mod:`edge.hq.subscriber`), and ``Journal.verify`` / ``edgectl verify``
follow every rotation across the whole journal (:func:`edge.outbox.journal.verify_db`).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.errors import IntegrityError, StorageError
from edge.outbox.signing import PostKey
from edge.service.keys import rotation_statement, verify_rotation

log = logging.getLogger(__name__)

ROTATION_SCHEMA = "customs.key_rotation/1"
ROTATION_LANE = "_post"
"""Post-level events (not a lane): the leading '_' is impossible in a configured lane id."""
STATEMENT_FIELD = "key_rotation"
CURRENT_KEY = "post_ed25519.pem"
NEXT_KEY = "post_ed25519.next.pem"


def retired_name(key_id: str) -> str:
    return f"post_ed25519.{key_id}.retired.pem"


def is_rotation(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("schema") == ROTATION_SCHEMA


def rotation_event(old: PostKey, new_public_b64: str, post_id: str) -> dict[str, Any]:
    """The journal payload announcing ``new_public_b64``; the journal seals it with ``old``."""
    return {
        "schema": ROTATION_SCHEMA,
        "event_id": str(uuid.uuid4()),
        "post_id": post_id,
        "lane_id": ROTATION_LANE,
        STATEMENT_FIELD: rotation_statement(old, new_public_b64, post_id),
    }


def statement_of(payload: dict[str, Any]) -> dict[str, Any]:
    """The rotation statement inside a rotation event; IntegrityError when it has none or the wrong lane."""
    if payload.get("lane_id") != ROTATION_LANE:
        raise IntegrityError(f"a key rotation must travel in lane {ROTATION_LANE!r}, not {payload.get('lane_id')!r}")
    st = payload.get(STATEMENT_FIELD)
    if not isinstance(st, dict):
        raise IntegrityError(f"key rotation event without a {STATEMENT_FIELD!r} statement")
    return st


def check_rotation(payload: dict[str, Any], trusted_public: str, post_id: str) -> str:
    """Verify a rotation event's statement against the key in force before it; return the new key (b64)."""
    return verify_rotation(statement_of(payload), trusted_public, post_id)


def _load_private(path: Path) -> PostKey:
    """Load an existing key; unlike ``PostKey.load_or_create`` this never makes one up."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise StorageError(f"{path}: cannot load the staged signing key: {err}") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise StorageError(f"{path}: not an Ed25519 private key")
    return PostKey(key)


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _switch_files(keys_dir: Path, old_key_id: str | None) -> None:
    """Retire the current key file (kept, under its key id) and put the staged one in its place."""
    current, staged = keys_dir / CURRENT_KEY, keys_dir / NEXT_KEY
    if old_key_id is not None and current.exists():
        retired = keys_dir / retired_name(old_key_id)
        try:
            os.link(current, retired)
        except FileExistsError:
            pass  # a previous attempt got this far
        except OSError:
            shutil.copy2(current, retired)  # a filesystem without hard links
    os.replace(staged, current)
    _fsync_dir(keys_dir)


def apply_staged_rotation(keys_dir: Path, journal_path: Path, post_id: str) -> PostKey:
    """Return the key the journal must sign with from now on, announcing a staged key first if there is one.

    Without ``post_ed25519.next.pem`` this is ``PostKey.load_or_create`` of the current key (a first
    start makes one). With it, the announcement is committed (or found committed by an earlier,
    interrupted start) before the key files change. A failure to rename the files after the commit
    is logged and the new key is used anyway: the chain already says it is in force, and the next
    start finishes the renames.
    """
    keys_dir = Path(keys_dir)
    current_path, next_path = keys_dir / CURRENT_KEY, keys_dir / NEXT_KEY
    if not next_path.exists():
        return PostKey.load_or_create(current_path)
    staged = _load_private(next_path)

    from edge.outbox.journal import Journal  # journal.py imports this module

    if not current_path.exists():
        # Only a hand-made mess gets here (our own switch keeps post_ed25519.pem at every instant).
        if Path(journal_path).exists():
            journal = Journal(journal_path, staged, post_id)
            try:
                announced = journal.signing_key_id() == staged.key_id
            finally:
                journal.close()
            if announced:
                _switch_files(keys_dir, None)
                return staged
        raise StorageError(
            f"{current_path} is missing while {next_path} is staged and the journal never announced it:"
            " restore the current key (HQ would refuse events signed by an unannounced key)"
        )

    current = PostKey.load_or_create(current_path)
    if staged.key_id == current.key_id:
        log.warning("staged signing key %s is the current key; nothing to rotate", staged.key_id)
        next_path.unlink()
        return current
    journal = Journal(journal_path, current, post_id)
    try:
        in_force = journal.signing_key_id()
        if in_force == staged.key_id:
            log.warning("rotation to signing key %s is already in the journal; finishing the key files",
                        staged.key_id)
        elif in_force != current.key_id:
            log.error(
                "cannot rotate to %s: the journal's chain is signed by key %s, not by the current key file's"
                " %s; keeping %s (restore the right key file, or re-enrol the post at HQ)",
                staged.key_id, in_force, current.key_id, current.key_id,
            )
            return current
        else:
            stored = journal.rotate_key(staged)
            log.warning("signing key rotated: %s -> %s, announced at seq %d", current.key_id, staged.key_id,
                        stored.seq)
    finally:
        journal.close()
    try:
        _switch_files(keys_dir, current.key_id)
    except OSError as err:
        log.error("signing key %s is in force but %s could not replace %s: %s; the next start retries",
                  staged.key_id, next_path, current_path, err)
    return staged
