"""Whole-pipeline accuracy and latency of the plate reader on the OpenALPR benchmark photos.

Run: ``.venv/bin/python -m bench.accuracy [--split br us] [--limit N] [--threads 2]``

Per split it prints exact-match accuracy (the reader's best plate equals the ground truth, spaces
ignored), detection recall (some plate the reader returned overlaps the annotated plate: IoU >= 0.3
or its centre inside the annotated box) and per-photo latency (median, p95) of ``PlateReader.read``,
in one process with the given onnxruntime threads, and how far the confidence can be trusted (of the
reads at or above 0.8 and 0.9, how many are right; how many wrong reads claim that much). The photos
are read from the shared datasets folder and never copied; ``--dataset`` points elsewhere.

The dev photos are daylight colour photos, mostly sharp. ``--degrade`` changes each one first as a
post's camera might (grey infrared frames, half the resolution, heavy JPEG, motion smear, dusk), to
measure how much of the accuracy holds where the lane is not a photographer's.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from bench._common import percentile
from edge.config import RecognitionSection
from edge.errors import ModelError
from edge.recognition.models import open_session
from edge.recognition.ocr import TextRecognizer
from edge.recognition.reader import PlateReader, iou

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "openalpr-benchmarks" / "endtoend"


def load_split(root: Path, split: str) -> list[tuple[Path, tuple[int, int, int, int], str]]:
    """(image, ground-truth box, ground-truth text) for every annotated photo of a split."""
    items = []
    for txt in sorted((root / split).glob("*.txt")):
        parts = txt.read_text().split()
        if len(parts) < 6:
            continue
        name, x, y, w, h, text = parts[:6]
        img = root / split / name
        if img.exists():
            items.append((img, (int(x), int(y), int(w), int(h)), text.upper()))
    return items


def hits(box: tuple[int, int, int, int], gt: tuple[int, int, int, int]) -> bool:
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    inside = gt[0] <= cx <= gt[0] + gt[2] and gt[1] <= cy <= gt[1] + gt[3]
    return inside or iou(box, gt) >= 0.3


CONFIDENCE_LEVELS = (0.8, 0.9)


Box = tuple[int, int, int, int]


# What a post's camera does to a plate that the dev photos do not show, as a name and the change it
# makes to a photo with its plate at ``plate`` (and the factor by which its pixel coordinates scale).
def _grey(img: np.ndarray, plate: Box) -> tuple[np.ndarray, float]:
    """An infrared camera at night: no colour (and so no blue band, no orange ADR plate)."""
    return cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR), 1.0


def _half(img: np.ndarray, plate: Box) -> tuple[np.ndarray, float]:
    """The same scene from a camera of half the resolution (or twice as far)."""
    h, w = img.shape[:2]
    return cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA), 0.5


def _jpeg(img: np.ndarray, plate: Box) -> tuple[np.ndarray, float]:
    """A stream squeezed through a thin link: JPEG at quality 25."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 25])
    squeezed = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
    return (squeezed if squeezed is not None else img), 1.0


def _motion(img: np.ndarray, plate: Box) -> tuple[np.ndarray, float]:
    """A vehicle moving during the exposure: a horizontal smear 4% of the plate's width long (21 mm
    of a 520 mm plate: a truck at 15 km/h under a 1/200 s exposure)."""
    k = max(3, round(plate[2] * 0.04)) | 1
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2, :] = 1.0 / k
    return cv2.filter2D(img, -1, kernel), 1.0


def _dusk(img: np.ndarray, plate: Box) -> tuple[np.ndarray, float]:
    """Dusk without infrared: a third of the light, and the sensor noise that the gain brings."""
    noise = np.random.default_rng(0).normal(0.0, 4.0, img.shape)
    return np.clip(img.astype(np.float32) / 3.0 + noise, 0, 255).astype(np.uint8), 1.0


DEGRADE = {"grey": _grey, "half": _half, "jpeg25": _jpeg, "motion": _motion, "dusk": _dusk}


def run_split(
    reader: PlateReader, root: Path, split: str, limit: int | None, verbose: bool, degrade: str | None = None
) -> dict[str, float]:
    items = load_split(root, split)
    if limit:
        items = items[:limit]
    exact = detected = right_country = 0
    # A split named for one country (br, us) says which country every read should be given.
    country = split.upper() if split.upper() in reader.book.countries else None
    latencies: list[float] = []
    graded: list[tuple[float, bool]] = []  # (confidence of the best read, whether it was right)
    for path, gt_box, gt_text in items:
        img = cv2.imread(str(path))
        if img is None:
            print(f"  {path.name}: unreadable, skipped", file=sys.stderr)
            continue
        if degrade is not None:
            img, k = DEGRADE[degrade](img, gt_box)
            gt_box = (round(gt_box[0] * k), round(gt_box[1] * k), round(gt_box[2] * k), round(gt_box[3] * k))
        t0 = time.perf_counter()
        reads = reader.read(img, still=True)
        latencies.append(time.perf_counter() - t0)
        plates = [r for r in reads if r.kind == "plate"]
        best = plates[0].text if plates else ""
        ok = best == gt_text
        if plates:
            graded.append((plates[0].confidence, ok))
        exact += ok
        right_country += ok and plates[0].country == country
        detected += any(hits(r.box, gt_box) for r in plates)
        if verbose and not ok:
            conf = f"{plates[0].confidence:.2f}" if plates else "-"
            print(f"  {path.name}: want {gt_text} got {best or '-'} ({conf})  others={[r.text for r in plates[1:4]]}")
    n = len(latencies)
    return {
        "photos": n,
        "exact": exact / n if n else float("nan"),
        "detection_recall": detected / n if n else float("nan"),
        # Of the exact reads, the share given the split's country (NaN for a split of many countries).
        "country_right": right_country / exact if country and exact else float("nan"),
        "latency_median_ms": 1000 * statistics.median(latencies) if n else float("nan"),
        "latency_p95_ms": 1000 * p95 if (p95 := percentile(latencies, 95)) is not None else float("nan"),
        **calibration(graded),
    }


