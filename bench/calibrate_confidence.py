"""How far a plate read's confidence can be trusted, and the fit that makes it a probability.

Run: ``./dev bench calibrate_confidence [--split br us] [--write]``

Reads every dev photo with the whole pipeline, keeps the best plate's evidence (OCR mean, weakest
character, syntax score; ``edge.recognition.confidence``) and whether it was exactly right, then:

- fits the logistic model on all reads and, repeated over 5 shuffles of 5 folds, on 4/5 of them to
  score the held-out fifth, so the figures printed are for reads the fit never saw;
- prints, for the recognizer's mean character probability, the packaged table and the held-out
  fit: Brier score, AUC (how well right reads rank above wrong ones), and at 0.8/0.9/0.95 the
  precision, coverage and the share of wrong reads that still claim that much; and a reliability
  table (predicted against observed, in bins);
- with ``--write``, stores the fit on all reads in ``edge/recognition/plate_confidence.toml``.

Refit after changing how the reader scores syntaxes or reads characters: the features move with it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from bench.accuracy import DEFAULT_DATASET, calibration, load_split
from edge.config import RecognitionSection
from edge.recognition.confidence import FEATURES, ConfidenceModel, ReadEvidence
from edge.recognition.reader import PlateReader

TABLE = Path(__file__).resolve().parents[1] / "edge" / "recognition" / "plate_confidence.toml"
LEVELS = (0.8, 0.9, 0.95)
BINS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 1.0001)
L2 = 1.0  # on standardised features; 0.1-10 measured within 0.003 Brier of each other


def collect(reader: PlateReader, root: Path, splits: list[str]) -> tuple[list[ReadEvidence], np.ndarray]:
    evidence: list[ReadEvidence] = []
    right: list[bool] = []
    for split in splits:
        items = load_split(root, split)
        for k, (path, _box, gt_text) in enumerate(items, 1):
            print(f"\r{split}: {k}/{len(items)}", end="", file=sys.stderr, flush=True)
            img = cv2.imread(str(path))
            if img is None:
                continue
            plates = [r for r in reader.read(img, still=True) if r.kind == "plate" and r.evidence is not None]
            if plates and plates[0].evidence is not None:
                evidence.append(plates[0].evidence)
                right.append(plates[0].text == gt_text)
        print(file=sys.stderr)
    return evidence, np.array(right, float)


def fit(x: np.ndarray, y: np.ndarray, l2: float = L2) -> ConfidenceModel:
    """L2-regularised logistic regression by Newton's method (four parameters: it converges in a
    handful of steps, with no learning rate to tune)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale <= 0] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2)
    reg[-1] = 0.0  # the bias is not shrunk
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        grad = z.T @ (p - y) + reg * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return ConfidenceModel(tuple(mean.tolist()), tuple(scale.tolist()), tuple(w[:-1].tolist()), float(w[-1]))


def held_out(
    x: np.ndarray, y: np.ndarray, evidence: list[ReadEvidence], repeats: int = 5, folds: int = 5
) -> np.ndarray:
    """Each read's probability from fits that never saw it, averaged over shuffles."""
    out = np.zeros((repeats, len(y)))
    for r in range(repeats):
        order = np.random.default_rng(r).permutation(len(y))
        for part in np.array_split(order, folds):
            train = np.setdiff1d(order, part)
            model = fit(x[train], y[train])
            out[r, part] = [model.probability(evidence[i]) for i in part]
    return out.mean(axis=0)


def figures(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    pos, neg = p[y == 1], p[y == 0]
    auc = float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()) \
        if len(pos) and len(neg) else float("nan")
    graded = [(float(c), bool(ok)) for c, ok in zip(p, y == 1, strict=True)]
    return {"brier": float(((p - y) ** 2).mean()), "auc": auc, **calibration(graded, LEVELS)}


def reliability(p: np.ndarray, y: np.ndarray) -> list[str]:
    rows = []
    for lo, hi in itertools.pairwise(BINS):
        sel = (p >= lo) & (p < hi)
        if sel.any():
            rows.append(f"    [{lo:.2f}, {min(hi, 1.0):.2f})  {int(sel.sum()):4d} reads  "
                        f"predicted {p[sel].mean():.3f}  observed {y[sel].mean():.3f}")
    return rows


def render(model: ConfidenceModel, splits: list[str], n: int, wrong: int, oof: dict[str, float],
           raw: dict[str, float]) -> str:
    def nums(v: tuple[float, ...]) -> str:
        return "[" + ", ".join(f"{x:.6g}" for x in v) + "]"

    return (
        "# Plate read confidence: P(the read is exactly right) =\n"
        "#   1 / (1 + exp(-(bias + sum(weights * (feature - mean) / scale))))\n"
        "# over the features of edge/recognition/confidence.py. Written by\n"
        f"# `./dev bench calibrate_confidence --write` on {dt.date.today().isoformat()} from the "
        f"{', '.join(splits)} dev splits:\n"
        f"# {n} best reads, {wrong} of them wrong. Held out (5 x 5-fold): Brier {oof['brier']:.4f}, "
        f"AUC {oof['auc']:.3f};\n"
        f"# the recognizer's mean character probability alone: Brier {raw['brier']:.4f}, AUC {raw['auc']:.3f}.\n"
        f"features = {json.dumps(list(FEATURES))}\n"
        f"mean = {nums(model.mean)}\n"
        f"scale = {nums(model.scale)}\n"
        f"weights = {nums(model.weights)}\n"
        f"bias = {model.bias:.6g}\n"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", nargs="+", default=["br", "us"])
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true", help=f"store the fit in {TABLE} (or --out)")
    ap.add_argument("--out", type=Path, default=TABLE, help="where --write stores the table")
    args = ap.parse_args(argv)
    if not args.dataset.is_dir():
        print(f"error: no dataset at {args.dataset}", file=sys.stderr)
        return 2
    reader = PlateReader(RecognitionSection.model_validate({"threads": args.threads}))
    evidence, y = collect(reader, args.dataset, args.split)
    wrong = int((y == 0).sum())
    if wrong < 5 or len(y) - wrong < 5:
        print(f"error: {len(y)} reads, {wrong} wrong: too few of each to fit", file=sys.stderr)
        return 1
    x = np.array([e.features() for e in evidence])
    rows = {
        "ocr_mean": np.array([e.ocr_mean for e in evidence]),
        "packaged": np.array([reader.calibration.probability(e) for e in evidence]),
        "held_out": held_out(x, y, evidence),
    }
    results = {name: figures(p, y) for name, p in rows.items()}
    print(f"{len(y)} best reads ({', '.join(args.split)}), {wrong} wrong")
    for name in rows:
        f = results[name]
        levels = "  ".join(
            f"@{t}: precision {f[f'precision_at_{t}']:.3f} coverage {f[f'coverage_at_{t}']:.2f} "
            f"wrong≥ {f[f'wrong_above_{t}']:.2f}" for t in LEVELS
        )
        print(f"  {name:9s} Brier {f['brier']:.4f}  AUC {f['auc']:.3f}  {levels}")
    for name in ("ocr_mean", "held_out"):
        print(f"  reliability, {name}:")
        print("\n".join(reliability(rows[name], y)))
    model = fit(x, y)
    print(f"fit on all reads: weights {[round(w, 3) for w in model.weights]} bias {model.bias:.3f}")
    print(json.dumps({"reads": len(y), "wrong": wrong, **{k: v for k, v in results.items()}}))
    if args.write:
        args.out.write_text(render(model, args.split, len(y), wrong, results["held_out"], results["ocr_mean"]),
                            encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
