"""Signed commands from HQ to a post: watchlists, declarations, config reload, diagnostics.

A command changes what a post flags at the border, so the post must be sure it came from HQ, is
meant for this post, is current, and is not a recording of an earlier one:

* Ed25519 signature by HQ's key over the canonical JSON of the command without ``signature``;
* ``post_id`` names the target post (a command for another post is refused);
* ``issued_at`` / ``expires_at`` (ISO 8601 UTC): expired ones are refused, and so are ones issued
  further in the future than the allowed clock skew;
* ``id`` is recorded durably in the journal database *before* the command runs, so a replay is
  refused even after a restart, and a valid command runs at most once; a crash between recording and
  running leaves it recorded as ``running`` (not run twice: the operator re-issues with a new id).

Every command gets an answer on ``<prefix>/<post>/cmd/result``: done, failed or refused with the
reason, signed by the post's key.

Command ``customs.command/1``::

    {"schema": "customs.command/1", "id": "<uuid>", "post_id": "uz-demo-01",
     "type": "watchlist.add", "issued_at": "2026-11-28T21:00:00.000Z", "expires_at": "...",
     "payload": {...}, "key_id": "<hq key id>", "signature": "<base64 Ed25519>"}
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from edge.errors import CommandError, EdgeError, IntegrityError
from edge.events import iso_time
from edge.outbox.journal import Journal
from edge.outbox.signing import PostKey, PublicKeyLike, canonical_json, key_id_of, public_key_from, public_raw

log = logging.getLogger(__name__)

SCHEMA = "customs.command/1"
RESULT_SCHEMA = "customs.command_result/1"
COMMAND_TYPES = frozenset({"watchlist.set", "watchlist.add", "declarations.add", "config.reload", "diag.run"})

Handler = Callable[[dict[str, Any]], dict[str, Any] | None]
"""Runs one command's ``payload``; returns a result dict (published back) or None."""


def _parse_time(value: Any, field: str) -> float:
    if not isinstance(value, str):
        raise CommandError(f"malformed: {field} must be an ISO 8601 time")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as err:
        raise CommandError(f"malformed: {field} {value!r} is not an ISO 8601 time") from err
    if dt.tzinfo is None:
        raise CommandError(f"malformed: {field} has no time zone")
    return dt.timestamp()


class CommandSigner:
    """HQ side: build and sign commands with HQ's Ed25519 key."""

    def __init__(self, key: PostKey) -> None:
        self.key = key

    def sign(
        self,
        post_id: str,
        type: str,
        payload: dict[str, Any] | None = None,
        *,
        ttl_s: float = 3600.0,
        cmd_id: str | None = None,
        issued_at: float | None = None,
    ) -> dict[str, Any]:
        if type not in COMMAND_TYPES:
            raise CommandError(f"unknown command type {type!r}: use one of {', '.join(sorted(COMMAND_TYPES))}")
        now = time.time() if issued_at is None else issued_at
        cmd: dict[str, Any] = {
            "schema": SCHEMA,
            "id": cmd_id or str(uuid.uuid4()),
            "post_id": post_id,
            "type": type,
            "issued_at": iso_time(now),
            "expires_at": iso_time(now + ttl_s),
            "payload": payload or {},
            "key_id": self.key.key_id,
        }
        cmd["signature"] = self.key.sign(canonical_json(cmd))
        return cmd


