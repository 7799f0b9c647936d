"""Iranian national number plates, drawn for the synthetic camera (and for training the reader).

An Iranian plate is written in Persian: two digits, a series letter, three digits, and behind a
bar, under the word ایران, the two-digit province code (``۱۲ ب ۳۴۵ | ۶۷``), with a blue band at
the left. Iranian trucks cross into Central Asia through Turkmenistan, so a post sees them. The
reader reports such a plate in Latin codes (``12B34567``: the digits, and one Latin letter per
Persian series letter, ``SERIES``), so that HQ and the syntax table deal in ``[A-Z0-9]`` only.

OpenCV draws no Persian, so the glyphs come from an atlas (``glyphs/persian.png``), rendered once
from Vazirmatn ExtraBold (SIL Open Font License 1.1, ``glyphs/OFL.txt``) by
``models/tools/train_persian_reader.py --write-atlas``: the camera needs no font engine at run time.
Vazirmatn is the font the reader is *not* trained on, so the scene tests read an unseen font.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

DIGITS_FA = "۰۱۲۳۴۵۶۷۸۹"
# The series letter's Latin code, as this project writes it (no national transliteration standard
# gives one Latin letter to each): the letter's usual Latin initial where it is free, another
# letter where two would clash (ط U beside ت T, ص C beside س S, ژ X beside ز Z, ش W, ع E).
SERIES: dict[str, str] = {
    "B": "ب", "P": "پ", "T": "ت", "J": "ج", "D": "د", "Z": "ز", "X": "ژ", "S": "س", "W": "ش", "C": "ص",
    "U": "ط", "E": "ع", "F": "ف", "Q": "ق", "K": "ک", "G": "گ", "L": "ل", "M": "م", "N": "ن", "V": "و",
    "H": "ه", "Y": "ی", "A": "الف",
}
IRAN_WORD = "ایران"
BAND_FRACTION = 0.075
"""The blue band's share of the plate's width."""

_ATLAS = Path(__file__).with_name("glyphs") / "persian"
_ASPECT = 520 / 110
_WHITE = (242, 244, 244)
_YELLOW = (0, 200, 250)
_RED = (40, 40, 190)
_INK = (22, 22, 22)
_BLUE = (153, 51, 0)

Glyphs = Callable[[str], np.ndarray]
"""A glyph source: the ink mask (uint8, 255 = ink) of a text, every text on the same baseline and in
a strip of the same height, cut left and right to its ink."""


@functools.lru_cache(maxsize=1)
def _atlas() -> tuple[np.ndarray, dict[str, list[int]]]:
    strip = cv2.imread(str(_ATLAS.with_suffix(".png")), cv2.IMREAD_GRAYSCALE)
    if strip is None:
        raise FileNotFoundError(f"glyph atlas {_ATLAS.with_suffix('.png')} is missing")
    index = json.loads(_ATLAS.with_suffix(".json").read_text(encoding="utf-8"))
    return strip, index["glyphs"]


def atlas_glyphs(text: str) -> np.ndarray:
    """The atlas's mask of ``text`` (a digit, a series letter, the word ایران, or an Afghan
    province's name: ``drivers.camera.afghan``)."""
    strip, index = _atlas()
    if text not in index:
        raise KeyError(f"no glyph for {text!r} in the Persian glyph atlas")
    x0, x1 = index[text]
    return strip[:, x0:x1]


def persian(code_text: str) -> list[str]:
    """The plate's glyphs for its Latin-coded text: ``12B34567`` -> ۱ ۲ ب ۳ ۴ ۵ ۶ ۷."""
    return [DIGITS_FA[int(c)] if c.isdigit() else SERIES[c] for c in code_text]


def is_national(text: str) -> bool:
    """Whether ``text`` is an Iranian national plate in Latin codes (``12E34567``)."""
    return len(text) == 8 and (text[:2] + text[3:]).isdigit() and text[2] in SERIES


def ink_rows(mask: np.ndarray) -> tuple[int, int]:
    """The first and past-the-last rows of ``mask`` that hold ink: glyphs are scaled by their ink,
    not by the strip's height, which holds every glyph's ascent and descent."""
    rows = np.flatnonzero(mask.max(axis=1) > 64)
    return (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, mask.shape[0])


def digit_rows(chars: list[str], masks: list[np.ndarray]) -> tuple[int, int]:
    """The top row and height of the digits' ink among ``chars`` drawn as ``masks``: a plate's text
    is scaled by its digits (Persian digits share one height; the zero is a small dot mid-height,
    so it is left out), the whole strip's where there is no other digit."""
    spans = [ink_rows(m) for c, m in zip(chars, masks, strict=True) if c in DIGITS_FA[1:]]
    spans = spans or [(0, masks[0].shape[0])]
    top = min(t for t, _ in spans)
    return top, max(1, max(e for _, e in spans) - top)


