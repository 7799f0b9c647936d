"""Per-stage latency of the plate reader and the frames a second one lane can sustain, on the
synthetic camera's 1280x720 frames (and, with ``--photos``, on the benchmark photos).

Run: ``./dev bench recognition_lane [--seconds 60] [--fps 4] [--threads 2] [--far-rest 2] [--degrade grey]
[--photos us br]``

It renders a lane's frames at ``--fps`` over ``--seconds`` of scene time (vehicles every 12 s), reads
every frame in one process, and prints: median/p95 time per frame, the time each stage took (detector
passes, recognizer batches), the sustainable frames a second (1 / mean time per frame), and how many
vehicles were read exactly after voting across their frames. Every frame is read (no motion gate),
each as a lane camera reads one: with the look for far plates rested ``--far-rest`` frames after one
that read nothing (``edge.recognition.gating.FarLook``; ``--far-rest 0`` for every frame).
``--degrade`` changes every frame first, as ``bench.accuracy``'s does (``grey``: an infrared camera at
night; ``motion``: the smear of a moving vehicle), so the vehicles read exactly are a lane's figure
under those conditions.

With ``--photos SPLIT...`` it reads the benchmark photos of those splits instead and prints, per split,
where a photo's time goes: the detector's and the recognizer's milliseconds per photo (all their calls
summed), and the rest (cropping, syntax, voting in Python). That split of the time is what decides
which stage to make faster.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2

from bench._common import percentile
from bench.accuracy import DEFAULT_DATASET, DEGRADE, load_split
from edge.config import CameraSection, RecognitionSection
from edge.recognition.gating import FarLook
from edge.recognition.reader import PlateReader
from edge.recognition.voting import PlateVoter


def _timed(stats: dict[str, list[float]], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            stats[name].append(time.perf_counter() - t0)

    return wrapper


def photo_stages(reader: PlateReader, stats: dict[str, list[float]], root: Path, split: str) -> dict[str, Any]:
    """Each photo's time, and the detector's and recognizer's share of it (their calls summed)."""
    rows: list[tuple[float, float, float, int, int]] = []  # total, detector, recognizer (s), their calls
    for path, _box, _text in load_split(root, split):
        img = cv2.imread(str(path))
        if img is None:
            continue
        stats.clear()
        t0 = time.perf_counter()
        reader.read(img, still=True)
        total = time.perf_counter() - t0
        rows.append((total, sum(stats["detector"]), sum(stats["recognizer"]),
                     len(stats["detector"]), len(stats["recognizer"])))
    if not rows:
        return {"photos": 0}

    def ms(values: list[float]) -> dict[str, float]:
        return {"median_ms": round(1000 * statistics.median(values), 1),
                "mean_ms": round(1000 * statistics.fmean(values), 1)}

    totals = [r[0] for r in rows]
    return {
        "photos": len(rows),
        "photo": {**ms(totals), "p95_ms": round(1000 * (percentile(totals, 95) or 0.0), 1)},
        "detector": {**ms([r[1] for r in rows]), "calls_per_photo": round(statistics.fmean(r[3] for r in rows), 2)},
        "recognizer": {**ms([r[2] for r in rows]), "calls_per_photo": round(statistics.fmean(r[4] for r in rows), 2)},
        "rest": ms([r[0] - r[1] - r[2] for r in rows]),
        "detector_share": round(sum(r[1] for r in rows) / sum(totals), 3),
        "recognizer_share": round(sum(r[2] for r in rows) / sum(totals), 3),
    }


def main(argv: list[str] | None = None) -> int:
    from drivers.camera.synthetic import SceneRenderer
    from drivers.sim.traffic import Traffic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--det-max-side", type=int, default=1280)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--far-rest", type=int, default=CameraSection.model_fields["far_rest_frames"].default,
                    help="frames read without the look for far plates after one that read nothing, as a lane "
                    "camera's far_rest_frames (0: every frame gets it)")
    ap.add_argument("--photos", nargs="+", metavar="SPLIT", default=None,
                    help="time the stages on these splits of the benchmark photos instead of synthetic frames")
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--degrade", choices=sorted(DEGRADE), default=None,
                    help="change every synthetic frame first, as bench.accuracy's --degrade does")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every vehicle not read exactly")
    args = ap.parse_args(argv)

    reader = PlateReader(RecognitionSection.model_validate({"threads": args.threads,
                                                            "det_max_side": args.det_max_side}))
    stats: dict[str, list[float]] = defaultdict(list)
    reader.detector.detect = _timed(stats, "detector", reader.detector.detect)  # type: ignore[method-assign]
    reader.recognizer.recognize = _timed(stats, "recognizer", reader.recognizer.recognize)  # type: ignore[method-assign]
    if args.photos:
        if not args.dataset.is_dir():
            print(f"dataset not found at {args.dataset} (use --dataset)", file=sys.stderr)
            return 2
        print(json.dumps({split: photo_stages(reader, stats, args.dataset, split) for split in args.photos}))
        return 0

    traffic = Traffic(seed=args.seed, epoch=0.0)
    scene = SceneRenderer(traffic, seed=args.seed)
    per_frame: list[float] = []
    far = FarLook(args.far_rest)
    rested = 0
    voters: dict[int, PlateVoter] = {}
    truth: dict[int, str] = {}
    n = int(args.seconds * args.fps)
    for k in range(n):
        t = k / args.fps
        frame, seen = scene.render(t)
        if args.degrade is not None:
            # The plate's box sets the motion smear's length; a frame without a plate has nothing
            # it would smear differently.
            x, y, w, h = seen[0]["box"] if seen else (0, 0, 100, 20)
            frame, _ = DEGRADE[args.degrade](frame, (x, y, w, h))
        looked_far = far.allowed()
        t0 = time.perf_counter()
        reads = reader.read(frame, far=looked_far)
        per_frame.append(time.perf_counter() - t0)
        far.seen(bool(reads))
        rested += not looked_far
        v = traffic.vehicle_at(t)
        if v is not None:
            truth[v.index] = v.plate
            voter = voters.setdefault(v.index, PlateVoter())
            voter.extend([r for r in reads if r.kind == "plate"])
    exact = 0
    for i, plate in sorted(truth.items()):
        best = voters[i].best()
        exact += best is not None and best[0].text == plate
        if args.verbose and (best is None or best[0].text != plate):
            got = f"{best[0].text} ({best[0].country}, {best[1]:.2f}, {best[2]} reads)" if best else "nothing"
            print(f"  vehicle {i}: {plate} read as {got}", file=sys.stderr)
    mean = statistics.fmean(per_frame)
    out = {
        "frames": n,
        "frame_median_ms": round(1000 * statistics.median(per_frame), 1),
        "frame_p95_ms": round(1000 * (percentile(per_frame, 95) or 0.0), 1),
        "sustained_fps": round(1 / mean, 2),
        "detector_calls_per_frame": round(len(stats["detector"]) / n, 2),
        "detector_median_ms": round(1000 * statistics.median(stats["detector"]), 1) if stats["detector"] else None,
        "recognizer_calls_per_frame": round(len(stats["recognizer"]) / n, 2),
        "recognizer_median_ms": round(1000 * statistics.median(stats["recognizer"]), 1)
        if stats["recognizer"] else None,
        "frames_without_far_look": rested,
        "degrade": args.degrade,
        "vehicles": len(truth),
        "vehicles_read_exactly": exact,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
