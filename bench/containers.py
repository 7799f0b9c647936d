"""How container codes and orange ADR plates are read: drawn container faces and ADR plates, size by size.

Run: ``./dev bench containers [--heights 14 20 28 40] [--per-cell 6] [-v]``

The tests read one container code in OpenCV's own font. A post's container camera sees every owner's
code, in the lettering containers are painted in, on grounds of every colour, near and far. Here,
for each layout containers print their code in (one line with the check digit boxed; owner code over
serial; with the size and type code below; one character a row down a corner post) and each
character height (``--heights``, in px in a 1280x720 frame), ``--per-cell`` random owner codes with
serials and their check digits are painted on a corrugated wall (white on red, blue, green or brown;
dark on white, grey or yellow) in the training tool's open fonts, blurred and JPEG-compressed as a
camera's stream is, and read as a lane reads a frame. Orange ADR plates (hazard number over UN
number) are drawn the same way at each height.

Per layout and height it prints the codes read exactly, the codes read wrong (a code HQ would get
that is not the container's: the check digit is what keeps this at 0), the codes not read, and the
plates reported from a container's print (the reader must take none). ``-v`` lists every miss.
Last, ``--wrong-digits`` codes per layout and height are painted with a check digit that does not
verify: none may be reported, and each that is (a digit misread into the one the check wants, or
taken from other print) counts as a wrong code.

Fonts: the training tool's (SIL OFL, from the npm registry's ``@fontsource`` packages), fetched once
into ``--fonts`` (default ``.cache/fonts``, git-ignored) at bench time, never at run time;
``--hershey`` draws with OpenCV's own fonts instead and fetches nothing.
"""

from __future__ import annotations

import argparse
import random
import string
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench._common import header, table, write_json
from bench.formats import font_options, fonts_in, pct, synth_tool
from edge.config import RecognitionSection
from edge.recognition.containers import check_digit, format_code
from edge.recognition.reader import PlateReader

LAYOUTS = ("one line", "two lines", "size-type below", "corner post")
# (ground, ink), BGR: containers are painted in a few colours, their codes white on dark, dark on light.
PAINTS = [((40, 40, 160), (245, 245, 245)), ((140, 70, 20), (245, 245, 245)), ((50, 110, 40), (245, 245, 245)),
          ((40, 60, 110), (240, 240, 240)), ((230, 230, 230), (30, 30, 30)), ((160, 160, 160), (25, 25, 25)),
          ((40, 190, 230), (20, 20, 20))]
SIZE_TYPES = ("22G1", "45G1", "42G1", "22R1", "45R1", "22U1", "L5G1")
HAZARDS = ("30", "33", "23", "20", "80", "268", "X423", "336", "60", "90")
UN_NUMBERS = ("1203", "1202", "1965", "1005", "1830", "1789", "2794", "3082", "1073", "1863")
FRAME = (720, 1280)
BASE_CHAR_PX = 60  # characters are drawn this tall, then the face is scaled to the height measured


def random_code(rng: random.Random) -> str:
    owner = "".join(rng.choice(string.ascii_uppercase) for _ in range(3)) + rng.choice("UUUUJZ")
    serial = "".join(rng.choice(string.digits) for _ in range(6))
    return owner + serial + str(check_digit(owner + serial))


class Painter:
    """Text on an image at a baseline-free top-left, ``BASE_CHAR_PX`` tall, in one font."""

    def __init__(self, font: Path | None) -> None:
        self.font = font
        if font is not None:
            from PIL import ImageFont

            probe = ImageFont.truetype(str(font), 100)
            _, y0, _, y1 = probe.getbbox("0A")
            self.pil = ImageFont.truetype(str(font), round(100 * BASE_CHAR_PX / (y1 - y0)))
            self.top = self.pil.getbbox("0A")[1]

    def width(self, text: str) -> int:
        if self.font is None:
            (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, BASE_CHAR_PX / 22, 5)
            return int(w)
        return round(self.pil.getlength(text))

    def put(self, img: np.ndarray, text: str, x: int, y: int, ink: tuple[int, int, int]) -> np.ndarray:
        if self.font is None:
            cv2.putText(img, text, (x, y + BASE_CHAR_PX), cv2.FONT_HERSHEY_SIMPLEX, BASE_CHAR_PX / 22, ink, 5,
                        cv2.LINE_AA)
            return img
        from PIL import Image, ImageDraw

        pil = Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        ImageDraw.Draw(pil).text((x, y - self.top), text, font=self.pil, fill=ink[::-1])
        return cv2.cvtColor(np.asarray(pil), cv2.COLOR_RGB2BGR)