def paint_mask(img: np.ndarray, mask: np.ndarray, x: float, y: float, sx: float, sy: float,
               ink: tuple[int, int, int]) -> float:
    """Paint ``mask`` scaled by (sx, sy) with its top-left at (x, y); the painted width."""
    w, h = max(1, round(mask.shape[1] * sx)), max(1, round(mask.shape[0] * sy))
    m = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA if sx < 1 else cv2.INTER_LINEAR)
    x0, y0 = round(x), round(y)
    H, W = img.shape[:2]
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if xa >= xb or ya >= yb:
        return w
    a = (m[ya - y0 : yb - y0, xa - x0 : xb - x0].astype(np.float32) / 255.0)[..., None]
    roi = img[ya:yb, xa:xb].astype(np.float32)
    img[ya:yb, xa:xb] = (roi * (1 - a) + np.array(ink, np.float32) * a).astype(np.uint8)
    return w


def draw_iranian_plate(text: str, height: int = 96, glyphs: Glyphs | None = None,
                       rng: random.Random | None = None) -> np.ndarray:
    """A clean, frontal Iranian national plate (BGR, ``height`` px tall, 520:110 mm) for the
    Latin-coded ``text`` (``12E34567``: digits, series code, digits, province).

    Yellow for the public-transport series (ع, trucks and buses) and taxis (ت), red with white ink
    for government (الف), white otherwise. ``glyphs``: another glyph source (training draws in many
    fonts); ``rng``: small variations of size and spacing, as plate makers differ."""
    if not is_national(text):
        raise ValueError(f"not an Iranian national plate in Latin codes: {text!r}")
    glyphs = glyphs or atlas_glyphs

    def jitter(lo: float, hi: float) -> float:
        return rng.uniform(lo, hi) if rng is not None else (lo + hi) / 2

    H = max(24, int(height)) * 2
    W = round(H * _ASPECT)
    letter = text[2]
    ground, ink = (_YELLOW, _INK) if letter in "ET" else (_RED, _WHITE) if letter == "A" else (_WHITE, _INK)
    img = np.full((H, W, 3), ground, np.uint8)
    b = max(2, int(H * 0.03))
    cv2.rectangle(img, (b // 2, b // 2), (W - 1 - b // 2, H - 1 - b // 2), _INK, b, cv2.LINE_AA)
    # The band: the flag's three stripes over I.R. / IRAN, white on blue.
    band = int(W * BAND_FRACTION)
    cv2.rectangle(img, (b, b), (band, H - b), _BLUE, -1)
    sy0, sh = int(H * 0.1), int(H * 0.08)
    for k, colour in enumerate(((0, 150, 35), (255, 255, 255), (30, 20, 220))):
        cv2.rectangle(img, (b + int(H * 0.05), sy0 + k * sh), (band - int(H * 0.05), sy0 + (k + 1) * sh), colour, -1)
    for label, y in (("I.R.", 0.62), ("IRAN", 0.85)):
        scale = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)[0][0]
        fs = (band - b - H * 0.06) / scale
        cv2.putText(img, label, (b + int(H * 0.03), int(H * y)), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255),
                    max(1, int(fs * 2)), cv2.LINE_AA)
    bar = int(W * 0.775)
    cv2.line(img, (bar, b), (bar, H - b), _INK, max(2, int(b * 0.8)))
    chars = persian(text)
    masks = [glyphs(c) for c in chars]
    ref_top, ref_h = digit_rows(chars, masks)
    digit_h = H * jitter(0.58, 0.66)
    s = digit_h / ref_h
    top = H * 0.5 - digit_h / 2 - ref_top * s + H * jitter(-0.02, 0.03)
    main = masks[:6]
    gap = H * jitter(0.05, 0.1)
    widths = [m.shape[1] * s for m in main]
    spacing = [H * jitter(0.02, 0.05)] * 5
    spacing[1] = spacing[2] = gap  # around the letter
    total = sum(widths) + sum(spacing)
    x0, x1 = band + H * 0.1, bar - H * 0.08
    sx = min(s, s * (x1 - x0) / total)
    x = x0 + max(0.0, (x1 - x0 - total * sx / s) / 2)
    for k, m in enumerate(main):
        x += paint_mask(img, m, x, top, sx, s, ink)
        if k < 5:
            x += spacing[k] * sx / s
    # The province box: ایران small at the top, the code under it.
    word = glyphs(IRAN_WORD)
    wt, wb = ink_rows(word)
    ws = H * 0.15 / max(1, wb - wt)
    bx0, bx1 = bar + H * 0.06, W - b * 2
    ww = word.shape[1] * ws
    paint_mask(img, word, bx0 + (bx1 - bx0 - ww) / 2, H * 0.05 - wt * ws, ws, ws, ink)
    rs = H * 0.46 / ref_h
    region = masks[6:]
    rw = sum(m.shape[1] for m in region) * rs + H * 0.04
    rsx = min(rs, rs * (bx1 - bx0) / rw)
    x = bx0 + max(0.0, (bx1 - bx0 - rw * rsx / rs) / 2)
    for m in region:
        x += paint_mask(img, m, x, H * 0.3 - ref_top * rs, rsx, rs, ink) + H * 0.04
    return cv2.resize(img, (round(height * _ASPECT), int(height)), interpolation=cv2.INTER_AREA)
