"""How every format of the syntax table is read: synthetic plate text lines, one country after another.

Run: ``./dev bench formats [--countries UZ KZ KG TJ TM AF RU TR IR] [--heights 14 20 28] [-v]``

The dev photos hold two countries' plates, and ``plate_size`` draws a few dozen plates in one
font. A post reads a dozen countries' plates, and what the syntax step does with each country's
formats (correct an O read where a digit must stand, cut off a printed code, prefer the post's
countries) is measured here on every format of ``edge/recognition/plate_syntaxes.toml``: for each
variant, registrations drawn as the training tool draws them (``models/tools/synth_plates.py``:
region codes from their lists), set in open plate-like fonts, shrunk to a far plate's size
(``--heights``: the line's height in px, its text and the margin a detector's box leaves) and read
by the recognizer, then by the syntax step as the reader's closer look
reads a crop (``PlateReader.line_readings``). Lines under four characters are left out: the reader
takes no text that short for a plate.

Per country: the share the recognizer read exactly ("raw"), the share exact after the syntax step,
and the share also given the right country; and how often the syntax step broke a line the
recognizer had read exactly ("broken") or mended one it had misread ("mended"). Many countries share
layouts (IT and FR: LL DDD LL), so without a band or a printed code the country can only be guessed;
``--countries`` tells the reader a post's countries, as its ``[recognition] countries`` does.

``--worn SHARE`` draws that share of the lines on a worn plate, as the training tool does (bolts,
band lettering, dashes, inks, stains): harder lines, which the recognizer misreads more often, so
that the syntax step's mending shows as well as its breaking.

Fonts: the training tool's (SIL OFL, from the npm registry's ``@fontsource`` packages), fetched once
into ``--fonts`` (default ``.cache/fonts``, git-ignored) at bench time, never at run time;
``--hershey`` draws with OpenCV's own font instead and fetches nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np

from bench._common import header, table, write_json
from edge.config import RecognitionSection
from edge.recognition.reader import PlateReader
from edge.recognition.syntax import Syntax

REPO = Path(__file__).resolve().parents[1]
MIN_CHARS = 4  # the shortest text the reader takes for a plate (``_line_candidates``)


def synth_tool() -> ModuleType:
    """``models/tools/synth_plates.py``: a script, not a package, loaded from its path."""
    path = REPO / "models" / "tools" / "synth_plates.py"
    spec = importlib.util.spec_from_file_location("synth_plates", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fonts_in(folder: Path, synth: ModuleType) -> list[Path]:
    """The fonts in ``folder``, fetched there first if it holds none."""
    found = sorted(p for p in folder.glob("*") if p.suffix in (".woff", ".ttf", ".otf"))
    if not found:
        print(f"fetching the training tool's fonts into {folder} (once)", file=sys.stderr)
        found = sorted(synth.fetch_fonts(folder))
    if not found:
        raise SystemExit(f"no fonts in {folder}, and none could be fetched: pass --hershey to draw without them")
    return found


def font_options(ap: argparse.ArgumentParser) -> None:
    """``--fonts`` and ``--hershey``, for every bench that draws text."""
    ap.add_argument("--fonts", type=Path, default=REPO / ".cache" / "fonts",
                    help="folder of the training tool's fonts (fetched into it if empty)")
    ap.add_argument("--hershey", action="store_true", help="draw with OpenCV's Hershey font; fetch no fonts")


def hershey_line(display: str, rng: random.Random) -> np.ndarray:
    """A plate's text set in OpenCV's Hershey font, dark on a light ground, 48 px tall."""
    scale, thick = 1.6, rng.choice((3, 4))
    (w, h), base = cv2.getTextSize(display, cv2.FONT_HERSHEY_DUPLEX, scale, thick)
    pad = rng.randint(6, 14)
    img = np.full((h + base + 2 * pad, w + 2 * pad, 3), rng.randint(215, 245), np.uint8)
    cv2.putText(img, display, (pad, pad + h), cv2.FONT_HERSHEY_DUPLEX, scale, (25, 25, 25), thick, cv2.LINE_AA)
    return cv2.resize(img, (max(8, round(img.shape[1] * 48 / img.shape[0])), 48), interpolation=cv2.INTER_AREA)


def lines_of(syntaxes: list[Syntax], per_variant: int, seed: int, synth: ModuleType,
             fonts: list[Path] | None, worn: float = 0.0) -> list[tuple[Syntax, str, np.ndarray]]:
    """``per_variant`` registrations of every Latin-script variant, drawn 48 px tall; a share
    ``worn`` of them on a worn plate (the training tool's: bolts, band lettering, dashes, inks and
    stains, but no border at the line's ends and no emblem between groups, which no country's
    line shows alike)."""
    rng = random.Random(seed)
    out = []
    for syn in syntaxes:
        if syn.script != "latin" or len(syn) < MIN_CHARS:
            continue
        for _ in range(per_variant):
            try:
                text = synth.sample_text(syn, rng)
            except ValueError:
                break  # a variant no registration fits (its counts and its lists disagree)
            display = syn.display(text)
            if fonts:
                img = synth.render_line(display, rng.choice(fonts), rng, worn=worn > 0 and rng.random() < worn,
                                        marks=False)
            else:
                img = hershey_line(display, rng)
            out.append((syn, text, img))
    return out


def measure(reader: PlateReader, lines: list[tuple[Syntax, str, np.ndarray]], height: int) -> dict[str, Any]:
    """Every line shrunk to ``height`` px, read, and judged per country."""
    crops = [cv2.resize(img, (max(8, round(img.shape[1] * height / img.shape[0])), height),
                        interpolation=cv2.INTER_AREA) for _, _, img in lines]
    reads = reader.recognizer.recognize(crops)
    per: dict[str, Counter[str]] = {}
    misses: list[str] = []
    for (syn, text, _), crop, line in zip(lines, crops, reads, strict=True):
        best = next(iter(reader.line_readings(line, crop)), None)
        got = best.text if best is not None else ""
        c = per.setdefault(syn.country or "generic", Counter())
        c["lines"] += 1
        c["raw"] += line.text == text
        c["exact"] += got == text
        c["country"] += got == text and best is not None and best.country == syn.country
        c["broken"] += line.text == text and got != text
        c["mended"] += line.text != text and got == text
        if got != text or (best is not None and best.country != syn.country and syn.country):
            misses.append(f"{syn.name} {text}: read {line.text or '-'}, "
                          f"{got or 'no plate'} ({best.country or 'generic' if best else '-'})")
    return {"height": height, "per_country": {k: dict(v) for k, v in per.items()}, "misses": misses}


def pct(a: int, b: int) -> float | None:
    return round(100 * a / b, 1) if b else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--heights", type=int, nargs="+", default=[14, 20, 28],
                    help="heights in pixels the lines (their text and the margin a detector box leaves) are shrunk "
                    "to before they are read")
    ap.add_argument("--per-variant", type=int, default=4, help="registrations drawn per format variant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--countries", nargs="*", default=[], metavar="CC",
                    help="the post's countries, first preferred (its [recognition] countries)")
    ap.add_argument("--ignore", nargs="*", default=[], metavar="CC",
                    help="countries whose plates never come (its [recognition] ignore_countries): not read, "
                    "and not counted")
    font_options(ap)
    ap.add_argument("--worn", type=float, default=0.0, metavar="SHARE",
                    help="share of the lines drawn on a worn plate (bolts, band lettering, inks, stains)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON (- for stdout)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every line not read exactly with its country")
    args = ap.parse_args(argv)
    if min(args.heights) < 8:
        ap.error("--heights: a text under 8 px is no plate the detector finds")
    if not 0.0 <= args.worn <= 1.0:
        ap.error("--worn: a share, 0 to 1")
    if args.worn and args.hershey:
        ap.error("--worn draws with the training tool's fonts, not with --hershey")
    countries = [c.upper() for c in args.countries]
    ignored = [c.upper() for c in args.ignore]
    try:
        section = RecognitionSection.model_validate(
            {"threads": args.threads, "countries": countries, "ignore_countries": ignored})
    except ValueError as err:
        ap.error(str(err))
    reader = PlateReader(section)
    synth = synth_tool()
    fonts = None if args.hershey else fonts_in(args.fonts, synth)
    header("formats: every format of the syntax table, read from synthetic text lines")
    drawn = [syn for syn in reader.book.syntaxes if syn.country not in ignored]
    lines = lines_of(drawn, args.per_variant, args.seed, synth, fonts, args.worn)
    results = [measure(reader, lines, h) for h in sorted(args.heights)]
    print(f"{len(lines)} lines ({args.per_variant} per format variant), "
          f"{'Hershey font' if fonts is None else f'{len(fonts)} fonts'}"
          f"{f', {args.worn:.0%} worn' if args.worn else ''}; "
          f"countries preferred: {' '.join(countries) or 'none'}; ignored: {' '.join(ignored) or 'none'}\n")
    # The post's own countries apart from the rest: a preference that wins its countries' plates can
    # take other countries' plates into their formats.
    groups = [("listed", set(countries)), ("others", None)] if countries else [("all", None)]
    rows = []
    for r in results:
        for group, members in groups:
            counts = Counter[str]()
            for c, v in r["per_country"].items():
                if (c in members) if members is not None else c not in countries:
                    counts.update(v)
            if counts["lines"]:
                rows.append({"height": r["height"], "countries": group, "lines": counts["lines"],
                             "raw_pct": pct(counts["raw"], counts["lines"]),
                             "exact_pct": pct(counts["exact"], counts["lines"]),
                             "country_pct": pct(counts["country"], counts["lines"]),
                             "broken": counts["broken"], "mended": counts["mended"]})
    table(rows, ["height", "countries", "lines", "raw_pct", "exact_pct", "country_pct", "broken", "mended"])
    per_rows = []
    for c in sorted({c for r in results for c in r["per_country"]}):
        row: dict[str, Any] = {"country": c}
        for r in results:
            v = r["per_country"].get(c, {})
            row[f"exact_{r['height']}px"] = pct(v.get("exact", 0), v.get("lines", 0))
            row[f"country_{r['height']}px"] = pct(v.get("country", 0), v.get("lines", 0))
        row["broken"] = sum(r["per_country"].get(c, {}).get("broken", 0) for r in results)
        per_rows.append(row)
    cols = ["country", *(f"{k}_{r['height']}px" for r in results for k in ("exact", "country")), "broken"]
    table(per_rows, cols, title="per country (%)")
    if args.verbose:
        for r in results:
            for miss in r["misses"]:
                print(f"  {r['height']} px: {miss}")
    write_json(args.json, "formats", {"countries": countries, "ignored": ignored, "lines": len(lines),
                                      "results": results, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
