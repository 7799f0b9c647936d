"""Per-stage latency of the plate reader and the frames a second one lane can sustain, on the
synthetic camera's 1280x720 frames (and, with ``--photos``, on the benchmark photos).

Run: ``.venv/bin/python -m bench.recognition_lane [--seconds 60] [--fps 4] [--threads 2]``

It renders a lane's frames at ``--fps`` over ``--seconds`` of scene time (vehicles every 12 s), reads
every frame in one process, and prints: median/p95 time per frame, the time each stage took (detector
passes, recognizer batches), the sustainable frames a second (1 / mean time per frame), and how many
vehicles were read exactly after voting across their frames.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from edge.config import RecognitionSection
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


def main(argv: list[str] | None = None) -> int:
    from drivers.camera.synthetic import SceneRenderer
    from drivers.sim.traffic import Traffic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--det-max-side", type=int, default=1280)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args(argv)

    reader = PlateReader(RecognitionSection.model_validate({"threads": args.threads,
                                                            "det_max_side": args.det_max_side}))
    stats: dict[str, list[float]] = defaultdict(list)
    reader.detector.detect = _timed(stats, "detector", reader.detector.detect)  # type: ignore[method-assign]
    reader.recognizer.recognize = _timed(stats, "recognizer", reader.recognizer.recognize)  # type: ignore[method-assign]

    traffic = Traffic(seed=args.seed, epoch=0.0)
    scene = SceneRenderer(traffic, seed=args.seed)
    per_frame: list[float] = []
    voters: dict[int, PlateVoter] = {}
    truth: dict[int, str] = {}
    n = int(args.seconds * args.fps)
    for k in range(n):
        t = k / args.fps
        frame, _ = scene.render(t)
        t0 = time.perf_counter()
        reads = reader.read(frame)
        per_frame.append(time.perf_counter() - t0)
        v = traffic.vehicle_at(t)
        if v is not None:
            truth[v.index] = v.plate
            voter = voters.setdefault(v.index, PlateVoter())
            voter.extend([r for r in reads if r.kind == "plate"])
    exact = sum(1 for i, plate in truth.items() if (b := voters[i].best()) is not None and b[0].text == plate)
    mean = statistics.fmean(per_frame)
    out = {
        "frames": n,
        "frame_median_ms": round(1000 * statistics.median(per_frame), 1),
        "frame_p95_ms": round(1000 * sorted(per_frame)[int(0.95 * (n - 1))], 1),
        "sustained_fps": round(1 / mean, 2),
        "detector_calls_per_frame": round(len(stats["detector"]) / n, 2),
        "detector_median_ms": round(1000 * statistics.median(stats["detector"]), 1) if stats["detector"] else None,
        "recognizer_calls_per_frame": round(len(stats["recognizer"]) / n, 2),
        "recognizer_median_ms": round(1000 * statistics.median(stats["recognizer"]), 1)
        if stats["recognizer"] else None,
        "vehicles": len(truth),
        "vehicles_read_exactly": exact,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
