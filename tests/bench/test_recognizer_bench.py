"""The recognizer bench, and the whole-pipeline bench with a candidate recognizer, on a small
dataset of synthetic lane frames written the way the OpenALPR benchmark lays its files out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import pytest

from bench import accuracy, recognizer
from edge.recognition.models import find_models_dir
from tests.bench.conftest import PLATES


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


def test_each_degradation_changes_the_photo_as_it_says(dataset: Path) -> None:
    img = cv2.imread(str(dataset / "xx" / "p0.jpg"))
    plate = accuracy.load_split(dataset, "xx")[0][1]
    grey, k = accuracy.DEGRADE["grey"](img, plate)
    assert k == 1.0 and (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    half, k = accuracy.DEGRADE["half"](img, plate)
    assert k == 0.5 and half.shape[:2] == (img.shape[0] // 2, img.shape[1] // 2)
    jpeg, _ = accuracy.DEGRADE["jpeg25"](img, plate)
    assert jpeg.shape == img.shape and 0 < cv2.absdiff(jpeg, img).mean() < 10
    dusk, _ = accuracy.DEGRADE["dusk"](img, plate)
    assert dusk.mean() < img.mean() / 2
    # The smear runs along rows only: a horizontal edge stays sharp, a vertical one is spread.
    bars = img.copy()
    bars[:, :] = 0
    bars[:, bars.shape[1] // 2 :] = 255
    bars[bars.shape[0] // 2 :, :] = 255
    smeared, _ = accuracy.DEGRADE["motion"](bars, plate)
    row = smeared[10, :, 0].astype(int)
    col = smeared[:, 10, 0].astype(int)
    assert ((row > 0) & (row < 255)).sum() >= 3  # the vertical edge in a row, spread over pixels
    assert ((col > 0) & (col < 255)).sum() == 0  # the horizontal edge in a column, untouched


def test_the_pipeline_runs_on_degraded_photos(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in accuracy.DEGRADE:
        assert accuracy.main(["--dataset", str(dataset), "--split", "xx", "--degrade", name]) == 0
        assert _last_json(capsys.readouterr().out)["xx"]["photos"] == len(PLATES)


def test_stage_timing_on_photos_sums_to_the_photo(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench import recognition_lane

    assert recognition_lane.main(["--photos", "xx", "--dataset", str(dataset)]) == 0
    res = _last_json(capsys.readouterr().out)["xx"]
    assert res["photos"] == 3
    assert res["detector"]["calls_per_photo"] >= 1 and res["recognizer"]["calls_per_photo"] >= 1
    assert 0 < res["detector_share"] < 1 and 0 < res["recognizer_share"] < 1
    assert res["detector_share"] + res["recognizer_share"] <= 1
    assert res["photo"]["p95_ms"] >= res["photo"]["median_ms"] > 0


def test_stage_timing_names_a_missing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench import recognition_lane

    assert recognition_lane.main(["--photos", "xx", "--dataset", str(tmp_path / "nowhere")]) == 2
    assert "dataset not found" in capsys.readouterr().err


def test_a_lane_is_measured_on_degraded_frames(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from bench import recognition_lane

    boxes: list[tuple[int, int, int, int]] = []
    grey = accuracy.DEGRADE["grey"]

    def seen(img: Any, box: tuple[int, int, int, int]) -> Any:
        boxes.append(box)
        return grey(img, box)

    monkeypatch.setitem(accuracy.DEGRADE, "grey", seen)
    assert recognition_lane.main(["--seconds", "6", "--fps", "1", "--degrade", "grey", "-v"]) == 0
    res = _last_json(capsys.readouterr().out)
    assert res["degrade"] == "grey" and res["frames"] == 6
    # Every frame was changed first, with a box to size the change by.
    assert len(boxes) == 6 and all(len(b) == 4 and all(isinstance(v, int) for v in b) for b in boxes)
