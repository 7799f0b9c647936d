"""Synthetic plate text lines for training the recognizer: every format of the syntax table, in
real plate-like fonts, as the reader crops a plate's text.

Why: fine-tuning on the dev photos teaches the recognizer two countries' fonts and makes it forget
the rest (models/README.md). The posts read plates of a dozen countries; what the recognizer must
learn is their formats and lettering, which the syntax table (`edge/recognition/plate_syntaxes.toml`)
and open fonts can supply in any number.

Each sample is a registration drawn from one syntax variant (region codes respected), its display
groups spaced as plates space them, set in one of the fonts in dark ink on a light plate ground
(white, yellow or grey), cropped to the text with the margin our detector leaves, and returned with
its label. The training tool degrades it further (blur, noise, tilt, JPEG).

Fonts are fetched at training time only, never at run time: OFL-licensed condensed grotesques close
to plate lettering, from the npm registry's `@fontsource` packages (WOFF files, which Pillow reads):

    python models/tools/synth_plates.py --fetch-fonts DIR

Needs Pillow (training only). Preview a few: `python models/tools/synth_plates.py --fonts DIR --show OUT.png`.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as a script: the project's packages live at the repo root

# @fontsource packages (SIL Open Font License 1.1) and the weights of each that look like plates.
FONT_PACKAGES = {
    "barlow-condensed": (500, 600, 700),  # drawn after California plates and highway signs
    "roboto-condensed": (500, 700),
    "oswald": (500, 600),
    "saira-condensed": (600, 700),
    "archivo-narrow": (600, 700),
    "pt-sans-narrow": (700,),
}
GROUNDS = [(235, 235, 235), (240, 240, 240), (120, 215, 245), (205, 205, 200)]  # BGR: white, yellow, grey


def fetch_fonts(dest: Path) -> list[Path]:
    """Download the font packages from the npm registry into ``dest`` (training machines only)."""
    dest.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        for package, weights in FONT_PACKAGES.items():
            subprocess.run(["npm", "pack", f"@fontsource/{package}", "--silent"], cwd=tmp, check=True,
                           capture_output=True, timeout=120)
            tgz = next(Path(tmp).glob(f"fontsource-{package}-*.tgz"))
            with tarfile.open(tgz) as tar:
                for weight in weights:
                    name = f"package/files/{package}-latin-{weight}-normal.woff"
                    member = tar.extractfile(name)
                    if member is None:
                        raise FileNotFoundError(f"{tgz.name} has no {name}")
                    path = dest / Path(name).name
                    path.write_bytes(member.read())
                    out.append(path)
    return out


def sample_text(syntax: Any, rng: random.Random) -> str:
    """A registration the syntax variant allows: region groups drawn from their lists of codes, and
    as many letters and digits as the variant asks for."""
    from edge.recognition.syntax import DIGITS, LETTERS

    starts = np.cumsum((0, *syntax.groups))
    regions = dict(syntax.regions)
    for _ in range(100):
        chars: list[str] = []
        for gi, length in enumerate(syntax.groups):
            positions = syntax.positions[starts[gi] : starts[gi] + length]
            codes = sorted(
                c for c in regions.get(gi, ())
                if len(c) == length and all(ch in p for ch, p in zip(c, positions, strict=True))
            )
            if gi in regions and not codes:
                raise ValueError(f"{syntax.name}: no region code of group {gi} fits its positions")
            chars.append(rng.choice(codes) if codes else "".join(rng.choice(sorted(p)) for p in positions))
        text = "".join(chars)
        if (sum(ch in LETTERS for ch in text) >= syntax.min_letters
                and sum(ch in DIGITS for ch in text) >= syntax.min_digits):
            return text
    raise ValueError(f"{syntax.name}: no registration with {syntax.min_letters} letters and {syntax.min_digits} digits")


def render_line(display: str, font_path: Path, rng: random.Random, height: int = 48) -> np.ndarray:
    """One plate's text as the reader crops it: a BGR image ``height`` px tall."""
    from PIL import Image, ImageDraw, ImageFont

    size = 64
    font = ImageFont.truetype(str(font_path), size)
    spacing = rng.uniform(-0.02, 0.12) * size  # plates space their characters more than print does
    widths = [font.getlength(ch) for ch in display]
    _, y0, _, y1 = font.getbbox("0A")
    text_w = int(sum(widths) + spacing * (len(display) - 1))
    pad_x, pad_y = int(rng.uniform(0.05, 0.35) * (y1 - y0)), int(rng.uniform(0.1, 0.3) * (y1 - y0))
    ground = GROUNDS[rng.randrange(len(GROUNDS))]
    ink = tuple(rng.randint(0, 60) for _ in range(3))
    img = Image.new("RGB", (text_w + 2 * pad_x, (y1 - y0) + 2 * pad_y), ground[::-1])
    draw = ImageDraw.Draw(img)
    x = float(pad_x)
    for ch, w in zip(display, widths, strict=True):
        draw.text((x, pad_y - y0), ch, font=font, fill=ink[::-1])
        x += w + spacing
    out = cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)
    scale = height / out.shape[0]
    return cv2.resize(out, (max(8, int(out.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)


def samples(fonts: list[Path], rng: random.Random) -> Any:
    """An endless stream of (image, label): every syntax variant equally often, any font. The dev
    splits' countries (US, BR) are left out, so their photos measure what training taught about
    plates in general rather than about their own formats."""
    from edge.recognition.syntax import SyntaxBook

    variants = [s for s in SyntaxBook.load().syntaxes if s.country not in ("US", "BR")]  # the dev splits'
    while True:
        syntax = rng.choice(variants)
        text = sample_text(syntax, rng)
        yield render_line(syntax.display(text), rng.choice(fonts), rng), text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--fetch-fonts", type=Path, help="download the fonts into this folder")
    ap.add_argument("--fonts", type=Path, help="folder of .woff/.ttf fonts to render with")
    ap.add_argument("--show", type=Path, help="write a sheet of samples to this PNG")
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.fetch_fonts:
        for path in fetch_fonts(args.fetch_fonts):
            print(path)
        return 0
    if not args.fonts or not args.show:
        ap.error("--show needs --fonts (or fetch them first with --fetch-fonts)")
    fonts = sorted(p for p in args.fonts.iterdir() if p.suffix in (".woff", ".ttf", ".otf"))
    if not fonts:
        print(f"error: no fonts in {args.fonts}", file=sys.stderr)
        return 2
    stream = samples(fonts, random.Random(args.seed))
    rows = []
    for _ in range(args.count):
        img, label = next(stream)
        canvas = np.full((60, 480, 3), 255, np.uint8)
        canvas[6:54, : min(300, img.shape[1])] = img[:, :300]
        cv2.putText(canvas, label, (310, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 200), 2)
        rows.append(canvas)
    cv2.imwrite(str(args.show), np.vstack(rows))
    print(f"wrote {args.show}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
