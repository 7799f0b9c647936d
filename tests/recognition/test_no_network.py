"""Reading plates never touches the network: models come from disk, nothing is downloaded.

The socket layer itself is guarded: every way of opening a connection or resolving a name records
the attempt and fails, then a fresh reader is built, reads a frame, and the CLI reads a file.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import cv2
import pytest

from edge.config import RecognitionSection
from edge.recognition import cli
from edge.recognition.reader import PlateReader

from .conftest import lane_frame


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    attempts: list[str] = []

    def refuse(name: str) -> Any:
        def _refuse(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{name}{args[1:] if name.startswith('socket.') else args}")
            raise OSError(f"network access attempted in a test that forbids it: {name}")

        return _refuse

    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
    monkeypatch.setattr(socket.socket, "sendto", refuse("socket.sendto"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    return attempts


def test_reader_opens_no_connection(no_network: list[str]) -> None:
    reader = PlateReader(RecognitionSection.model_validate({"threads": 1}))
    frame, _ = lane_frame("01 A 123 BC", "UZ", plate_h=44)
    reads = reader.read(frame)
    assert reads and reads[0].text == "01A123BC"
    assert no_network == []


def test_read_cli_opens_no_connection(
    no_network: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame, _ = lane_frame("40 777 ABC", "UZ", plate_h=44)
    path = tmp_path / "lane.png"
    cv2.imwrite(str(path), frame)
    assert cli.main([str(path), "--threads", "1"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["plates"][0]["text"] == "40777ABC"
    assert no_network == []


def test_the_guard_itself_trips(no_network: list[str]) -> None:
    with pytest.raises(OSError, match="network access attempted"):
        socket.create_connection(("127.0.0.1", 9))
    assert len(no_network) == 1
