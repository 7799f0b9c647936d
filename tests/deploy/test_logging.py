"""Log setup: JSON under journald, text on a terminal, secrets masked in every record."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.service.logging import redact, setup_logging, under_journald

PEM = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIPb9zYxzl9oG7pZ8LQ0s9F3mEo0cQ0qOZzrdyS7fq1Ke
-----END PRIVATE KEY-----"""


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.mark.parametrize(
    ("raw", "secret", "kept"),
    [
        ("opening rtsp://admin:Hunter2@10.0.0.5:554/stream1", "Hunter2", "10.0.0.5:554/stream1"),
        ("url=rtsps://svc:p%40ss@cam.local/live", "p%40ss", "cam.local/live"),
        ("password=hunter2 next", "hunter2", "next"),
        ("db_password: 's3cr3t value' ok", "s3cr3t", "ok"),
        ('{"password": "topsecret", "user": "post"}', "topsecret", '"user": "post"'),
        ("MQTT_TOKEN=abc.def.ghi", "abc.def.ghi", "MQTT_TOKEN"),
        ("Authorization: Bearer eyJhbGciOiJFZERTQSJ9.payload", "eyJhbGci", "Authorization"),
        (f"loaded key\n{PEM}\nthen more", "MC4CAQAw", "then more"),
        ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIAbcdefgh (truncated", "MHcCAQEE", "EC PRIVATE KEY"),
    ],
)
def test_redact(raw: str, secret: str, kept: str) -> None:
    out = redact(raw)
    assert secret not in out
    assert kept in out
    assert "***" in out


def test_redact_leaves_ordinary_text_alone() -> None:
    for text in [
        "rtsp://10.0.0.5:554/stream1",
        "password_file=/run/credentials/customs-edge.service/mqtt-password",
        "lane 1: 3 tokens read, secret sauce",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "mail ops@example.org",
    ]:
        assert redact(text) == text


def test_text_format_on_a_terminal(restore_root: None) -> None:
    buf = io.StringIO()
    setup_logging("info", stream=buf)
    lg = logging.getLogger("edge.lane")
    lg.debug("hidden")
    lg.warning("camera %s lost: %s", "front", "rtsp://u:pw123@cam/1", extra={"lane": "1"})
    out = buf.getvalue()
    assert "hidden" not in out
    assert "WARNING edge.lane: camera front lost: rtsp://***@cam/1 [lane=1]" in out
    assert "pw123" not in out


def test_json_format_when_asked_including_tracebacks(restore_root: None) -> None:
    buf = io.StringIO()
    setup_logging("DEBUG", json=True, stream=buf)
    try:
        raise ValueError("cannot connect password=letmein")
    except ValueError:
        logging.getLogger("edge.outbox").exception("delivery failed", extra={"lane": "2", "seq": 41})
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["level"] == "ERROR"
    assert doc["logger"] == "edge.outbox"
    assert doc["msg"] == "delivery failed"
    assert doc["lane"] == "2" and doc["seq"] == 41
    assert "ValueError: cannot connect password=***" in doc["exc"]
    assert "letmein" not in lines[0]


def test_json_under_journald_is_detected_from_the_stream(
    restore_root: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal-stream"
    with open(path, "w+", encoding="utf-8") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert under_journald(stream)
        setup_logging("INFO", stream=stream)
        logging.getLogger("edge.x").warning("key was %s", PEM)
        logging.getLogger("edge.x").info("plain")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("<4>{") and lines[1].startswith("<6>{")
    doc = json.loads(lines[0][3:])
    assert "MC4CAQAw" not in doc["msg"] and "PRIVATE KEY-----" in doc["msg"]


def test_inherited_journal_stream_variable_does_not_force_json(
    restore_root: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    buf = io.StringIO()
    assert not under_journald(buf)
    setup_logging("INFO", stream=buf)
    logging.getLogger("edge.y").info("hello")
    assert not buf.getvalue().startswith("{")
    assert "INFO edge.y: hello" in buf.getvalue()


def test_setup_twice_replaces_its_own_handler_only(restore_root: None) -> None:
    other = logging.NullHandler()
    logging.getLogger().addHandler(other)
    first, second = io.StringIO(), io.StringIO()
    setup_logging("INFO", stream=first)
    setup_logging("INFO", json=True, stream=second)
    logging.getLogger("edge.z").info("once")
    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["msg"] == "once"
    assert other in logging.getLogger().handlers
    logging.getLogger().removeHandler(other)


def test_bad_format_args_do_not_lose_the_record(restore_root: None) -> None:
    buf = io.StringIO()
    handler = setup_logging("INFO", stream=buf)
    # pytest's own capture handler on the root would raise first; test ours alone.
    lg = logging.getLogger("edge.bad")
    lg.propagate = False
    lg.addHandler(handler)
    try:
        lg.info("two %s %s", "args password=x")
    finally:
        lg.removeHandler(handler)
        lg.propagate = True
    assert "edge.bad" in buf.getvalue()
    assert "password=***" in buf.getvalue()


def test_unknown_level_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown log level 'LOUD'"):
        setup_logging("LOUD")
