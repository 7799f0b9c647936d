"""Our own DB post-processing and CTC decoding, on hand-made inputs with known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.recognition.ocr import ALNUM, TextDetector, crop_quad, order_quad, unclip_rect
from edge.recognition.reader import PlateReader


def test_order_quad_gives_tl_tr_br_bl() -> None:
    pts = np.array([[10, 20], [0, 0], [10, 0], [0, 20]], np.float32)
    assert order_quad(pts).tolist() == [[0, 0], [10, 0], [10, 20], [0, 20]]


def test_unclip_grows_a_rectangle_by_the_db_offset() -> None:
    quad = np.array([[0, 0], [100, 0], [100, 20], [0, 20]], np.float32)
    grown = unclip_rect(quad, 1.5)
    d = 100 * 20 * 1.5 / 240  # area * ratio / perimeter
    w = np.linalg.norm(grown[1] - grown[0])
    h = np.linalg.norm(grown[3] - grown[0])
    assert w == pytest.approx(100 + 2 * d, abs=0.5)
    assert h == pytest.approx(20 + 2 * d, abs=0.5)


def test_detector_boxes_from_a_probability_map(reader: PlateReader) -> None:
    prob = np.zeros((64, 128), np.float32)
    prob[20:30, 10:90] = 0.9
    prob[45:47, 100:102] = 0.9  # a speck: below DB's minimum box side
    det: TextDetector = reader.detector
    boxes = det.boxes_from_map(prob, 256, 128, 0.5, 0.5)
    assert len(boxes) == 1
    big = max(boxes, key=lambda b: b.width)
    x, y, w, h = big.rect
    # The 80x10 map region, grown by DB's unclip offset (~7 map pixels), doubled back to the image.
    assert 0 <= x <= 10 and 22 <= y <= 30
    assert 180 <= w <= 205 and 40 <= h <= 56


def test_ctc_decode_collapses_repeats_and_blanks_and_folds_case(reader: PlateReader) -> None:
    rec = reader.recognizer
    classes = rec.classes
    idx = {c: i for i, c in enumerate(classes)}
    seq = ["A", "A", "<blank>", "A", "b", "b", "-", "7", "<blank>", "<blank>", "Α"]  # last: Greek Alpha
    probs = np.full((len(seq), len(classes)), 1e-6, np.float32)
    for t, c in enumerate(seq):
        probs[t, idx[c]] = 0.9
    line = rec.decode(probs)
    assert line.text == "AAB7A"
    assert len(line.confs) == 5 and all(c == pytest.approx(0.9, abs=0.01) for c in line.confs)
    assert line.probs.shape == (5, len(ALNUM))
    assert ALNUM[int(line.probs[2].argmax())] == "B"


def test_recognizer_reads_a_clean_printed_line(reader: PlateReader) -> None:
    img = np.full((60, 360, 3), 255, np.uint8)
    cv2.putText(img, "AB 1234", (10, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 4, cv2.LINE_AA)
    (line,) = reader.recognizer.recognize([img])
    assert line.text == "AB1234"
    assert line.confidence > 0.8


def test_crop_quad_rectifies_a_rotated_box() -> None:
    img = np.zeros((200, 200, 3), np.uint8)
    quad = np.array([[50, 50], [150, 60], [146, 100], [46, 90]], np.float32)
    crop = crop_quad(img, quad)
    assert crop.shape[1] > crop.shape[0] * 2
