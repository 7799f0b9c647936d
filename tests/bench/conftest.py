"""A small dataset of synthetic lane frames laid out as the OpenALPR benchmark lays its files out,
for the benches that read the benchmark photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from tests.recognition.conftest import lane_frame

PLATES = ["01 A 123 BC", "40 777 ABC", "10 B 456 CD"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dataset")
    split = root / "xx"
    split.mkdir()
    for i, display in enumerate(PLATES):
        frame, (x, y, w, h) = lane_frame(display, "UZ", plate_h=44, seed=i)
        cv2.imwrite(str(split / f"p{i}.jpg"), frame)
        (split / f"p{i}.txt").write_text(f"p{i}.jpg\t{x}\t{y}\t{w}\t{h}\t{display.replace(' ', '')}\n")
    return root
