"""A plate read's confidence: the probability that the whole read is exactly right.

Why not the recognizer's own score: HQ decides from the confidence which reads a person must look
at, and the recognizer's mean character probability claims 0.99 for a sign's phone number or a
half-read plate (on the ``us`` dev split, 64% of the wrong reads claimed >= 0.9). What separates
right from wrong reads better is how well the text fits a plate format (the syntax score) and the
weakest character, not only the average. A small logistic model over three figures of each read,
fitted on the dev splits by ``bench/calibrate_confidence.py`` (``--write`` refreshes the table),
turns them into a probability; its coefficients are data, in ``plate_confidence.toml``.

The syntax score used is the one without the post's preferred-country boost: a preference is
configuration, not evidence that this read is right.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from edge.errors import ModelError

FEATURES = ("logit_ocr_mean", "logit_ocr_min", "syntax_score")
_EPS = 1e-4


class ReadEvidence(NamedTuple):
    """What a plate read's confidence is computed from."""

    ocr_mean: float  # geometric mean of the character probabilities
    ocr_min: float  # the least sure character
    syntax_score: float  # SyntaxMatch.evidence_score

    def features(self) -> tuple[float, ...]:
        return (_logit(self.ocr_mean), _logit(self.ocr_min), self.syntax_score)


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class ConfidenceModel:
    """Standardise the features, weigh them, squash: a logistic regression, nothing more."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def probability(self, evidence: ReadEvidence) -> float:
        z = self.bias
        for x, m, s, w in zip(evidence.features(), self.mean, self.scale, self.weights, strict=True):
            z += w * (x - m) / s
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    @classmethod
    def from_table(cls, data: dict[str, Any], where: str) -> ConfidenceModel:
        if tuple(data.get("features", ())) != FEATURES:
            raise ModelError(f"{where}: features must be {list(FEATURES)}, got {data.get('features')!r}")
        cols = {}
        for key in ("mean", "scale", "weights"):
            value = data.get(key)
            if not isinstance(value, list) or len(value) != len(FEATURES) or not all(
                isinstance(v, int | float) for v in value
            ):
                raise ModelError(f"{where}: {key} must be {len(FEATURES)} numbers, got {value!r}")
            cols[key] = tuple(float(v) for v in value)
        if any(s <= 0 for s in cols["scale"]):
            raise ModelError(f"{where}: every scale must be > 0, got {list(cols['scale'])}")
        bias = data.get("bias")
        if not isinstance(bias, int | float):
            raise ModelError(f"{where}: bias must be a number, got {bias!r}")
        return cls(cols["mean"], cols["scale"], cols["weights"], float(bias))

    @classmethod
    def load(cls, path: Path | None = None) -> ConfidenceModel:
        if path is None:
            return _packaged()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ModelError(f"cannot read the plate confidence table {path}: {err}") from err
        return cls.from_table(data, str(path))


@cache
def _packaged() -> ConfidenceModel:
    ref = resources.files("edge.recognition").joinpath("plate_confidence.toml")
    try:
        data = tomllib.loads(ref.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ModelError(f"cannot read the packaged plate confidence table {ref}: {err}") from err
    return ConfidenceModel.from_table(data, str(ref))
