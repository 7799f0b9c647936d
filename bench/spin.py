"""How long onnxruntime's idle threads should spin: the whole reader at several settings, photo by photo.

    ./dev bench spin                                   # 0 (never spin) against 30, 100 and 300 us
    ./dev bench spin --spin-us 0 100 1000 --split us --limit 60 --json spin.json

A worker thread that sleeps between two operators has to be woken for the next; one that spins for
ever competes with Python, the other model and the lanes' threads for the same cores
(``recognition.spin_us``, ``edge.recognition.models.open_session``). Which bound is best depends on the
CPU and on how slow a wake-up is (a VM's is slow), so a post's CPU should be measured, not guessed.

Every setting gets a reader of its own in this one process, and each photo is read by all of them in
turn, the order rotating photo by photo: a VM whose speed wanders from minute to minute (ours do, by
a quarter) then skews every setting alike. It prints, per split and setting, the median and the sum
of the photos' times, their ratio to the first setting (the baseline), and how many photos were read
differently from the baseline (spinning changes no arithmetic, so it must be 0).
"""

from __future__ import annotations

import statistics
import sys
import time

import cv2

from bench._common import header, ratio, table, write_json
from bench.accuracy import load_split, photo_bench_parser
from edge.config import RecognitionSection
from edge.recognition.reader import PlateReader


def main(argv: list[str] | None = None) -> int:
    ap = photo_bench_parser(__doc__)
    ap.add_argument("--spin-us", type=int, nargs="+", default=[0, 30, 100, 300],
                    help="settings to compare, the first the baseline (0: never spin)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON (- for stdout)")
    args = ap.parse_args(argv)
    if any(s < 0 for s in args.spin_us) or len(set(args.spin_us)) != len(args.spin_us):
        ap.error("--spin-us takes distinct settings >= 0")
    if not args.dataset.is_dir():
        print(f"dataset not found at {args.dataset} (use --dataset)", file=sys.stderr)
        return 2
    header(f"Idle-thread spin of the plate reader's models, {args.threads} threads")
    settings: list[int] = args.spin_us
    readers = {s: PlateReader(RecognitionSection.model_validate({"threads": args.threads, "spin_us": s}))
               for s in settings}
    rows = []
    for split in args.split:
        items = load_split(args.dataset, split)[: args.limit or None]
        times: dict[int, list[float]] = {s: [] for s in settings}
        differ = 0
        for i, (path, _box, _text) in enumerate(items):
            img = cv2.imread(str(path))
            if img is None:
                print(f"  {path.name}: unreadable, skipped", file=sys.stderr)
                continue
            if i == 0:
                for r in readers.values():
                    r.read(img, still=True)  # warm-up, not timed
            reads = {}
            for s in settings[i % len(settings):] + settings[: i % len(settings)]:
                t0 = time.perf_counter()
                out = readers[s].read(img, still=True)
                times[s].append(time.perf_counter() - t0)
                reads[s] = [(r.kind, r.text, round(r.confidence, 6)) for r in out]
            differ += any(reads[s] != reads[settings[0]] for s in settings[1:])
            print(f"\r{split}: {i + 1}/{len(items)} photos", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        base = times[settings[0]]
        for s in settings:
            t = times[s]
            rows.append({
                "split": split, "spin_us": s, "photos": len(t),
                "median_ms": 1000 * statistics.median(t) if t else None,
                "sum_s": sum(t),
                "median_x": ratio(statistics.median(t), statistics.median(base)) if t else None,
                "sum_x": ratio(sum(t), sum(base)) if t else None,
                "reads_differ": differ if s != settings[0] else 0,
            })
    table(rows, ["split", "spin_us", "photos", "median_ms", "sum_s", "median_x", "sum_x", "reads_differ"],
          title=f"baseline: spin_us {settings[0]} (x: time against it; reads_differ must be 0)")
    write_json(args.json, "spin", {"settings": settings, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
