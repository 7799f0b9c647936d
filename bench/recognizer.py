"""The text recognizer alone, on the annotated plates: how many it reads exactly, and how fast.

Run: ``.venv/bin/python -m bench.recognizer [--split br us] [--model PATH ...] [--threads 2]``

The whole-pipeline bench (``bench.accuracy``) mixes finding, choosing and reading a plate. This one
measures reading only, so a candidate recognizer (a fine-tuned model, another release) can be
compared with the shipped one in seconds, before it is put in the pipeline with
``bench.accuracy --rec-model``. Each annotated plate is cut as the reader's closer look cuts a
candidate (padded, scaled so its characters are about ``REREAD_CHAR_PX`` tall), the shipped detector
finds its text, and the largest text box is read by every model, the same crop for all.

Per split and model it prints exact reads as the recognizer gave them and after the reader's syntax
step (the line's likeliest reading, a printed code cut off and all), and milliseconds per crop. With
two models or more, it also prints how many plates at least one of them reads right (what an oracle
choosing between them would reach) and how often they are right or wrong together.

A model is any PP-OCR-style CTC recognizer in ONNX: input ``[N, 3, 48, W]``, output ``[N, T, C]``
softmax, with its character list in the ``character`` metadata, as the shipped one has.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from bench.accuracy import candidate_recognizer, load_split, photo_bench_parser
from edge.config import RecognitionSection
from edge.errors import ModelError
from edge.recognition.ocr import TextRecognizer, crop_quad
from edge.recognition.reader import PlateReader, widened

PLATE_LINE_SHARE = 0.5  # a one-line plate's characters are about half its height


def plate_crops(
    reader: PlateReader, root: Path, split: str, limit: int | None
) -> list[tuple[str, str, np.ndarray | None]]:
    """(photo name, ground truth, the plate's main text line or None where no text was found)."""
    return [(name, truth, cuts[0] if cuts else None) for name, truth, cuts in plate_cuts(reader, root, split, limit)]


def plate_cuts(
    reader: PlateReader, root: Path, split: str, limit: int | None, recuts: tuple[float, ...] = ()
) -> list[tuple[str, str, list[np.ndarray] | None]]:
    """(photo name, ground truth, the plate's main text line cut as the closer look cuts it, then cut
    longer or shorter by each of ``recuts`` line heights at both ends, as the reader's vote of cuts
    does; None where no text was found)."""
    out: list[tuple[str, str, list[np.ndarray] | None]] = []
    for path, rect, truth in load_split(root, split)[:limit]:
        img = cv2.imread(str(path))
        if img is None:
            print(f"  {path.name}: unreadable, skipped", file=sys.stderr)
            continue
        region, _, _, boxes = reader.closer_look(img, rect, PLATE_LINE_SHARE * rect[3])
        if not boxes:
            out.append((path.name, truth, None))
            continue
        main_line = max(boxes, key=lambda b: b.width * b.height)
        quads = [main_line.quad] + [widened(main_line.quad, r) for r in recuts]
        out.append((path.name, truth, [crop_quad(region, q) for q in quads]))
    return out


def read_all(
    recognizer: TextRecognizer, reader: PlateReader, crops: list[tuple[str, str, np.ndarray | None]]
) -> tuple[list[str], list[str], float]:
    """Per crop: the text as read, what the reader's syntax step makes of it, and the ms per crop."""
    raw: list[str] = []
    matched: list[str] = []
    took = 0.0
    for _, _, crop in crops:
        if crop is None:
            raw.append("")
            matched.append("")
            continue
        t0 = time.perf_counter()
        line = recognizer.recognize([crop])[0]
        took += time.perf_counter() - t0
        readings = reader.line_readings(line, crop)
        raw.append(line.text)
        matched.append(readings[0].text if readings else "")  # the reader reports no plate there
    n = sum(c is not None for _, _, c in crops)
    return raw, matched, 1000 * took / max(n, 1)


def main(argv: list[str] | None = None) -> int:
    ap = photo_bench_parser(__doc__)
    ap.add_argument(
        "--model", type=Path, action="append", default=[],
        help="a recognizer ONNX file to measure (repeatable); default: the shipped one",
    )
    args = ap.parse_args(argv)
    if not args.dataset.is_dir():
        print(f"dataset not found at {args.dataset} (use --dataset)", file=sys.stderr)
        return 2
    reader = PlateReader(RecognitionSection.model_validate({"threads": args.threads}))
    models: dict[str, TextRecognizer] = {}
    try:
        if not args.model:
            models["shipped"] = reader.recognizer
        for path in args.model:
            models[str(path)] = candidate_recognizer(path, args.threads, reader.cfg.spin_us)
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    results: dict[str, dict[str, object]] = {}
    for split in args.split:
        crops = plate_crops(reader, args.dataset, split, args.limit)
        truths = [t for _, t, _ in crops]
        n = len(crops)
        found = sum(c is not None for _, _, c in crops)
        print(f"{split}: {n} plates, text found in {found}")
        right: dict[str, list[bool]] = {}
        split_res: dict[str, object] = {"plates": n, "text_found": found}
        for name, rec in models.items():
            raw, matched, ms = read_all(rec, reader, crops)
            ok_raw = [r == t for r, t in zip(raw, truths, strict=True)]
            right[name] = [m == t for m, t in zip(matched, truths, strict=True)]
            split_res[name] = {"exact_as_read": sum(ok_raw) / n, "exact_after_syntax": sum(right[name]) / n,
                               "ms_per_crop": ms}
            print(f"  {name}: exact as read {100 * sum(ok_raw) / n:.1f}%, after syntax "
                  f"{100 * sum(right[name]) / n:.1f}%, {ms:.1f} ms a crop")
        if len(models) > 1:
            either = [any(r) for r in zip(*right.values(), strict=True)]
            agree = [len(set(r)) == 1 for r in zip(*right.values(), strict=True)]
            split_res["oracle"] = sum(either) / n
            print(f"  at least one right: {100 * sum(either) / n:.1f}%; "
                  f"all right or all wrong: {100 * sum(agree) / n:.1f}%")
        results[split] = split_res
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
