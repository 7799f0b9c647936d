"""``customs-edge read``: JSON lines for images and for the crossings of a video."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.recognition import cli

from .conftest import lane_frame


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return _lines_of(capsys.readouterr().out)


def test_images_one_line_each_and_bad_files_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, _ = lane_frame("01 A 123 BC", "UZ", plate_h=44)
    b, _ = lane_frame("123 ABC 02", "KZ", plate_h=44)
    pa, pb = tmp_path / "a.jpg", tmp_path / "b.png"
    cv2.imwrite(str(pa), a, [cv2.IMWRITE_JPEG_QUALITY, 92])
    cv2.imwrite(str(pb), b)
    garbage = tmp_path / "c.jpg"
    garbage.write_bytes(b"\xff\xd8 not really a jpeg")
    rc = cli.main([str(pa), str(garbage), str(pb), str(tmp_path / "missing.png")])
    lines = _lines(capsys)
    assert rc == 1
    assert [ln["file"] for ln in lines] == [str(pa), str(garbage), str(pb), str(tmp_path / "missing.png")]
    assert lines[0]["plates"][0]["text"] == "01A123BC"
    assert lines[0]["plates"][0]["country"] == "UZ"
    assert isinstance(lines[0]["plates"][0]["country_read"], bool)
    assert lines[0]["plates"][0]["display"] == "01 A 123 BC"
    assert len(lines[0]["plates"][0]["box"]) == 4
    assert lines[0]["containers"] == [] and "models" in lines[0]
    assert "error" in lines[1] and "decode" in lines[1]["error"]
    assert lines[2]["plates"][0]["text"] == "123ABC02"
    assert "error" in lines[3]


def test_a_folder_reads_every_image_and_video_under_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, _ = lane_frame("01 A 123 BC", "UZ", plate_h=44)
    b, _ = lane_frame("123 ABC 02", "KZ", plate_h=44)
    day = tmp_path / "day"
    (day / "lane2").mkdir(parents=True)
    (day / ".trash").mkdir()
    cv2.imwrite(str(day / "lane2" / "b.PNG"), b)
    cv2.imwrite(str(day / "a.jpg"), a)
    cv2.imwrite(str(day / ".trash" / "old.jpg"), a)  # hidden: not evidence
    (day / "a.txt").write_text("01A123BC\n")  # a label beside a photo: passed over
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = cli.main([str(day), str(empty)])
    lines = _lines(capsys)
    assert [ln["file"] for ln in lines] == [str(day / "a.jpg"), str(day / "lane2" / "b.PNG"), str(empty)]
    assert [ln["plates"][0]["text"] for ln in lines[:2]] == ["01A123BC", "123ABC02"]
    assert lines[2]["error"] == f"{empty}: no image or video in this folder"
    assert rc == 1  # a folder with nothing to read is an error, as a missing file is


def _two_crossings(path: Path) -> Path:
    """Two vehicles, each 0.6 s in view, each followed by 3 s of empty lane: 7.2 s at 10 fps."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (1280, 720))
    assert writer.isOpened()
    empty = np.full((720, 1280, 3), 105, np.uint8)
    try:
        for display, seed_base in (("01 A 123 BC", 0), ("30 555 XYZ", 100)):
            for i in range(6):  # 0.6 s of a vehicle
                frame, _ = lane_frame(display, "UZ", plate_h=40 + 2 * i, seed=seed_base + i)
                writer.write(frame)
            for _ in range(30):  # 3 s of empty lane: the crossing ends
                writer.write(empty)
    finally:
        writer.release()
    return path


def test_video_gives_one_line_per_crossing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _two_crossings(tmp_path / "lane.avi")
    rc = cli.main([str(path), "--fps", "5", "--gap", "1.5"])
    captured = capsys.readouterr()
    lines = _lines_of(captured.out)
    assert rc == 0
    assert [ln["plate"]["text"] for ln in lines] == ["01A123BC", "30555XYZ"]
    assert all(ln["plate"]["supporting_frames"] >= 2 for ln in lines)
    assert lines[0]["end_s"] < lines[1]["start_s"]
    # Progress goes to stderr only (stdout is all JSON): a line at each tenth of the video here,
    # where stderr is no terminal, the last at 100% with both crossings counted.
    progress = captured.err.strip().splitlines()
    assert len(progress) >= 5 and all(p.startswith("lane.avi: ") for p in progress)
    assert progress[-1] == "lane.avi: 7.2 of 7.2 s read (100%), 2 crossings"


def test_video_progress_can_be_silenced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _two_crossings(tmp_path / "lane.avi")
    assert cli.main([str(path), "--fps", "2", "--gap", "1.5", "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and len(_lines_of(captured.out)) == 2


def test_a_crossing_is_reported_when_it_ends_not_when_the_video_does(tmp_path: Path) -> None:
    from edge.recognition.reader import PlateReader

    path = _two_crossings(tmp_path / "lane.avi")
    seen: list[float] = []
    lines = cli._read_video(PlateReader(), path, None, 2.0, 1.5,
                            progress=lambda t, length, n, done: seen.append(t))
    first = next(lines)
    assert first["plate"]["text"] == "01A123BC"
    assert 1.5 < max(seen) < 4.0  # it ended 1.5 s after its last plate (0.5 s), long before the 7.2 s end
    assert [ln["plate"]["text"] for ln in lines] == ["30555XYZ"]


def _lines_of(out: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in out.splitlines() if x.strip()]


def test_a_crossings_line_lists_every_container_and_no_word_beside_a_plate() -> None:
    from edge.recognition.types import PlateRead
    from edge.recognition.voting import PlateVoter

    def r(text: str, conf: float, seq: int, kind: str = "plate") -> PlateRead:
        return PlateRead(text=text, confidence=conf, box=(10, 10, 100, 30), display=text, frame_seq=seq, kind=kind)

    voter = PlateVoter()
    for seq in range(3):
        voter.add(r("01A123BC", 0.9, seq))
        voter.add(r("DOMINION", 0.4, seq))  # the dealer's frame around the plate
        voter.add(r("CSQU3054383", 0.9, seq, kind="container"))
        voter.add(r("MSKU1234565", 0.8, seq, kind="container"))
        voter.add(r("33/1203", 0.85, seq, kind="adr"))
    line = cli.crossing_reads(voter)
    assert line["plate"]["text"] == "01A123BC" and line["plate"]["supporting_frames"] == 3
    assert line["plates"] == ["01A123BC"]
    assert [c["code"] for c in line["containers"]] == ["CSQU3054383", "MSKU1234565"]
    assert [(a["hazard"], a["un"]) for a in line["adr"]] == [("33", "1203")]

    words_only = PlateVoter()
    words_only.add(r("SGTE", 0.7, 0))  # a personalised plate of letters alone is still a plate
    assert cli.crossing_reads(words_only)["plates"] == ["SGTE"]


def test_bad_roi_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([str(tmp_path / "x.png"), "--roi", "1,2,3"]) == 2
    assert "--roi" in capsys.readouterr().err
