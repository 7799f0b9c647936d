"""The recognizer bench, and the whole-pipeline bench with a candidate recognizer, on a small
dataset of synthetic lane frames written the way the OpenALPR benchmark lays its files out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest

from bench import accuracy, recognizer
from edge.recognition.models import find_models_dir
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


def _last_json(out: str) -> dict:  # type: ignore[type-arg]
    return json.loads(out.strip().splitlines()[-1])


def test_the_shipped_recognizer_reads_the_plates(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert recognizer.main(["--dataset", str(dataset), "--split", "xx"]) == 0
    out = capsys.readouterr().out
    assert "xx: 3 plates, text found in 3" in out
    res = _last_json(out)["xx"]["shipped"]
    assert res["exact_after_syntax"] == 1.0 and res["ms_per_crop"] > 0


def test_two_models_are_compared_crop_for_crop(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = find_models_dir() / "PP-OCRv6_rec_small.onnx"
    copy = tmp_path / "candidate.onnx"
    shutil.copyfile(shipped, copy)
    assert recognizer.main(["--dataset", str(dataset), "--split", "xx", "--model", str(shipped),
                            "--model", str(copy)]) == 0
    out = capsys.readouterr().out
    res = _last_json(out)["xx"]
    assert res[str(shipped)]["exact_as_read"] == res[str(copy)]["exact_as_read"]
    assert res["oracle"] == 1.0 and "all right or all wrong: 100.0%" in out


@pytest.mark.parametrize("bench", [recognizer, accuracy])
def test_a_file_that_is_no_recognizer_is_refused(
    bench: object, dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = "--model" if bench is recognizer else "--rec-model"
    detector = find_models_dir() / "PP-OCRv6_det_small.onnx"
    main = bench.main  # type: ignore[attr-defined]
    assert main(["--dataset", str(dataset), "--split", "xx", flag, str(detector)]) == 2
    assert "no 'character' metadata" in capsys.readouterr().err
    assert main(["--dataset", str(dataset), "--split", "xx", flag, str(tmp_path / "missing.onnx")]) == 2
    assert "no recognizer model at" in capsys.readouterr().err


def test_the_pipeline_runs_with_a_candidate_recognizer(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "candidate.onnx"
    shutil.copyfile(find_models_dir() / "PP-OCRv6_rec_small.onnx", copy)
    assert accuracy.main(["--dataset", str(dataset), "--split", "xx", "--rec-model", str(copy)]) == 0
    captured = capsys.readouterr()
    assert f"recognizer: {copy} (not the shipped model)" in captured.err
    assert _last_json(captured.out)["xx"]["exact"] == 1.0