def container_face(code: str, layout: str, painter: Painter, rng: random.Random) -> np.ndarray:
    """A corrugated container wall with ``code`` painted as ``layout`` says, characters
    ``BASE_CHAR_PX`` tall."""
    ground, ink = rng.choice(PAINTS)
    c = BASE_CHAR_PX
    lines: list[tuple[str, int, int, bool]] = []  # text, x, y, boxed
    owner, serial, digit = code[:4], code[4:10], code[10]
    if layout == "corner post":
        lines = [(ch, c, c + round(1.35 * c) * i, False) for i, ch in enumerate(code)]
    else:
        head = f"{owner} {serial}" if layout != "two lines" else owner
        lines.append((head, c, c, False))
        if layout == "two lines":
            lines.append((serial, c, c + round(1.5 * c), False))
            x_digit = c + painter.width(serial) + c // 2
            lines.append((digit, x_digit, c + round(1.5 * c), True))
        else:
            lines.append((digit, c + painter.width(head) + c // 2, c, True))
        if layout == "size-type below":
            lines.append((rng.choice(SIZE_TYPES), c, c + round(1.6 * c), False))
    w = max(x + painter.width(t) for t, x, _, _ in lines) + 2 * c
    h = max(y for _, _, y, _ in lines) + 3 * c
    img = np.full((h, w, 3), ground, np.uint8)
    dark = tuple(max(0, v - 35) for v in ground)
    pitch = round(0.45 * c)
    for x in range(rng.randrange(pitch), w, pitch):  # corrugation, across the lettering as on a real wall
        cv2.rectangle(img, (x, 0), (x + pitch // 3, h), dark, -1)
    for text, x, y, boxed in lines:
        img = painter.put(img, text, x, y, ink)
        if boxed:  # the check digit in a box of its own, as containers print it
            tw = painter.width(text)
            cv2.rectangle(img, (x - c // 5, y - c // 5), (x + tw + c // 5, y + c + c // 5), ink, max(2, c // 15))
    return img


def adr_face(hazard: str, un: str, painter: Painter) -> np.ndarray:
    """An orange plate, 400 x 300 mm, its numbers 100 mm tall: black-bordered, hazard over UN."""
    c = BASE_CHAR_PX
    h, w = 3 * c, 4 * c
    img = np.full((h, w, 3), (0, 140, 255), np.uint8)
    cv2.rectangle(img, (0, 0), (w - 1, h - 1), (0, 0, 0), max(3, c // 6))
    cv2.line(img, (0, h // 2), (w, h // 2), (0, 0, 0), max(3, c // 6))
    for text, top in ((hazard, round(0.25 * c)), (un, h // 2 + round(0.25 * c))):
        img = painter.put(img, text, (w - painter.width(text)) // 2, top, (0, 0, 0))
    return img


def in_frame(face: np.ndarray, char_px: int, rng: random.Random) -> np.ndarray:
    """``face`` scaled so its characters are ``char_px`` tall, in a lane camera's frame, as the
    camera's stream gives it: slightly soft and JPEG-compressed."""
    k = char_px / BASE_CHAR_PX
    fh, fw = FRAME
    scaled = cv2.resize(face, (max(8, round(face.shape[1] * k)), max(8, round(face.shape[0] * k))),
                        interpolation=cv2.INTER_AREA)
    sh, sw = scaled.shape[:2]
    if sh > fh or sw > fw:  # a near container's face is cut by the frame, as the camera's view cuts it
        scaled = scaled[: min(sh, fh), : min(sw, fw)]
        sh, sw = scaled.shape[:2]
    frame = np.full((fh, fw, 3), rng.randint(90, 140), np.uint8)
    x, y = rng.randint(0, fw - sw), rng.randint(0, fh - sh)
    frame[y : y + sh, x : x + sw] = scaled
    soft = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.4, 0.8))
    ok, jpeg = cv2.imencode(".jpg", soft, [cv2.IMWRITE_JPEG_QUALITY, 80])
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR) if ok else None
    if decoded is None:
        raise RuntimeError("OpenCV could not round-trip a frame through JPEG")
    return np.asarray(decoded, np.uint8)


def tally(counts: Counter[str], want: str, got: list[str], plates: int) -> bool:
    """Count one drawn code (or ADR plate) against what was read of it; whether it was read."""
    counts["codes"] += 1
    counts["exact"] += want in got
    counts["wrong"] += sum(t != want for t in got)
    counts["plates"] += plates
    return want in got


def row(kind: str, layout: str, char_px: int, counts: Counter[str]) -> dict[str, Any]:
    return {"kind": kind, "layout": layout, "char_px": char_px, "codes": counts["codes"],
            "exact_pct": pct(counts["exact"], counts["codes"]), "wrong": counts["wrong"], "plates": counts["plates"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--heights", type=int, nargs="+", default=[14, 20, 28, 40],
                    help="character heights in px, in a 1280x720 frame")
    ap.add_argument("--per-cell", type=int, default=6,
                    help="codes drawn per layout and height (and ADR plates per height)")
    ap.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS), metavar="LAYOUT",
                    help=f"of: {', '.join(repr(s) for s in LAYOUTS)}")
    ap.add_argument("--wrong-digits", type=int, default=2, metavar="N",
                    help="codes painted with a wrong check digit per layout and height (none may be read)")
    ap.add_argument("--seed", type=int, default=0)
    font_options(ap)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON (- for stdout)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every code and ADR plate not read exactly")
    args = ap.parse_args(argv)
    if min(args.heights) < 6:
        ap.error("--heights: characters under 6 px are no text the detector finds")
    if args.per_cell < 1:
        ap.error("--per-cell: at least 1")
    if args.wrong_digits < 0:
        ap.error("--wrong-digits: 0 or more")
    reader = PlateReader(RecognitionSection.model_validate({"threads": args.threads}))
    fonts: list[Path | None] = [None] if args.hershey else list(fonts_in(args.fonts, synth_tool()))
    painters = [Painter(f) for f in fonts]
    header("containers: container codes and ADR plates drawn on synthetic lane frames")
    rng = random.Random(args.seed)
    rows: list[dict[str, Any]] = []
    misses: list[str] = []
    for layout in args.layouts:
        for char_px in sorted(args.heights):
            counts = Counter[str]()
            for _ in range(args.per_cell):
                code, painter = random_code(rng), rng.choice(painters)
                reads = reader.read(in_frame(container_face(code, layout, painter, rng), char_px, rng))
                got = [r.text for r in reads if r.kind == "container"]
                plates = [r.text for r in reads if r.kind == "plate"]
                if not tally(counts, code, got, len(plates)) or plates:
                    font = painter.font.stem if painter.font else "hershey"
                    misses.append(f"{layout}, {char_px} px, {font}: {format_code(code)}: "
                                  f"read {got or 'no code'}, plates {plates or 'none'}")
            rows.append(row("container", layout, char_px, counts))
    for char_px in sorted(args.heights):
        counts = Counter[str]()
        for _ in range(args.per_cell):
            hazard, un, painter = rng.choice(HAZARDS), rng.choice(UN_NUMBERS), rng.choice(painters)
            reads = reader.read(in_frame(adr_face(hazard, un, painter), char_px, rng))
            got = [r.text for r in reads if r.kind == "adr"]
            want = f"{hazard}/{un}"
            if not tally(counts, want, got, sum(r.kind == "plate" for r in reads)):
                font = painter.font.stem if painter.font else "hershey"
                misses.append(f"ADR, {char_px} px, {font}: {want}: read {got or 'nothing'}")
        rows.append(row("adr", "hazard over UN", char_px, counts))
    # Drawn last, so that the rows above draw the same codes whatever this is set to.
    for layout in args.layouts if args.wrong_digits else ():
        for char_px in sorted(args.heights):
            counts = Counter[str]()
            for _ in range(args.wrong_digits):
                code, painter = random_code(rng), rng.choice(painters)
                painted = code[:-1] + str((int(code[-1]) + rng.randint(1, 9)) % 10)
                reads = reader.read(in_frame(container_face(painted, layout, painter, rng), char_px, rng))
                got = [r.text for r in reads if r.kind == "container"]
                counts["codes"] += 1
                counts["exact"] += not got  # refused: the one right answer
                counts["wrong"] += len(got)
                counts["plates"] += sum(r.kind == "plate" for r in reads)
                if got:
                    font = painter.font.stem if painter.font else "hershey"
                    misses.append(f"wrong digit, {layout}, {char_px} px, {font}: {format_code(painted)}: read {got}")
            rows.append(row("wrong digit", layout, char_px, counts))
    print(f"{len(painters)} font(s); {args.per_cell} drawn per layout and height; characters "
          f"{', '.join(map(str, sorted(args.heights)))} px tall in a {FRAME[1]}x{FRAME[0]} frame\n")
    table(rows, ["kind", "layout", "char_px", "codes", "exact_pct", "wrong", "plates"],
          title="exact: the code (or the ADR plate's numbers) read, or for a wrong digit none; wrong: "
          "another code reported; plates: plates reported from the print")
    if args.verbose:
        for miss in misses:
            print(f"  {miss}")
    write_json(args.json, "containers", {"heights": sorted(args.heights), "per_cell": args.per_cell,
                                         "wrong_digits": args.wrong_digits, "fonts": len(painters), "rows": rows,
                                         "misses": misses})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
