"""Real photos from the OpenALPR benchmark (the dev splits), a spread of each split.

Skipped when the shared dataset is not on this machine. The full figures come from
``python -m bench.accuracy``; this only guards against a reader that stopped reading real plates.
"""

from __future__ import annotations

import cv2

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
