"""Characters read from a plate's emblems (seals, coats of arms, the EU band's letter) are taken out:
the finder on drawn lines, the recognizer's character positions it relies on, and the reader on
German and Austrian plates drawn with their seals and arms, in colour and (German) in grey."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from drivers.camera.synthetic import render_plate
from edge.recognition.emblems import emblem_positions, without
from edge.recognition.ocr import TextLine
from edge.recognition.reader import PlateReader

from .conftest import lane_frame

H = 48  # line height of the drawn crops


def drawn_line(places: list[str], ink: tuple[int, int, int] = (20, 20, 20),
               ground: tuple[int, int, int] = (240, 240, 240)) -> tuple[np.ndarray, TextLine]:
    """A crop of characters ("bar": a dark stroke, "seal": an orange disc) at even places, and the
    line the recognizer would have read from it (every place a character)."""
    pitch = H * 0.6
    w = int(pitch * (len(places) + 1))
    crop = np.full((H, w, 3), ground, np.uint8)
    xs = []
    for i, kind in enumerate(places):
        cx = int(pitch * (i + 1))
        if kind == "bar":
            cv2.rectangle(crop, (cx - 5, 6), (cx + 5, H - 6), ink, -1)
        else:
            cv2.circle(crop, (cx, H // 2), 10, (40, 140, 240), -1)
        xs.append(cx / w)
    n = len(places)
    line = TextLine("B" * n, [0.9] * n, np.full((n, 36), 1 / 36, np.float32), "B" * n, tuple(xs))
    return crop, line


def test_a_coloured_place_without_ink_between_groups_is_an_emblem() -> None:
    crop, line = drawn_line(["bar", "bar", "seal", "bar", "bar", "bar"])
    assert emblem_positions(crop, line) == [2]


def test_plain_lines_coloured_ink_and_grey_frames_lose_nothing() -> None:
    crop, line = drawn_line(["bar"] * 6)
    assert emblem_positions(crop, line) == []
    # A plate printed in red ink: every place is coloured alike, so none stands out.
    crop, line = drawn_line(["bar"] * 6, ink=(30, 30, 200))
    assert emblem_positions(crop, line) == []
    # On a coloured ground (a yellow plate), the seal is no different from its neighbours.
    crop, line = drawn_line(["bar", "bar", "seal", "bar", "bar"], ground=(40, 200, 230))
    assert emblem_positions(crop, line) == []
    # An infrared camera's grey frame has no colour to judge by.
    crop, line = drawn_line(["bar", "bar", "seal", "bar", "bar", "bar"])
    grey = cv2.cvtColor(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    assert emblem_positions(grey, line) == []
    # A line without character positions (one made up by joining two) is left as it is.
    assert emblem_positions(crop, TextLine("BBBBBB", [0.9] * 6)) == []


def test_without_keeps_the_line_aligned() -> None:
    probs = np.eye(36, dtype=np.float32)[:5]
    line = TextLine("AB8CD", [0.9, 0.8, 0.5, 0.7, 0.6], probs, "AB8CD", (0.1, 0.3, 0.5, 0.7, 0.9))
    out = without(line, [2])
    assert (out.text, out.confs, out.xs) == ("ABCD", [0.9, 0.8, 0.7, 0.6], (0.1, 0.3, 0.7, 0.9))
    assert np.array_equal(out.probs, probs[[0, 1, 3, 4]])


def test_the_recognizer_says_where_each_character_was_read(reader: PlateReader) -> None:
    plate = render_plate("WA 12345", "PL", 60)
    line = reader.recognizer.recognize([plate])[0]
    assert line.text.endswith("WA12345")
    assert len(line.xs) == len(line.text)
    assert list(line.xs) == sorted(line.xs) and 0 < line.xs[0] and line.xs[-1] < 1
    # Where the renderer drew the characters: dark columns of the text band.
    ink = np.concatenate([[False], (plate[15:45].max(axis=2) < 100).any(axis=0), [False]])
    edges = np.flatnonzero(ink[1:] != ink[:-1])
    centres = [(a + b) / 2 / plate.shape[1] for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a > 3]
    assert len(centres) >= 7
    for x in line.xs[-7:]:
        assert min(abs(x - c) for c in centres) < 0.04, (x, centres)


@pytest.mark.parametrize(
    ("display", "country", "height"),
    [("B MW 1234", "DE", 36), ("KA AB 123", "DE", 48), ("M AB 1234", "DE", 60), ("W 12345 A", "AT", 48),
     ("G 1234 B", "AT", 36)],
)
def test_plates_drawn_with_seals_and_arms_read_without_them(
    reader: PlateReader, display: str, country: str, height: int
) -> None:
    # Read as a B or an 8, the seals made MBAB1234 of M AB 1234, a German plate too; Austria's arms
    # read as an A made AW12345A.
    for seed in (0, 1):
        frame, _ = lane_frame(display, country, plate_h=height, seed=seed)
        best = reader.read(frame)[0]
        assert (best.text, best.country) == (display.replace(" ", ""), country), seed


@pytest.mark.parametrize(("display", "height"), [("B MW 1234", 48), ("KA AB 123", 36)])
def test_german_plates_in_an_infrared_cameras_grey_frames(reader: PlateReader, display: str, height: int) -> None:
    # No colour: the seals are read as an 8 (B8MW1234), which only a German plate's seals explain.
    for seed in (0, 1):
        frame, _ = lane_frame(display, "DE", plate_h=height, seed=seed)
        grey = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        best = reader.read(grey)[0]
        assert best.text == display.replace(" ", ""), seed


@pytest.mark.parametrize("display", ["KA F 3784", "K AF 3784", "HH N 2624", "B ZS 1454"])
def test_the_seals_say_where_a_german_district_ends(reader: PlateReader, display: str) -> None:
    # KAF3784 is Karlsruhe's KA F 3784 or Cologne's K AF 3784: the text alone cannot tell, the
    # seals between the district and the letters can.
    for seed in (0, 1):
        frame, _ = lane_frame(display, "DE", plate_h=44, seed=seed)
        best = reader.read(frame)[0]
        assert (best.display, best.country) == (display, "DE"), seed