def verify_command(cmd: Any, hq_public_key: PublicKeyLike) -> None:
    """Check shape and signature; raises CommandError whose message starts with the refusal kind."""
    if not isinstance(cmd, dict):
        raise CommandError("malformed: not a JSON object")
    if "signature" not in cmd:
        raise CommandError("unsigned: the command carries no signature")
    for k in ("id", "post_id", "type", "issued_at", "expires_at", "payload"):
        if k not in cmd:
            raise CommandError(f"malformed: missing {k!r}")
    if not isinstance(cmd["id"], str) or not cmd["id"]:
        raise CommandError("malformed: id must be a non-empty string")
    pub = public_key_from(hq_public_key)
    body = {k: v for k, v in cmd.items() if k != "signature"}
    if body.get("key_id") not in (None, key_id_of(public_raw(pub))):
        raise CommandError(f"bad_signature: signed by unknown key {body.get('key_id')!r}")
    try:
        pub.verify(base64.b64decode(str(cmd["signature"]), validate=True), canonical_json(body))
    except Exception as err:  # InvalidSignature, binascii.Error, TypeError from odd JSON
        raise CommandError("bad_signature: the signature does not verify (forged or tampered)") from err


class CommandProcessor:
    """Post side: verify, de-duplicate (durably), execute once, and answer. Use as ``Uplink(on_command=...)``."""

    def __init__(
        self,
        journal: Journal,
        hq_public_key: PublicKeyLike,
        post_id: str,
        handlers: dict[str, Handler] | None = None,
        *,
        post_key: PostKey | None = None,
        max_clock_skew_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            self.hq_key = public_key_from(hq_public_key)
        except IntegrityError as err:
            raise CommandError(f"the configured HQ command key is not usable: {err}") from err
        self.journal = journal
        self.post_id = post_id
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.post_key = post_key or journal.key
        self.max_clock_skew_s = max_clock_skew_s
        self.clock = clock
        self.counts = {"done": 0, "failed": 0, "refused": 0}
        self.current: dict[str, Any] | None = None
        """The command whose handler is running: a handler that answers later needs its id."""

    def register(self, type: str, handler: Handler) -> None:
        if type not in COMMAND_TYPES:
            raise CommandError(f"unknown command type {type!r}")
        self.handlers[type] = handler

    def __call__(self, raw: bytes) -> dict[str, Any]:
        return self.handle(raw)

    def handle(self, raw: bytes) -> dict[str, Any]:
        """Process one raw command message; always returns the (signed) result to publish."""
        cmd: Any = None
        try:
            try:
                cmd = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as err:
                raise CommandError(f"malformed: not JSON ({err})") from err
            self._check(cmd)
        except CommandError as err:
            return self._refuse(cmd, str(err))
        assert isinstance(cmd, dict)
        handler = self.handlers[cmd["type"]]
        if not self.journal.claim_command(cmd["id"], cmd["type"], _parse_time(cmd["expires_at"], "expires_at")):
            return self._refuse(cmd, f"replayed: command {cmd['id']} was already received")
        self.current = cmd
        try:
            result = handler(cmd["payload"]) or {}
        except Exception as err:  # a failing handler is reported to HQ; the lane keeps running
            log.exception("command %s (%s) failed", cmd["id"], cmd["type"])
            out = self._result(cmd, "failed", error=f"{type(err).__name__}: {err}")
            self.journal.finish_command(cmd["id"], "failed", out)
            self.counts["failed"] += 1
            return out
        finally:
            self.current = None
        out = self._result(cmd, "done", result=result)
        self.journal.finish_command(cmd["id"], "done", out)
        self.counts["done"] += 1
        log.info("command %s (%s) done", cmd["id"], cmd["type"])
        return out

    def _check(self, cmd: Any) -> None:
        verify_command(cmd, self.hq_key)
        if cmd.get("schema", SCHEMA) != SCHEMA:
            raise CommandError(f"malformed: unknown schema {cmd.get('schema')!r}")
        if cmd["post_id"] != self.post_id:
            raise CommandError(f"wrong_post: addressed to {cmd['post_id']!r}, this is {self.post_id!r}")
        if cmd["type"] not in COMMAND_TYPES:
            raise CommandError(f"unknown_type: {cmd['type']!r}")
        if not isinstance(cmd["payload"], dict):
            raise CommandError("malformed: payload must be an object")
        now = self.clock()
        if _parse_time(cmd["expires_at"], "expires_at") <= now:
            raise CommandError(f"expired: at {cmd['expires_at']}")
        if _parse_time(cmd["issued_at"], "issued_at") > now + self.max_clock_skew_s:
            raise CommandError(f"not_yet_valid: issued at {cmd['issued_at']}, in the future")
        if cmd["type"] not in self.handlers:
            raise CommandError(f"no_handler: this post has no handler for {cmd['type']!r}")

    def later_result(self, cmd: dict[str, Any], result: dict[str, Any] | None = None,
                     error: str | None = None) -> dict[str, Any]:
        """A second, signed answer to ``cmd`` from a handler that finished in the background."""
        return self._result(cmd, "failed" if error else "done", result=result, error=error)

    def _refuse(self, cmd: Any, why: str) -> dict[str, Any]:
        self.counts["refused"] += 1
        cid = cmd.get("id") if isinstance(cmd, dict) else None
        log.warning("command %s REFUSED: %s", cid, why)
        return self._result(cmd if isinstance(cmd, dict) else {}, "refused", error=why)

    def _result(
        self, cmd: dict[str, Any], status: str, *, result: dict[str, Any] | None = None, error: str | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": RESULT_SCHEMA,
            "id": cmd.get("id") if isinstance(cmd.get("id"), str) else None,
            "type": cmd.get("type") if isinstance(cmd.get("type"), str) else None,
            "post_id": self.post_id,
            "status": status,
            "ok": status == "done",
            "reason": error.split(":", 1)[0] if error else None,
            "error": error,
            "result": result,
            "at": iso_time(self.clock()),
            "key_id": self.post_key.key_id,
        }
        out["signature"] = self.post_key.sign(canonical_json(out))
        return out


def send_command(
    host: str, port: int, command: dict[str, Any], *, prefix: str = "customs/v1", timeout: float = 10.0
) -> None:
    """Publish a signed command to its post (QoS 1, not retained: a command is an event, not a state)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from edge.broker import speaks_mqtt5
    from edge.topics import Topics

    v5 = speaks_mqtt5(host, port)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"hq-cmd-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
    try:
        client.connect(host, port, keepalive=30)
    except OSError as err:
        raise CommandError(f"cannot reach the broker at {host}:{port}: {err}") from err
    client.loop_start()
    try:
        info = client.publish(Topics(command["post_id"], prefix).cmd, json.dumps(command), qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise CommandError(f"the broker did not accept the command within {timeout:.0f} s")
    finally:
        client.disconnect()
        client.loop_stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m edge.commands``: HQ's tool to create its key, sign a command and send it."""
    ap = argparse.ArgumentParser(prog="python -m edge.commands", description=main.__doc__)
    ap.add_argument("--key", type=Path, required=True, help="HQ's Ed25519 key file (created if missing)")
    sub = ap.add_subparsers(dest="action", required=True)
    sub.add_parser("pubkey", help="print HQ's public key (base64) for the posts' configuration")
    s = sub.add_parser("send", help="sign a command and publish it (or print it with --dry-run)")
    s.add_argument("--post", required=True)
    s.add_argument("--type", required=True, choices=sorted(COMMAND_TYPES))
    s.add_argument("--payload", default="{}", help="JSON object")
    s.add_argument("--ttl", type=float, default=3600.0, help="seconds until the command expires")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=1883)
    s.add_argument("--prefix", default="customs/v1")
    s.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    try:
        key = PostKey.load_or_create(args.key)
        if args.action == "pubkey":
            print(key.public_b64)
            return 0
        try:
            payload = json.loads(args.payload)
        except ValueError as err:
            raise CommandError(f"--payload is not JSON: {err}") from err
        if not isinstance(payload, dict):
            raise CommandError("--payload must be a JSON object")
        cmd = CommandSigner(key).sign(args.post, args.type, payload, ttl_s=args.ttl)
        if not args.dry_run:
            send_command(args.host, args.port, cmd, prefix=args.prefix)
        print(json.dumps(cmd))
        return 0
    except EdgeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