def candidate_recognizer(path: Path, threads: int, spin_us: int = 0) -> TextRecognizer:
    """A recognizer from a file that is not (yet) in the manifest, for measuring it: the reader
    itself only ever opens verified models."""
    if not path.is_file():
        raise ModelError(f"no recognizer model at {path}")
    return TextRecognizer(open_session(path, threads, spin_us))


def calibration(graded: list[tuple[float, bool]], levels: tuple[float, ...] = CONFIDENCE_LEVELS) -> dict[str, float]:
    """How far HQ can trust the confidence: the share of confident reads that are right, and the
    share of wrong reads that still claim to be confident."""
    out: dict[str, float] = {}
    wrong = [c for c, ok in graded if not ok]
    for t in levels:
        sure = [ok for c, ok in graded if c >= t]
        out[f"precision_at_{t}"] = sum(sure) / len(sure) if sure else float("nan")
        out[f"coverage_at_{t}"] = len(sure) / len(graded) if graded else float("nan")
        out[f"wrong_above_{t}"] = sum(c >= t for c in wrong) / len(wrong) if wrong else float("nan")
    return out


def photo_bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options of every bench over the benchmark photos: which splits, how many, where, how many
    threads."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    ap.add_argument("--split", nargs="+", default=["br", "us"])
    ap.add_argument("--limit", type=int, default=None, help="the first N photos of each split")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = photo_bench_parser(__doc__)
    ap.add_argument("--det-max-side", type=int, default=None)
    ap.add_argument(
        "--prefer-country",
        action="store_true",
        help="tell the reader the split's country (as a post's config would); default: no preference",
    )
    ap.add_argument("--no-reread", action="store_true", help="skip the second, closer read of candidates")
    ap.add_argument(
        "--rec-model", type=Path, default=None,
        help="measure the pipeline with this recognizer ONNX file instead of the shipped one (a candidate "
        "model, before it is added to models/manifest.toml); compare recognizers alone with bench.recognizer",
    )
    ap.add_argument(
        "--degrade", choices=sorted(DEGRADE), default=None,
        # argparse %-formats help text, and the docstrings say "4% of the plate's width"
        help="change every photo as a post's camera might first: " + "; ".join(
            f"{name}: {(f.__doc__ or '').strip().rstrip('.')}" for name, f in DEGRADE.items()).replace("%", "%%"),
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="print every miss")
    args = ap.parse_args(argv)
    if not args.dataset.is_dir():
        print(f"dataset not found at {args.dataset} (use --dataset)", file=sys.stderr)
        return 2
    results = {}
    for split in args.split:
        kw: dict[str, object] = {"threads": args.threads}
        if args.det_max_side:
            kw["det_max_side"] = args.det_max_side
        if args.prefer_country:
            kw["countries"] = [split.upper()]
        reader = PlateReader(RecognitionSection.model_validate(kw), reread=not args.no_reread)
        if args.rec_model is not None:
            try:
                reader.recognizer = candidate_recognizer(args.rec_model, args.threads, reader.cfg.spin_us)
            except ModelError as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
            print(f"recognizer: {args.rec_model} (not the shipped model)", file=sys.stderr)
        warm = cv2.imread(str(load_split(args.dataset, split)[0][0]))
        if warm is not None:
            reader.read(warm)  # warm-up, not timed
        res = run_split(reader, args.dataset, split, args.limit, args.verbose, args.degrade)
        results[split] = res
        print(
            f"{split}: {res['photos']} photos  exact {100 * res['exact']:.1f}%  "
            f"detection recall {100 * res['detection_recall']:.1f}%  "
            f"latency median {res['latency_median_ms']:.0f} ms  p95 {res['latency_p95_ms']:.0f} ms"
        )
        if not math.isnan(res["country_right"]):
            print(f"    country: {100 * res['country_right']:.1f}% of the exact reads name {split.upper()}")
        for t in CONFIDENCE_LEVELS:
            print(
                f"    confidence >= {t}: {100 * res[f'coverage_at_{t}']:.0f}% of reads, "
                f"{100 * res[f'precision_at_{t}']:.1f}% of them right; "
                f"{100 * res[f'wrong_above_{t}']:.0f}% of the wrong reads claim it"
            )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
