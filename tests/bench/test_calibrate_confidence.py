"""The confidence calibration bench: its fit, the table it writes, and a run on a small dataset."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.calibrate_confidence import fit, main, render
from edge.recognition.confidence import FEATURES, ConfidenceModel, ReadEvidence
from tests.recognition.conftest import lane_frame


def _evidence(rng: np.random.Generator, n: int) -> list[ReadEvidence]:
    mean = rng.uniform(0.6, 0.9999, n)
    return [ReadEvidence(float(m), float(m * rng.uniform(0.7, 1.0)), float(s))
            for m, s in zip(mean, rng.normal(1.5, 1.0, n), strict=True)]


def test_fit_recovers_a_known_model() -> None:
    rng = np.random.default_rng(0)
    evidence = _evidence(rng, 20000)
    x = np.array([e.features() for e in evidence])
    truth = ConfidenceModel(tuple(x.mean(0)), tuple(x.std(0)), (0.5, 0.25, 1.5), 2.0)
    y = (rng.uniform(size=len(x)) < [truth.probability(e) for e in evidence]).astype(float)
    got = fit(x, y)
    assert np.allclose(got.weights, truth.weights, atol=0.1)
    assert got.bias == pytest.approx(truth.bias, abs=0.1)


def test_the_written_table_is_the_fitted_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    evidence = _evidence(rng, 400)
    x = np.array([e.features() for e in evidence])
    y = (rng.uniform(size=len(x)) < 0.8).astype(float)
    model = fit(x, y)
    figures = {"brier": 0.1, "auc": 0.8}
    path = tmp_path / "table.toml"
    path.write_text(render(model, ["aa"], len(y), int((y == 0).sum()), figures, figures))
    loaded = ConfidenceModel.load(path)
    for e in evidence[:50]:
        assert loaded.probability(e) == pytest.approx(model.probability(e), abs=1e-5)


@pytest.mark.slow
def test_a_run_on_a_small_dataset_writes_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    split = tmp_path / "xx"
    split.mkdir()
    plates = ["01 A 123 BC", "40 777 ABC", "01 B 456 CD", "10 777 XYZ", "30 C 789 EF", "25 321 KLM"]
    for i, display in enumerate(plates * 2):
        frame, (x, y, w, h) = lane_frame(display, "UZ", plate_h=44, seed=i)
        cv2.imwrite(str(split / f"p{i}.jpg"), frame)
        truth = display.replace(" ", "") if i < len(plates) else "ZZ999ZZ"  # half of them labelled wrong
        (split / f"p{i}.txt").write_text(f"p{i}.jpg {x} {y} {w} {h} {truth}\n")
    out = tmp_path / "table.toml"
    assert main(["--dataset", str(tmp_path), "--split", "xx", "--write", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "12 best reads (xx), 6 wrong" in printed and "held_out" in printed and "reliability" in printed
    model = ConfidenceModel.load(out)
    assert len(model.weights) == len(FEATURES)


def test_too_few_wrong_reads_to_fit_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    split = tmp_path / "xx"
    split.mkdir()
    frame, (x, y, w, h) = lane_frame("01 A 123 BC", "UZ", plate_h=44)
    cv2.imwrite(str(split / "p.jpg"), frame)
    (split / "p.txt").write_text(f"p.jpg {x} {y} {w} {h} 01A123BC\n")
    assert main(["--dataset", str(tmp_path), "--split", "xx"]) == 1
    assert "too few of each to fit" in capsys.readouterr().err
