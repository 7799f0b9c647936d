"""Logging for an unattended post: JSON lines for journald, readable lines for a technician, no secrets.

Under systemd, stderr goes to journald and ``$JOURNAL_STREAM`` names that stream; one JSON object per
line lets HQ tooling (or ``journalctl -o cat | jq``) filter by lane, logger or level without parsing
prose, and a ``<N>`` syslog prefix keeps ``journalctl -p warning`` working. On a terminal a person
reads the log, so it stays plain text.

Camera URLs carry ``rtsp://user:password@``, config errors quote lines with ``password = ...``, and an
exception can drag a PEM private key into a traceback; the :class:`RedactingFilter` rewrites every
record on its way out so none of that reaches a disk or a support ticket.
"""

from __future__ import annotations

import faulthandler
import json as _json
import logging
import os
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, TextIO

from edge.errors import ConfigError

log = logging.getLogger(__name__)

MASK = "***"

_PEM = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY)-----.*?(?:-----END \1-----|\Z)",
    re.DOTALL,
)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@]+@")
_KEY_VALUE = re.compile(
    r"""(?ix)
    (["']?)                                     # optional quote around the key (JSON, repr of a dict)
    \b([\w-]*?(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key))
    \1
    (\s*[=:]\s*)
    (?!\*\*\*)                                  # already masked
    ("[^"]*"|'[^']*'|[^\s,;&}\]]+)
    """
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}")


def redact(text: str) -> str:
    """Mask passwords in URLs, ``password=...``-style pairs, auth headers and PEM private keys."""
    if not text:
        return text
    text = _PEM.sub(lambda m: f"-----BEGIN {m.group(1)}----- {MASK} -----END {m.group(1)}-----", text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(1)}{m.group(3)}{MASK}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return text


_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime", "taskName"}
)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS and not k.startswith("_")}


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact(str(value))


class RedactingFilter(logging.Filter):
    """Rewrites each record in place: message, traceback, stack and string extras.

    Installed on the handler (not a logger) because handler filters see records from every logger,
    including third-party ones such as paho or OpenCV wrappers.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format must not lose the record; log what we have
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in _extras(record).items():
            setattr(record, key, _redact_value(value))
        return True


_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def _priority(levelno: int) -> int:
    for threshold in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= threshold:
            return _SYSLOG_PRIORITY[threshold]
    return 7


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extras given with ``extra={"lane": "1"}`` become top-level keys."""

    def __init__(self, *, syslog_prefix: bool = False) -> None:
        super().__init__()
        self.syslog_prefix = syslog_prefix

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "thread": record.threadName,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        for key, value in _extras(record).items():
            doc.setdefault(key, value)
        line = _json.dumps(doc, ensure_ascii=False, default=str)
        return f"<{_priority(record.levelno)}>{line}" if self.syslog_prefix else line


class TextFormatter(logging.Formatter):
    """``2026-11-28 21:11:41.123 WARNING edge.lane: message [lane=1]``: extras appended for context."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if extras:
            tail = " ".join(f"{k}={v}" for k, v in extras.items())
            head, sep, rest = line.partition("\n")
            line = f"{head} [{tail}]{sep}{rest}"
        return line


def under_journald(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default stderr) is the journal stream systemd connected.

    ``$JOURNAL_STREAM`` is ``<device>:<inode>`` of that stream; comparing guards against a child
    that inherited the variable but had its stderr redirected to a file or a terminal.
    """
    value = os.environ.get("JOURNAL_STREAM", "")
    if not value:
        return False
    s = sys.stderr if stream is None else stream
    try:
        st = os.fstat(s.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    dev, _, ino = value.partition(":")
    try:
        return (int(dev), int(ino)) == (st.st_dev, st.st_ino)
    except ValueError:
        return False


_HANDLER_FLAG = "_customs_edge_handler"


def _parse_level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.strip().upper())
    if not isinstance(value, int):
        hint = "use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        raise ConfigError("logging", [("level", f"unknown log level {level!r}: {hint}")])
    return value


def setup_logging(
    level: str | int = "INFO",
    *,
    json: bool | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Configure the root logger once per process (calling again replaces our handler, not others').

    ``json=None`` picks JSON under journald and text elsewhere; ``True``/``False`` force it. Returns
    the handler so a caller (or a test) can remove it.
    """
    lvl = _parse_level(level)
    out = sys.stderr if stream is None else stream
    journald = under_journald(out)
    use_json = journald if json is None else json
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter(syslog_prefix=journald) if use_json else TextFormatter())
    handler.addFilter(RedactingFilter())
    setattr(handler, _HANDLER_FLAG, True)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_FLAG, False):
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(lvl)
    logging.captureWarnings(True)
    _enable_fault_tracebacks()
    return handler


def _enable_fault_tracebacks() -> None:
    """systemd's watchdog kills a hung process with SIGABRT; this makes it print every thread's stack."""
    if faulthandler.is_enabled():
        return
    try:
        faulthandler.enable(file=sys.__stderr__ or sys.stderr, all_threads=True)
    except (AttributeError, ValueError, OSError):  # no usable stderr file descriptor
        pass
