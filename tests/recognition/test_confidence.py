"""A plate read's confidence is the probability that it is right: the packaged table, its checks,
and what it does to reads the old per-character mean over-trusted."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import RecognitionSection
from edge.errors import ModelError
from edge.recognition.confidence import FEATURES, ConfidenceModel, ReadEvidence
from edge.recognition.reader import PlateReader

from .conftest import lane_frame

GOOD = {"features": list(FEATURES), "mean": [0, 0, 0], "scale": [1, 1, 1], "weights": [1, 0, 0], "bias": 0}


def test_the_identity_table_gives_back_the_ocr_mean() -> None:
    # weights (1, 0, 0) around 0: sigmoid(logit(mean)) is the mean, so the formula is the one documented.
    model = ConfidenceModel.from_table(GOOD, "t")
    for p in (0.1, 0.5, 0.93, 0.999):
        assert model.probability(ReadEvidence(p, 0.2, 7.0)) == pytest.approx(p, abs=1e-9)


def test_the_packaged_table_rises_with_every_piece_of_evidence() -> None:
    model = ConfidenceModel.load()
    base = ReadEvidence(0.95, 0.85, 1.0)
    p = model.probability(base)
    assert 0.0 < p < 1.0
    assert model.probability(base._replace(ocr_mean=0.99)) > p
    assert model.probability(base._replace(ocr_min=0.95)) > p
    assert model.probability(base._replace(syntax_score=3.0)) > p


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"features": ["logit_ocr_mean"]}, "features must be"),
        ({"mean": [0, 0]}, "mean must be 3 numbers"),
        ({"weights": [1, "x", 0]}, "weights must be 3 numbers"),
        ({"scale": [1, 0, 1]}, "every scale must be > 0"),
        ({"bias": "high"}, "bias must be a number"),
    ],
)
def test_a_broken_table_is_refused_naming_the_key(change: dict[str, object], message: str) -> None:
    table = {**GOOD, **change}
    with pytest.raises(ModelError, match=f"^where.toml: {message}"):
        ConfidenceModel.from_table(table, "where.toml")


def test_a_table_that_is_not_toml_is_refused_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "conf.toml"
    bad.write_text("features = [\n")
    with pytest.raises(ModelError, match=f"cannot read the plate confidence table {bad}"):
        ConfidenceModel.load(bad)


def test_a_clean_plate_is_sure_and_a_text_of_no_country_is_not(reader: PlateReader) -> None:
    frame, _ = lane_frame("01 A 123 BC", "UZ", plate_h=44)
    plate = reader.read(frame)[0]
    frame, _ = lane_frame("AB12CD34EF", "UZ", plate_h=44)
    loose = reader.read(frame)[0]
    assert plate.syntax == "uz-private" and loose.syntax == "generic"
    assert plate.evidence is not None and loose.evidence is not None
    # The recognizer is surer of the loose text's characters than of the plate's...
    assert loose.evidence.ocr_mean > plate.evidence.ocr_mean
    # ...but only the plate fits a format of its country, with its printed code beside it.
    assert plate.confidence >= 0.99
    assert loose.confidence < 0.9


def test_a_posts_preferred_countries_do_not_raise_the_confidence(reader: PlateReader) -> None:
    frame, _ = lane_frame("01 A 123 BC", "UZ", plate_h=44)
    plain = reader.read(frame)[0]
    preferring = PlateReader(RecognitionSection.model_validate({"countries": ["UZ"]})).read(frame)[0]
    assert preferring.text == plain.text
    assert preferring.confidence == plain.confidence
    assert preferring.evidence == plain.evidence
