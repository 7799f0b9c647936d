"""Fixtures for the plate reader's tests: one real reader (real ONNX models) shared by the session,
and synthetic lane frames with plates rendered by the synthetic camera's own plate renderer
(``lane_frame``: :func:`drivers.camera.synthetic.plate_photo`)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from drivers.camera.synthetic import plate_photo
from edge.config import RecognitionSection
from edge.recognition.reader import PlateReader

lane_frame = plate_photo  # the tests' name for it

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
