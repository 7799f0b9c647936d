"""Real photos from the OpenALPR benchmark (the dev splits), a spread of each split.

Skipped when the shared dataset is not on this machine. The full figures come from
``python -m bench.accuracy``; this only guards against a reader that stopped reading real plates.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge.recognition import cli
from edge.recognition.reader import PlateReader

from .conftest import dataset_items


def _exact(reader: PlateReader, split: str, n: int) -> tuple[int, int, list[str]]:
    ok, misses = 0, []
    items = dataset_items(split, n)
    for path, _box, text in items:
        img = cv2.imread(str(path))
        assert img is not None, path
        reads = [r for r in reader.read(img) if r.kind == "plate"]
        got = reads[0].text if reads else ""
        if got == text:
            ok += 1
        else:
            misses.append(f"{path.name}: {text} read as {got or '-'}")
    return ok, len(items), misses


def test_brazilian_photos(reader: PlateReader) -> None:
    ok, n, misses = _exact(reader, "br", 12)
    assert ok >= n - 1, misses


def test_us_photos(reader: PlateReader) -> None:
    ok, n, misses = _exact(reader, "us", 12)
    assert ok >= n * 0.6, misses


def test_reads_that_hinged_on_where_the_crop_ended_are_outvoted(reader: PlateReader) -> None:
    # us dev photos read wrong from the closer look's one crop (GHP995, 383NJP, CJILP5G, 53127K)
    # and right by the vote of that crop and the same line cut wider and narrower.
    names = {"37170dd1-2802-4e38-b982-c5d07c64ff67.jpg", "wts-lg-000087.jpg", "wts-lg-000096.jpg",
             "wts-lg-000143.jpg"}
    items = [it for it in dataset_items("us", 10_000) if it[0].name in names]
    assert len(items) == len(names)
    for path, _box, text in items:
        img = cv2.imread(str(path))
        reads = [r for r in reader.read(img) if r.kind == "plate"]
        assert reads and reads[0].text == text, (path.name, [r.text for r in reads])


def test_personalised_plates_of_letters_alone_are_read(reader: PlateReader) -> None:
    # us dev photos of vanity plates (FZRULZ, NEILDMND): read perfectly, and once refused by every
    # format, because a plate was taken to need a digit.
    names = {"car8.jpg", "us5.jpg"}
    items = [it for it in dataset_items("us", 10_000) if it[0].name in names]
    assert len(items) == len(names)
    for path, _box, text in items:
        reads = [r for r in reader.read(cv2.imread(str(path))) if r.kind == "plate"]
        assert reads and reads[0].text == text, (path.name, [r.text for r in reads])


def test_a_frame_smaller_than_the_coarse_pass_is_looked_at_enlarged(reader: PlateReader) -> None:
    # us dev photos at half their resolution (640 px and less): before the second pass enlarged such
    # frames, it never ran on them, and their plates were not found at all.
    names = {"wts-lg-000030.jpg", "wts-lg-000042.jpg", "wts-lg-000064.jpg", "wts-lg-000100.jpg"}
    items = [it for it in dataset_items("us", 10_000) if it[0].name in names]
    assert len(items) == len(names)
    for path, _box, text in items:
        img = cv2.imread(str(path))
        small = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
        assert max(small.shape[:2]) <= 640
        reads = [r for r in reader.read(small) if r.kind == "plate"]
        assert reads and reads[0].text == text, (path.name, [r.text for r in reads])


def test_a_dark_frame_is_brightened_before_it_is_read(reader: PlateReader) -> None:
    # br dev photos at a third of their light, with a sensor's noise: their plates were not found
    # (PJD2685, PJT2905) or read D for O (OEL1145) until dark frames were stretched first.
    names = {"PJD2685.jpg", "PJT2905.jpg", "OEL1145.jpg"}
    items = [it for it in dataset_items("br", 10_000) if it[0].name in names]
    assert len(items) == len(names)
    for path, _box, text in items:
        img = cv2.imread(str(path))
        noise = np.random.default_rng(0).normal(0.0, 4.0, img.shape)
        dark = np.clip(img.astype(np.float32) / 3.0 + noise, 0, 255).astype(np.uint8)
        reads = [r for r in reader.read(dark) if r.kind == "plate"]
        assert reads and reads[0].text == text, (path.name, [r.text for r in reads])


def test_a_plate_the_detector_finds_only_without_colour_is_read(reader: PlateReader) -> None:
    # us dev photo car22.jpg: the detector finds CH0P8Y in neither colour pass (640 px, 1280 px),
    # only in a grey copy of the frame, which the reader looks at in a photo read on its own; without
    # it the reader took another car's plate fragment (6F1A). The characters are read in colour.
    items = [it for it in dataset_items("us", 10_000) if it[0].name == "car22.jpg"]
    assert len(items) == 1
    img = cv2.imread(str(items[0][0]))
    assert [r.text for r in reader.read(img, still=True) if r.kind == "plate"][:1] == ["CH0P8Y"]
    # A lane's frame is no still: its next frame is the second look.
    assert "CH0P8Y" not in [r.text for r in reader.read(img)]


def test_customs_edge_read_reads_an_image_as_a_still(capsys: pytest.CaptureFixture[str]) -> None:
    (path,) = [it[0] for it in dataset_items("us", 10_000) if it[0].name == "car22.jpg"]
    assert cli.main(["-q", str(path)]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    assert line["plates"][0]["text"] == "CH0P8Y"
