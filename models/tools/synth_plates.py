"""Synthetic plate text lines for training the recognizer: every format of the syntax table, in
real plate-like fonts, as the reader crops a plate's text.

Why: fine-tuning on the dev photos teaches the recognizer two countries' fonts and makes it forget
the rest (models/README.md). The posts read plates of a dozen countries; what the recognizer must
learn is their formats and lettering, which the syntax table (`edge/recognition/plate_syntaxes.toml`)
and open fonts can supply in any number.

Each sample is a registration drawn from one syntax variant (region codes respected), its display
groups spaced as plates space them, set in one of the fonts in dark ink on a light plate ground
(white, yellow or grey), cropped to the text with the margin our detector leaves, and returned with
its label. A share of them (``--worn``) is drawn on a worn plate instead: border, bolts and band
lettering at the crop's edges, emblems or dashes between groups, coloured or faded ink, stains. The
training tool degrades every line further (blur, noise, tilt, low resolution, JPEG).

Fonts are fetched at training time only, never at run time: OFL-licensed condensed grotesques close
to plate lettering, from the npm registry's `@fontsource` packages (WOFF files, which Pillow reads):

    python models/tools/synth_plates.py --fetch-fonts DIR

Needs Pillow (training only). Preview a few: `python models/tools/synth_plates.py --fonts DIR --show OUT.png
[--worn 1]`.
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


def render_line(display: str, font_path: Path, rng: random.Random, height: int = 48, worn: bool = False,
                marks: bool = True) -> np.ndarray:
    """One plate's text as the reader crops it: a BGR image ``height`` px tall.

    ``worn`` draws the plate around the text as lane cameras see it (``_render_worn``; ``marks``:
    with the plate's border at the line's ends and emblems between groups); otherwise the text is
    set clean, dark on a light ground.
    """
    if worn:
        return _render_worn(display, font_path, rng, height, marks)
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
    return _to_height(out, height)


# RGB. Plates print in black, navy, maroon or green; a few are light on dark.
INKS = [((20, 20, 20), 0.45), ((20, 40, 115), 0.2), ((140, 30, 35), 0.15), ((25, 90, 40), 0.1), ((70, 70, 70), 0.1)]
LIGHT_GROUNDS = [(236, 236, 236), (245, 245, 240), (245, 215, 120), (205, 205, 200), (215, 230, 245), (245, 225, 230)]
DARK_GROUNDS = [(25, 35, 80), (20, 20, 20), (110, 25, 30), (30, 70, 40)]
BAND_WORDS = ["TOSHKENT", "SAMARQAND", "QAZAQSTAN", "KYRGYZSTAN", "TOJIKISTON", "TURKMENISTAN", "AFGHANISTAN",
              "ROSSIYA", "TURKIYE", "IRAN", "EUROPA", "TRANSIT", "REPUBLIC", "BORDER", "COUNTY", "DEALER"]


def _pick(weighted: list[tuple[Any, float]], rng: random.Random) -> Any:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def gap_kind(rng: random.Random, marks: bool = True) -> str:
    """What stands between two groups of characters: a blank, a dash, a dot, or (with ``marks``) an
    emblem. Without marks nothing there is a shape the label does not name as a separator, so a run
    can tell whether emblems help (models/README.md: the runs' losses in the pipeline came from its
    choice of box, not from the recognizer skipping characters)."""
    return str(_pick([("space", 0.6), ("dash", 0.12), ("dot", 0.06), ("emblem", 0.22 if marks else 0.0)], rng))


def _to_height(img: np.ndarray, height: int) -> np.ndarray:
    """Scaled as the reader scales a crop for the recognizer: to the line height, aspect kept."""
    scale = height / img.shape[0]
    return cv2.resize(img, (max(8, int(img.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)


def _render_worn(display: str, font_path: Path, rng: random.Random, height: int, marks: bool = True) -> np.ndarray:
    """The text on its plate, as our detector's box cuts it out of a lane frame: the plate's border,
    bolts and small band lettering at the crop's edges, a separator or an emblem between groups,
    coloured or embossed ink, tinted and stained grounds, low contrast.

    Why: the dev photos' crops look like that (models/README.md), and clean lines taught the
    recognizer nothing it did not know (training loss near 0 within a hundred steps).
    """
    from PIL import Image, ImageDraw, ImageFont

    size = 64
    font = ImageFont.truetype(str(font_path), size)
    _, y0, _, y1 = font.getbbox("0A")
    ch = y1 - y0
    spacing = rng.uniform(-0.02, 0.14) * size
    # Layout: each character, and between groups a gap that is blank, a dash, a dot or an emblem.
    items: list[tuple[str, float, str]] = []  # (kind, width, what)
    for gi, group in enumerate(display.split(" ")):
        if gi:
            kind = gap_kind(rng, marks)
            width = {"space": font.getlength(" ") * rng.uniform(0.6, 2.0), "dash": font.getlength("-"),
                     "dot": font.getlength("·"), "emblem": ch * rng.uniform(0.5, 0.9)}[kind]
            items.append((kind, width + spacing, kind))
        items.extend(("char", font.getlength(c) + spacing, c) for c in group)
    text_w = sum(w for _, w, _ in items) - spacing
    mx, mt, mb = (rng.uniform(0.1, 0.6) * ch, rng.uniform(0.25, 0.9) * ch, rng.uniform(0.25, 0.9) * ch)
    w_img, h_img = int(text_w + 2 * mx), int(ch + mt + mb)
    dark = rng.random() < 0.08
    ground = rng.choice(DARK_GROUNDS if dark else LIGHT_GROUNDS)
    ink = rng.choice([(240, 240, 240), (245, 215, 90)]) if dark else _pick(INKS, rng)
    if not dark and rng.random() < 0.15:  # faded ink, or a reflective ground washing it out
        k = rng.uniform(0.35, 0.6)
        ink = tuple(int(i + k * (g - i)) for i, g in zip(ink, ground, strict=True))
    img = Image.new("RGB", (w_img, h_img), ground)
    if rng.random() < 0.25:  # a printed gradient or sky-to-ground picture
        other = rng.choice(LIGHT_GROUNDS) if not dark else rng.choice(DARK_GROUNDS)
        ramp = np.linspace(0.0, 1.0, h_img, dtype=np.float32)[:, None, None]
        grad = (np.array(ground, np.float32) * (1 - ramp) + np.array(other, np.float32) * ramp)
        img = Image.fromarray(np.broadcast_to(grad, (h_img, w_img, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    if marks and rng.random() < 0.5:  # the plate's border, which the line's ends may take in
        b = rng.randint(2, 6)
        draw.rectangle((b // 2, b // 2, w_img - 1 - b // 2, h_img - 1 - b // 2), outline=ink, width=b)
    for band_y, p in ((mt, 0.5), (mt + ch, 0.4)):
        if rng.random() < p:
            small = ImageFont.truetype(str(font_path), max(8, int(size * rng.uniform(0.22, 0.36))))
            word = rng.choice(BAND_WORDS)
            bx = (w_img - small.getlength(word)) * rng.uniform(0.2, 0.8)
            sb = small.getbbox(word)
            top = band_y - (sb[3] - sb[1]) - rng.uniform(0.05, 0.2) * ch if band_y == mt else band_y + rng.uniform(
                0.05, 0.2) * ch
            draw.text((bx, top - sb[1]), word, font=small, fill=ink)
    if rng.random() < 0.4:
        r = 0.07 * ch
        for bx in (w_img * 0.25, w_img * 0.75):
            for by in (mt * 0.5, mt + ch + mb * 0.5):
                draw.ellipse((bx - r, by - r, bx + r, by + r), fill=(150, 150, 150), outline=(60, 60, 60))
    shadow = tuple(int(g * 0.55) for g in ground) if rng.random() < 0.35 else None
    off = rng.uniform(1.0, 3.0)
    x = mx
    for kind, width, what in items:
        if kind == "char":
            if shadow is not None:
                draw.text((x + off, mt - y0 + off), what, font=font, fill=shadow)
            draw.text((x, mt - y0), what, font=font, fill=ink)
        elif kind in ("dash", "dot"):
            draw.text((x, mt - y0), "-" if kind == "dash" else "·", font=font, fill=ink)
        elif kind == "emblem":
            e = width - spacing
            # A round, many-coloured blob: a state's emblem, a flag, an inspection sticker. Never a
            # shape a character has (a triangle is read as an A).
            for _ in range(rng.randint(1, 3)):
                colour = tuple(rng.randint(0, 255) for _ in range(3))
                k = rng.uniform(0.5, 1.0)
                cx, cy = x + e / 2, mt + ch * rng.uniform(0.4, 0.6)
                draw.ellipse((cx - k * e / 2, cy - k * e / 2, cx + k * e / 2, cy + k * e / 2), fill=colour)
        x += width
    out = np.asarray(img).astype(np.float32)
    for _ in range(rng.choice((0, 0, 0, 1, 2, 3))):  # dirt, rust, a sticker's residue
        stain = np.zeros(out.shape[:2], np.float32)
        centre = (rng.randrange(w_img), rng.randrange(h_img))
        axes = (rng.randint(4, max(5, w_img // 4)), rng.randint(4, max(5, h_img // 2)))
        cv2.ellipse(stain, centre, axes, rng.uniform(0, 180), 0, 360, rng.uniform(0.15, 0.5), -1)
        stain = cv2.GaussianBlur(stain, (0, 0), 4)[..., None]
        out = out * (1 - stain) + np.array((90, 75, 55), np.float32) * stain
    # Our detector's box: the text, and a little of what is around it.
    cx0 = max(0, int(mx - rng.uniform(0.05, 0.5) * ch))
    cx1 = min(w_img, int(mx + text_w + rng.uniform(0.05, 0.5) * ch))
    cy0 = max(0, int(mt - rng.uniform(0.08, 0.45) * ch))
    cy1 = min(h_img, int(mt + ch + rng.uniform(0.08, 0.45) * ch))
    crop = cv2.cvtColor(np.clip(out[cy0:cy1, cx0:cx1], 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    return _to_height(crop, height)


def samples(fonts: list[Path], rng: random.Random, worn: float = 0.0, marks: bool = True) -> Any:
    """An endless stream of (image, label): every country equally often, each of its formats alike,
    each of a format's lengths alike; any font; a share ``worn`` of them drawn on a worn plate
    (``_render_worn``). The dev splits' countries (US, BR) are left out, so their photos measure what
    training taught about plates in general rather than about their own formats.

    Drawn by variant alone (until the twelfth session), a country came as often as its formats have
    lengths: of 218 variants Austria had 30, Afghanistan 27, Kazakhstan 2."""
    from edge.recognition.syntax import SyntaxBook

    by_country: dict[str, dict[str, list[Any]]] = {}
    for s in SyntaxBook.load().syntaxes:
        if s.country not in ("US", "BR"):  # the dev splits'; "": the generic format, one "country" more
            by_country.setdefault(s.country, {}).setdefault(s.name, []).append(s)
    countries = sorted(by_country)
    while True:
        formats = by_country[rng.choice(countries)]
        syntax = rng.choice(formats[rng.choice(sorted(formats))])
        text = sample_text(syntax, rng)
        yield render_line(syntax.display(text), rng.choice(fonts), rng, worn=rng.random() < worn, marks=marks), text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--fetch-fonts", type=Path, help="download the fonts into this folder")
    ap.add_argument("--fonts", type=Path, help="folder of .woff/.ttf fonts to render with")
    ap.add_argument("--show", type=Path, help="write a sheet of samples to this PNG")
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worn", type=float, default=0.0, help="share of samples drawn on a worn plate")
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
    stream = samples(fonts, random.Random(args.seed), args.worn)
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
