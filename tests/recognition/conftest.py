"""Fixtures for the plate reader's tests: one real reader (real ONNX models) shared by the session,
and synthetic lane frames with plates rendered by the synthetic camera's own plate renderer."""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

from edge.config import RecognitionSection
from edge.recognition.reader import PlateReader

REPO = Path(__file__).resolve().parents[2]
DATASET = REPO.parent / "shared" / "datasets" / "openalpr-benchmarks" / "endtoend"


def load_model_tool(name: str) -> ModuleType:
    """A script of ``models/tools`` (not a package: the scripts run from anywhere) as a module."""
    path = REPO / "models" / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def reader() -> Iterator[PlateReader]:
    yield PlateReader(RecognitionSection.model_validate({"threads": 2}))


def lane_frame(display: str, country: str, plate_h: int = 48, seed: int = 0,
               size: tuple[int, int] = (1280, 720)) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A 1280x720 lane frame with one plate on a car-grey body: mild perspective, blur and noise.

    Returns the frame and the plate's box (x, y, w, h) in it.
    """
    from drivers.camera.synthetic import render_plate

    rng = random.Random(f"{display}:{country}:{seed}")
    w, h = size
    frame = np.full((h, w, 3), 105, np.uint8)
    cv2.rectangle(frame, (w // 4, h // 3), (3 * w // 4, h - 40), (70, 80, 95), -1)
    plate = render_plate(display, country, plate_h)
    ph, pw = plate.shape[:2]
    cx, cy = w // 2 + rng.randint(-120, 120), int(h * 0.65) + rng.randint(-40, 40)
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    jitter = [(rng.uniform(-0.03, 0.03) * pw, rng.uniform(-0.06, 0.06) * ph) for _ in range(4)]
    dst = np.array(
        [[cx - pw / 2 + jx, cy - ph / 2 + jy] for (jx, jy) in jitter[:1]]
        + [[cx + pw / 2 + jitter[1][0], cy - ph / 2 + jitter[1][1]]]
        + [[cx + pw / 2 + jitter[2][0], cy + ph / 2 + jitter[2][1]]]
        + [[cx - pw / 2 + jitter[3][0], cy + ph / 2 + jitter[3][1]]],
        np.float32,
    )
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(plate, m, (w, h))
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), m, (w, h))
    frame[mask > 127] = warped[mask > 127]
    blurred = cv2.GaussianBlur(frame, (0, 0), 0.6)
    noise = np.random.default_rng(seed).normal(0, 3.0, blurred.shape)
    out = np.asarray(np.clip(blurred.astype(np.float32) + noise, 0, 255), np.uint8)
    x0, y0 = dst.min(axis=0)
    x1, y1 = dst.max(axis=0)
    return out, (int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def dataset_items(split: str, n: int) -> list[tuple[Path, tuple[int, int, int, int], str]]:
    from bench.accuracy import load_split

    if not (DATASET / split).is_dir():
        pytest.skip(f"OpenALPR benchmark photos not present at {DATASET / split}")
    items = load_split(DATASET, split)
    if not items:
        pytest.skip(f"no annotated photos in {DATASET / split}")
    # Every k-th photo: a spread over the split rather than its first few files.
    step = max(1, len(items) // n)
    return items[::step][:n]
