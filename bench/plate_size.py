"""How small a plate the reader still reads, and still names the country of: synthetic lane frames
with one plate drawn at each of several heights.

Run: ``./dev bench plate_size [--heights 14 16 20 24 28 36 48] [--seeds 2] [--degrade grey]
[--countries UZ KZ ...] [--ignore US BR] [-v]``

A lane camera is set up so the plate is big enough, but a truck stopping short, a second truck
behind, or a camera that moved can give a plate half the size it was commissioned for. The dev
photos hold plates of whatever size they happen to have, and no European ones, so this bench draws
its own: the region's plates from the traffic simulator's layouts (UZ, KZ, KG, TJ, RU, TR),
European plates with the blue band whose small code names the country, Iranian national plates
in Persian (read by ``fa-plate-rec``), and Afghan two-line plates (Persian over Latin, 390 x 160 mm,
drawn to the same scale as the others: at "20 px" an Afghan plate is 29 px tall). Per plate height
(pixels, the whole plate), it prints the share read exactly, the share also given the right
country, the shares of the Iranian and of the Afghan plates read exactly, and the median time per
frame; ``-v`` lists every miss. The largest height is the baseline of the ratios.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

from bench._common import header, percentile, ratio, table, write_json
from bench.accuracy import DEGRADE
from drivers.camera.synthetic import plate_mm, plate_photo
from drivers.sim.traffic import make_afghan_plate, make_iranian_plate, make_plate
from edge.config import RecognitionSection
from edge.recognition.reader import PlateReader

# Plates from beyond the region, as a post's foreign trucks carry them: the EU band's code (one
# letter or two) is what names the country, and at a far plate it is a few pixels tall.
BANDED = [
    ("B MW 1234", "DE"), ("KA AB 123", "DE"), ("WA 12345", "PL"), ("ABC 123", "LT"), ("1234 BCD", "ES"),
    ("AB 123 CD", "FR"), ("1 ABC 234", "BE"), ("AB 12 CD", "PT"), ("FX 555 ZZ", "IT"), ("2AB 3456", "CZ"),
]  # fmt: skip


def plates(regional: int, iranian: int = 0, afghan: int = 0, seed: int = 7) -> list[tuple[str, str]]:
    """(display, country): ``regional`` plates of the region's layouts, the banded ones, then
    ``iranian`` Iranian national plates and ``afghan`` Afghan ones."""
    rng = random.Random(seed)
    region = [(display, country) for _, display, country, _ in (make_plate(rng) for _ in range(regional))]
    rng = random.Random(f"{seed}:iran")
    iran = [(display, "IR") for _, display, _, _ in (make_iranian_plate(rng) for _ in range(iranian))]
    rng = random.Random(f"{seed}:afghan")
    return region + BANDED + iran + [(display, "AF") for _, display, _, _ in (make_afghan_plate(rng)
                                                                              for _ in range(afghan))]


def photo(display: str, country: str, height: int, seed: int) -> tuple[Any, tuple[int, int, int, int]]:
    """A frame with the plate drawn at the scale at which a 520 x 112 mm plate is ``height`` px tall."""
    return plate_photo(display, country, plate_h=round(height * plate_mm(country)[1] / 112), seed=seed)


def measure(reader: PlateReader, height: int, sample: list[tuple[str, str]], seeds: int,
            degrade: str | None = None) -> dict[str, Any]:
    exact = country_right = 0
    by_country = {"IR": [0, 0], "AF": [0, 0]}  # frames read exactly, frames
    times: list[float] = []
    misses: list[str] = []
    for display, country in sample:
        for seed in range(seeds):
            frame, box = photo(display, country, height, seed)
            if degrade is not None:
                frame, _ = DEGRADE[degrade](frame, box)
            t0 = time.perf_counter()
            reads = [r for r in reader.read(frame, still=True) if r.kind == "plate"]
            times.append(time.perf_counter() - t0)
            got = reads[0] if reads else None
            ok = got is not None and got.text == display.replace(" ", "")
            right = ok and got is not None and got.country == country
            exact += ok
            country_right += right
            if country in by_country:
                by_country[country][0] += ok
                by_country[country][1] += 1
            if not right:
                misses.append(f"{display} ({country}), seed {seed}: "
                              + (f"{got.text} ({got.country or '-'})" if got else "nothing"))
    n = len(times)
    return {
        "plate_h": height,
        "frames": n,
        "exact_pct": round(100 * exact / n, 1),
        "country_pct": round(100 * country_right / n, 1),
        **{f"{name}_exact_pct": round(100 * ok / frames, 1) if frames else None
           for name, (ok, frames) in (("iran", by_country["IR"]), ("afghan", by_country["AF"]))},
        "median_ms": round(1000 * statistics.median(times), 1),
        "p95_ms": round(1000 * (percentile(times, 95) or 0.0), 1),
        "misses": misses,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--heights", type=int, nargs="+", default=[14, 16, 20, 24, 28, 36, 48],
                    help="plate heights in pixels (a whole 520x112 mm plate's; other plates to scale)")
    ap.add_argument("--regional", type=int, default=20, help="plates of the region's layouts drawn")
    ap.add_argument("--iranian", type=int, default=10, help="Iranian national plates (in Persian) drawn")
    ap.add_argument("--afghan", type=int, default=10, help="Afghan plates (two lines, Persian over Latin) drawn")
    ap.add_argument("--seeds", type=int, default=2, help="frames per plate and height (placement, noise)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--degrade", choices=sorted(DEGRADE), default=None,
                    help="change every frame first as bench.accuracy's --degrade does (grey: an infrared "
                    "camera at night, which shows no blue band)")
    ap.add_argument("--countries", nargs="*", default=[], metavar="CC",
                    help="the post's countries, first preferred (its [recognition] countries)")
    ap.add_argument("--ignore", nargs="*", default=[], metavar="CC",
                    help="countries whose plates never come (its [recognition] ignore_countries)")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON (- for stdout)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every miss")
    args = ap.parse_args(argv)
    if min(args.heights) < 12:
        ap.error("--heights: the renderer draws plates 12 px tall or more")
    try:
        section = RecognitionSection.model_validate(
            {"threads": args.threads, "countries": args.countries, "ignore_countries": args.ignore})
    except ValueError as err:
        ap.error(str(err))
    header("plate size: reads and countries against the plate's height")
    reader = PlateReader(section)
    sample = plates(args.regional, args.iranian, args.afghan)
    reader.read(plate_photo(*sample[0])[0])  # warm-up, not timed
    rows = [measure(reader, h, sample, args.seeds, args.degrade) for h in sorted(args.heights)]
    base = rows[-1]
    for r in rows:
        r["exact_vs_largest"] = ratio(r["exact_pct"], base["exact_pct"])
        r["time_vs_largest"] = ratio(r["median_ms"], base["median_ms"])
    title = f"{len(sample)} plates x {args.seeds} frames per height" + (
        f", degraded: {args.degrade}" if args.degrade else "") + (
        f", countries preferred: {' '.join(section.countries)}" if section.countries else "") + (
        f", ignored: {' '.join(section.ignore_countries)}" if section.ignore_countries else "")
    table(rows, ["plate_h", "frames", "exact_pct", "country_pct", "iran_exact_pct", "afghan_exact_pct", "median_ms",
                 "p95_ms", "exact_vs_largest", "time_vs_largest"], title=title)
    if args.verbose:
        for r in rows:
            for miss in r["misses"]:
                print(f"  {r['plate_h']} px: {miss}")
    write_json(args.json, "plate_size", {"rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
