"""The synthetic plate camera: trucks of a :class:`drivers.sim.traffic.Traffic` schedule driving through.

It draws what a lane camera would see (a truck approaching, parking on the scale, driving off) with a
number plate laid out the way its country writes it, and says in ``Frame.truth`` what it drew, so the
demo and the tests can check the reader end to end. Scene time is wall-clock time, like the scale
simulator's, so a camera and a scale started separately agree on which truck is in the lane.

Plates are rendered with OpenCV only (Hershey glyphs drawn large, thick and anti-aliased, then
condensed and scaled down), bold and dark on white so a general OCR model reads them as it would a
photo. Each vehicle gets its own mild perspective, focus blur, lighting and sensor noise.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from drivers.camera.afghan import SIZE_MM as AFGHAN_MM
from drivers.camera.afghan import draw_afghan_plate
from drivers.camera.capture import Stream, Truth
from drivers.camera.iranian import draw_iranian_plate, is_national
from drivers.sim.traffic import SimVehicle, Traffic

_SS = 4
"""Plates are drawn this many times larger, then shrunk: anti-aliased edges like a real photo's."""

_PLATE_ASPECT = 520 / 112
"""The standard plate of the region (UZ, KZ, KG, RU): 520 x 112 mm."""

_INK = (22, 22, 22)
_WHITE = (242, 244, 244)

# The codes EU (and EU-style) plates print in their blue band: every country whose plates carry
# one (the syntax table's `band_at_left`; Turkey's band is drawn on its own), so that no drawn plate
# lacks a band its country prints and the reader counts as missing.
EU_BAND_CODES = {
    "AT": "A", "BE": "B", "BG": "BG", "CZ": "CZ", "DE": "D", "EE": "EST", "ES": "E", "FI": "FIN", "FR": "F",
    "GR": "GR", "HR": "HR", "HU": "H", "IE": "IRL", "IT": "I", "LT": "LT", "LU": "L", "LV": "LV", "NL": "NL",
    "PL": "PL", "PT": "P", "RO": "RO", "SI": "SLO", "SK": "SK", "AL": "AL", "BA": "BIH", "ME": "MNE",
    "MK": "NMK", "RS": "SRB",
}  # fmt: skip

# Flags as horizontal stripes (BGR, relative heights), top to bottom.
_FLAGS: dict[str, list[tuple[tuple[int, int, int], float]]] = {
    "UZ": [((181, 153, 0), 1.0), ((38, 17, 206), 0.08), ((255, 255, 255), 1.0), ((38, 17, 206), 0.08),
           ((58, 181, 30), 1.0)],
    "TJ": [((0, 0, 204), 1.0), ((255, 255, 255), 1.4), ((0, 102, 0), 1.0)],
    "RU": [((255, 255, 255), 1.0), ((166, 57, 0), 1.0), ((30, 43, 213), 1.0)],
    "KZ": [((202, 175, 0), 1.0)],
    "KG": [((45, 17, 232), 1.0)],
}
_FLAG_SUN = {"KZ": (0, 200, 254), "KG": (0, 215, 255)}


_FONT, _FSCALE, _FTHICK = cv2.FONT_HERSHEY_DUPLEX, 4.0, 13
_CANVAS_H, _BASELINE = 150, 120


@functools.lru_cache(maxsize=128)
def _char_mask(ch: str) -> np.ndarray:
    """One character on a canvas of fixed height and baseline, cropped left and right to its ink.

    Hershey's zero is slashed, which OCR reads as a letter: plates use a plain narrow oval, drawn here.
    """
    canvas = np.zeros((_CANVAS_H, 200), np.uint8)
    if ch == "0":
        ref = _char_mask("8")
        ys = np.nonzero(ref.any(axis=1))[0]
        h, w = ys.max() - ys.min() + 1, ref.shape[1]
        stroke = _FTHICK + 6  # Hershey strokes are doubled lines: a bit wider than the pen
        half = stroke / 2
        center = (100, int(ys.min() + h / 2))
        cv2.ellipse(canvas, center, (int(w / 2 - half), int(h / 2 - half)), 0, 0, 360, 255, stroke,
                    cv2.LINE_AA)
    elif ch == " ":
        return np.zeros((_CANVAS_H, 34), np.uint8)
    else:
        cv2.putText(canvas, ch, (30, _BASELINE), _FONT, _FSCALE, 255, _FTHICK, cv2.LINE_AA)
    xs = np.nonzero(canvas.any(axis=0))[0]
    if len(xs) == 0:
        return np.zeros((_CANVAS_H, 34), np.uint8)
    return canvas[:, xs.min(): xs.max() + 1]


@functools.lru_cache(maxsize=512)
def _glyph_mask(text: str) -> np.ndarray:
    """``text`` as a float ink mask cropped to its ink, bold, with even letter spacing."""
    gap = np.zeros((_CANVAS_H, 9), np.uint8)
    parts: list[np.ndarray] = []
    for ch in text:
        if parts:
            parts.append(gap)
        parts.append(_char_mask(ch))
    canvas = np.hstack(parts)
    ys = np.nonzero(canvas.any(axis=1))[0]
    xs = np.nonzero(canvas.any(axis=0))[0]
    if len(xs) == 0:
        return np.zeros((1, 1), np.float32)
    crop = canvas[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    return crop.astype(np.float32) / 255.0


def _put_text(img: np.ndarray, text: str, box: tuple[float, float, float, float],
              color: tuple[int, int, int], condense: float = 0.8) -> tuple[int, int]:
    """Fill ``box`` (x, y, w, h) with ``text``: full box height, condensed like plate lettering.
    Returns where the text's ink begins and how wide it is (x, width)."""
    if not text.strip():
        return 0, 0
    x, y, w, h = box
    mask = _glyph_mask(text)
    mh, mw = mask.shape
    th = max(1, round(h))
    tw = max(1, round(min(w, mw * th / mh * condense)))
    m = cv2.resize(mask, (tw, th), interpolation=cv2.INTER_AREA)
    x0 = round(x + (w - tw) / 2)
    y0 = round(y + (h - th) / 2)
    roi = img[y0: y0 + th, x0: x0 + tw]
    m = m[: roi.shape[0], : roi.shape[1], None]
    roi[:] = (roi * (1 - m) + np.array(color, np.float32) * m).astype(np.uint8)
    return x0, tw


# Countries whose plates carry something between the first group and the rest: Germany its two
# registration seals (the inspection sticker over the district's seal), Austria the state's coat
# of arms. The recognizer reads them as characters (edge.recognition.emblems).
_EMBLEMS = {"DE": "seals", "AT": "arms"}
_GAP = "   "  # the room the emblem takes, in the plate's text


def _emblem(img: np.ndarray, kind: str, cx: float, top: float, height: float, width: float) -> None:
    """Draw ``kind`` centred at ``cx`` in the text band (``top``, ``height``), ``width`` wide at most."""
    if kind == "seals":
        r = int(min(width * 0.42, height * 0.24))
        for cy, outer, inner in ((top + height * 0.26, (40, 160, 230), (230, 230, 230)),
                                 (top + height * 0.74, (60, 60, 170), (200, 200, 200))):
            cv2.circle(img, (int(cx), int(cy)), r, outer, -1, cv2.LINE_AA)
            cv2.circle(img, (int(cx), int(cy)), max(1, int(r * 0.55)), inner, -1, cv2.LINE_AA)
    elif kind == "arms":
        half = min(width * 0.3, height * 0.25)
        y0, y1 = top + height * 0.15, top + height * 0.85
        pts = np.array([[cx - half, y0], [cx + half, y0], [cx + half, y0 + (y1 - y0) * 0.6], [cx, y1],
                        [cx - half, y0 + (y1 - y0) * 0.6]], np.int32)
        cv2.fillPoly(img, [pts], (40, 30, 200), cv2.LINE_AA)
        band = (y1 - y0) * 0.12
        cv2.rectangle(img, (int(cx - half), int(y0 + (y1 - y0) * 0.35)),
                      (int(cx + half), int(y0 + (y1 - y0) * 0.35 + band)), (240, 240, 240), -1)


def _flag(img: np.ndarray, country: str, x: float, y: float, w: float, h: float) -> None:
    stripes = _FLAGS.get(country)
    if not stripes:
        return
    total = sum(r for _, r in stripes)
    yy = y
    for color, rel in stripes:
        sh = h * rel / total
        cv2.rectangle(img, (int(x), int(yy)), (int(x + w), int(yy + sh)), color, -1)
        yy += sh
    sun = _FLAG_SUN.get(country)
    if sun:
        cv2.circle(img, (int(x + w / 2), int(y + h / 2)), int(h * 0.28), sun, -1, cv2.LINE_AA)
    cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), (90, 90, 90), max(1, int(h * 0.04)))


def _split(display: str, country: str) -> tuple[str, str, str]:
    """(left region, main text, right region) as the country places the region code."""
    tokens = display.split()
    if len(tokens) < 2:
        return "", display, ""
    if country in ("UZ", "KG"):
        return tokens[0], " ".join(tokens[1:]), ""
    if country in ("KZ", "TJ", "RU"):
        return "", " ".join(tokens[:-1]), tokens[-1]
    return "", display, ""


def plate_mm(country: str) -> tuple[int, int]:
    """A plate's width and height in millimetres: the 520 x 112 mm of most plates drawn here, or
    Afghanistan's two-line plate."""
    return AFGHAN_MM if country == "AF" else (520, 112)


def render_plate(display: str, country: str, height: int = 60) -> np.ndarray:
    """A clean, frontal number plate (BGR, ``height`` px tall, 520:112 mm proportions).

    UZ and KG plates carry the region digits at the left behind a vertical bar and the flag with the
    country code at the right; KZ and TJ put the flag left and the region right; RU puts the region
    and flag in a box at the right; TR, and the EU countries of ``EU_BAND_CODES``, have the blue
    band with the country's code at the left; German plates their two seals and Austrian ones their
    coat of arms after the first group. Iranian national plates are drawn in Persian
    (``drivers.camera.iranian``); Afghan ones in two lines, Persian over Latin, 390 x 160 mm
    (``drivers.camera.afghan``).
    """
    height = max(12, int(height))
    if country == "IR" and is_national(display.replace(" ", "")):
        return draw_iranian_plate(display.replace(" ", ""), height)
    if country == "AF":
        img, latin = draw_afghan_plate(display, height * _SS)
        _put_text(img, display, latin, _INK)
        return cv2.resize(img, (round(height * AFGHAN_MM[0] / AFGHAN_MM[1]), height), interpolation=cv2.INTER_AREA)
    H = height * _SS
    W = round(H * _PLATE_ASPECT)
    img = np.full((H, W, 3), _WHITE, np.uint8)
    b = max(2, int(H * 0.045))
    cv2.rectangle(img, (b // 2, b // 2), (W - 1 - b // 2, H - 1 - b // 2), _INK, b, cv2.LINE_AA)
    left, main, right = _split(display, country)
    ty, th = H * 0.17, H * 0.66  # text band
    x0, x1 = b * 2.0, W - b * 2.0
    bar = max(2, int(b * 0.8))
    if country in ("UZ", "KG"):
        xb = W * 0.185
        _put_text(img, left, (x0, ty, xb - x0 - b, th), _INK)
        cv2.line(img, (int(xb), 0), (int(xb), H), _INK, bar)
        fx = W * 0.875
        _flag(img, country, fx, H * 0.17, W * 0.095, H * 0.36)
        _put_text(img, country, (fx - W * 0.005, H * 0.6, W * 0.105, H * 0.25), _INK, condense=1.0)
        x0, x1 = xb + b * 2, fx - b * 2
    elif country in ("KZ", "TJ"):
        fx = x0
        _flag(img, country, fx, H * 0.17, W * 0.09, H * 0.36)
        _put_text(img, country, (fx, H * 0.6, W * 0.09, H * 0.25), _INK, condense=1.0)
        xb = W * 0.80
        cv2.line(img, (int(xb), 0), (int(xb), H), _INK, bar)
        _put_text(img, right, (xb + b * 2, ty, x1 - xb - b * 3, th), _INK)
        x0, x1 = fx + W * 0.09 + b * 2, xb - b * 2
    elif country == "RU":
        xb = W * 0.76
        cv2.line(img, (int(xb), 0), (int(xb), H), _INK, bar)
        _put_text(img, right, (xb + b * 2, H * 0.08, x1 - xb - b * 3, H * 0.52), _INK)
        _put_text(img, "RUS", (xb + b * 2, H * 0.66, W * 0.11, H * 0.2), _INK, condense=1.0)
        _flag(img, "RU", xb + b * 2 + W * 0.12, H * 0.66, W * 0.07, H * 0.2)
        x1 = xb - b * 2
    elif country == "TR":
        band = W * 0.09
        cv2.rectangle(img, (b, b), (int(band), H - b), (153, 51, 0), -1)
        _put_text(img, "TR", (b * 1.5, H * 0.6, band - b * 2, H * 0.25), (255, 255, 255), condense=1.0)
        x0 = band + b * 2
    elif country in EU_BAND_CODES:
        # The EU band: a ring of yellow stars over the country's code, white on blue, at the left.
        band = W * 0.085
        cv2.rectangle(img, (b, b), (int(band), H - b), (153, 51, 0), -1)
        cx, cy, r = (b + band) / 2, H * 0.3, min(band - b, H * 0.4) * 0.32
        for k in range(12):
            a = 2 * np.pi * k / 12
            cv2.circle(img, (int(cx + r * np.cos(a)), int(cy + r * np.sin(a))), max(1, int(H * 0.018)),
                       (0, 204, 255), -1, cv2.LINE_AA)
        code = EU_BAND_CODES[country]
        _put_text(img, code, (b * 1.5, H * 0.58, band - b * 2.5, H * 0.3), (255, 255, 255),
                  condense=1.0 if len(code) > 1 else 0.8)
        x0 = band + b * 2
    first, _, rest = main.partition(" ")
    if country in _EMBLEMS and rest:
        # The emblem sits in a wider gap after the first group.
        text = first + _GAP + rest
        tx, tw = _put_text(img, text, (x0, ty, x1 - x0, th), _INK)
        full, before = _glyph_mask(text).shape[1], _glyph_mask(first).shape[1]
        gap = full - before - _glyph_mask(rest).shape[1]
        scale = tw / full
        _emblem(img, _EMBLEMS[country], tx + (before + gap / 2) * scale, ty, th, gap * scale)
    else:
        _put_text(img, main, (x0, ty, x1 - x0, th), _INK)
    return cv2.resize(img, (round(height * _PLATE_ASPECT), height), interpolation=cv2.INTER_AREA)


def plate_photo(display: str, country: str, plate_h: int = 48, seed: int = 0,
                size: tuple[int, int] = (1280, 720)) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A still lane frame with one plate on a car-grey body: mild perspective, blur and noise.

    For measuring and testing the reader at a chosen plate size (``plate_h`` pixels tall), where the
    moving scene of :class:`SceneRenderer` gives whatever size the truck's distance gives. Returns
    the frame and the plate's box (x, y, w, h) in it.
    """
    rng = random.Random(f"{display}:{country}:{seed}")
    w, h = size
    frame = np.full((h, w, 3), 105, np.uint8)
    cv2.rectangle(frame, (w // 4, h // 3), (3 * w // 4, h - 40), (70, 80, 95), -1)
    plate = render_plate(display, country, plate_h)
    ph, pw = plate.shape[:2]
    cx, cy = w // 2 + rng.randint(-120, 120), int(h * 0.65) + rng.randint(-40, 40)
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    jitter = [(rng.uniform(-0.03, 0.03) * pw, rng.uniform(-0.06, 0.06) * ph) for _ in range(4)]
    dst = np.array(
        [[cx - pw / 2 + jx, cy - ph / 2 + jy] for (jx, jy) in jitter[:1]]
        + [[cx + pw / 2 + jitter[1][0], cy - ph / 2 + jitter[1][1]]]
        + [[cx + pw / 2 + jitter[2][0], cy + ph / 2 + jitter[2][1]]]
        + [[cx - pw / 2 + jitter[3][0], cy + ph / 2 + jitter[3][1]]],
        np.float32,
    )
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(plate, m, (w, h))
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), m, (w, h))
    frame[mask > 127] = warped[mask > 127]
    blurred = cv2.GaussianBlur(frame, (0, 0), 0.6)
    noise = np.random.default_rng(seed).normal(0, 3.0, blurred.shape)
    out = np.asarray(np.clip(blurred.astype(np.float32) + noise, 0, 255), np.uint8)
    x0, y0 = dst.min(axis=0)
    x1, y1 = dst.max(axis=0)
    return out, (int(x0), int(y0), int(x1 - x0), int(y1 - y0))


@dataclass(frozen=True)
class _Look:
    """How one vehicle's pass looks: fixed per vehicle so its frames are consistent."""

    gain: float
    bias: float
    tilt: float
    skew: tuple[float, float, float, float]
    focus: float
    dirt: float
    lane_offset: float


def _look(seed: int, index: int) -> _Look:
    rng = random.Random(f"{seed}:{index}:look")
    return _Look(
        gain=rng.uniform(0.72, 1.12),
        bias=rng.uniform(-12, 14),
        tilt=rng.uniform(-2.5, 2.5),
        skew=tuple(rng.uniform(-0.03, 0.03) for _ in range(4)),  # type: ignore[arg-type]
        focus=rng.uniform(0.0, 0.9),
        dirt=rng.uniform(0.0, 0.12),
        lane_offset=rng.uniform(-0.05, 0.05),
    )


class SceneRenderer:
    """Draws the lane at time ``t``: background, the vehicle in the lane, its plate; returns the truth."""

    def __init__(self, traffic: Traffic, width: int = 1280, height: int = 720, noise: float = 1.0,
                 seed: int = 1) -> None:
        self.traffic = traffic
        self.width = width
        self.height = height
        self.noise = noise
        self.seed = seed
        self._bg = self._background()
        self._plates: OrderedDict[int, np.ndarray] = OrderedDict()
        nrng = np.random.default_rng(seed)
        sigma = 3.0 * noise
        pad = 64
        n = nrng.normal(0.0, sigma, (height + pad, width + pad, 3)) if sigma > 0 else None
        self._noise_pos = None if n is None else np.clip(n, 0, 255).astype(np.uint8)
        self._noise_neg = None if n is None else np.clip(-n, 0, 255).astype(np.uint8)
        self._rng = random.Random(seed)

    def _background(self) -> np.ndarray:
        W, H = self.width, self.height
        img = np.zeros((H, W, 3), np.uint8)
        horizon = int(H * 0.32)
        sky = np.linspace(235, 190, horizon, dtype=np.float32)[:, None]
        img[:horizon] = np.stack([sky, sky * 0.92, sky * 0.8], axis=-1).astype(np.uint8)
        # Customs canopy and booth in the distance.
        cv2.rectangle(img, (0, int(H * 0.12)), (W, int(H * 0.17)), (120, 120, 128), -1)
        cv2.rectangle(img, (int(W * 0.05), int(H * 0.17)), (int(W * 0.2), horizon), (150, 160, 170), -1)
        cv2.rectangle(img, (int(W * 0.08), int(H * 0.2)), (int(W * 0.17), int(H * 0.27)), (90, 80, 70), -1)
        cv2.rectangle(img, (int(W * 0.82), int(H * 0.17)), (int(W * 0.86), horizon), (110, 110, 110), -1)
        road = np.linspace(95, 125, H - horizon, dtype=np.float32)[:, None]
        img[horizon:] = np.stack([road, road, road * 1.02], axis=-1).clip(0, 255).astype(np.uint8)
        rng = np.random.default_rng(7)
        grit = rng.integers(0, 14, (H - horizon, W, 1), dtype=np.uint8)
        img[horizon:] = cv2.subtract(img[horizon:], np.repeat(grit, 3, axis=2))
        # Lane edges converge to the vanishing point; the weighbridge platform in the middle.
        vp = (W // 2, horizon)
        for fx in (0.08, 0.92):
            cv2.line(img, vp, (int(W * fx - W * 0.3 * (0.5 - fx)), H), (215, 215, 210), max(2, W // 300),
                     cv2.LINE_AA)
        plat = np.array([[W * 0.36, H * 0.55], [W * 0.64, H * 0.55], [W * 0.8, H * 0.98], [W * 0.2, H * 0.98]],
                        np.int32)
        cv2.fillConvexPoly(img, plat, (88, 92, 96), cv2.LINE_AA)
        cv2.polylines(img, [plat], True, (150, 155, 160), max(2, W // 400), cv2.LINE_AA)
        return img

    def _plate_image(self, v: SimVehicle) -> np.ndarray:
        img = self._plates.get(v.index)
        if img is None:
            img = render_plate(v.display, v.country, height=96)
            look = _look(self.seed, v.index)
            if look.dirt > 0:  # road dust thickest at the bottom of the plate
                grad = np.linspace(0, look.dirt, img.shape[0], dtype=np.float32)[:, None, None]
                img = (img * (1 - grad) + np.array([70, 90, 110], np.float32) * grad).astype(np.uint8)
            self._plates[v.index] = img
            while len(self._plates) > 4:
                self._plates.popitem(last=False)
        return img

    def geometry(self, p: float, look: _Look) -> tuple[float, float, float]:
        """(centre x, bottom y, plate width) of the vehicle at lane progress ``p``."""
        W, H = self.width, self.height
        park_pw = 0.17 * W
        if p <= 0.5:
            q = p / 0.5
            s = 0.42 + 0.58 * q
            cx = W * (0.5 + look.lane_offset * q)
            by = H * (0.50 + 0.42 * q)
        else:
            q = (p - 0.5) / 0.5
            s = 1.0 + 0.45 * q
            cx = W * (0.5 + look.lane_offset) + q * W * 0.95
            by = H * (0.92 + 0.1 * q)
        return cx, by, park_pw * s

    def render(self, t: float) -> tuple[np.ndarray, Truth]:
        img = self._bg.copy()
        truth: list[dict[str, Any]] = []
        v = self.traffic.vehicle_at(t)
        gain, bias = 1.0, 0.0
        if v is not None:
            p = v.progress(t)
            if p is not None:
                look = _look(self.seed, v.index)
                gain, bias = look.gain, look.bias
                moving = 0.0 if v.loaded <= t < v.depart else (2.0 if p > 0.5 else 0.6)
                box = self._draw_vehicle(img, v, p, look, moving)
                if box is not None:
                    truth.append({"plate": v.plate, "display": v.display, "country": v.country,
                                  "syntax": v.syntax, "box": box, "vehicle": v.index})
        if gain != 1.0 or bias != 0.0:
            img = cv2.convertScaleAbs(img, alpha=gain, beta=bias)
        if self._noise_pos is not None and self._noise_neg is not None:
            oy, ox = self._rng.randrange(64), self._rng.randrange(64)
            H, W = self.height, self.width
            img = cv2.add(img, self._noise_pos[oy: oy + H, ox: ox + W])
            img = cv2.subtract(img, self._noise_neg[oy: oy + H, ox: ox + W])
        return img, tuple(truth)

    def _draw_vehicle(self, img: np.ndarray, v: SimVehicle, p: float, look: _Look,
                      moving: float) -> list[int] | None:
        cx, by, pw = self.geometry(p, look)
        u = pw
        cw, ch = 2.9 * u, 2.3 * u
        x0, y0, x1 = cx - cw / 2, by - ch, cx + cw / 2

        def P(x: float, y: float) -> tuple[int, int]:
            return round(x), round(y)

        color = v.color
        dark = tuple(int(c * 0.55) for c in color)
        cv2.ellipse(img, P(cx, by + 0.05 * u), (int(cw * 0.6), int(0.18 * u)), 0, 0, 360, (55, 58, 60), -1,
                    cv2.LINE_AA)
        for wx in (x0 + 0.12 * cw, x1 - 0.12 * cw):  # wheels
            cv2.rectangle(img, P(wx - 0.17 * u, by - 0.25 * u), P(wx + 0.17 * u, by + 0.12 * u), (25, 25, 25), -1)
        cv2.rectangle(img, P(x0, y0), P(x1, by - 0.08 * u), color, -1, cv2.LINE_AA)
        cv2.rectangle(img, P(x0, y0), P(x1, y0 + 0.08 * ch), dark, -1)
        # Windshield with a sky reflection.
        wy0, wy1 = y0 + 0.12 * ch, y0 + 0.45 * ch
        cv2.rectangle(img, P(x0 + 0.07 * cw, wy0), P(x1 - 0.07 * cw, wy1), (70, 60, 52), -1, cv2.LINE_AA)
        refl = np.array([P(x0 + 0.2 * cw, wy0), P(x0 + 0.36 * cw, wy0), P(x0 + 0.2 * cw, wy1),
                         P(x0 + 0.1 * cw, wy1)], np.int32)
        cv2.fillConvexPoly(img, refl, (120, 112, 104), cv2.LINE_AA)
        cv2.line(img, P(cx, wy0), P(cx, wy1), dark, max(1, int(0.03 * u)))
        # Grille, lights, bumper.
        gy0, gy1 = y0 + 0.5 * ch, y0 + 0.77 * ch
        cv2.rectangle(img, P(x0 + 0.27 * cw, gy0), P(x1 - 0.27 * cw, gy1), (45, 45, 48), -1)
        n = 6
        for i in range(1, n):
            yy = gy0 + (gy1 - gy0) * i / n
            cv2.line(img, P(x0 + 0.28 * cw, yy), P(x1 - 0.28 * cw, yy), (110, 110, 115), max(1, int(0.02 * u)))
        for lx in (x0 + 0.13 * cw, x1 - 0.13 * cw):
            cv2.ellipse(img, P(lx, y0 + 0.63 * ch), (int(0.17 * u), int(0.08 * u)), 0, 0, 360, (200, 235, 245),
                        -1, cv2.LINE_AA)
        bumper_y0 = y0 + 0.79 * ch
        cv2.rectangle(img, P(x0 - 0.02 * cw, bumper_y0), P(x1 + 0.02 * cw, by - 0.06 * u), (58, 60, 62), -1)
        # The plate, with this vehicle's perspective, focus and motion blur.
        # ``u`` is a 520 mm plate's width; a plate of another size is drawn to scale.
        wmm, hmm = plate_mm(v.country)
        pw = u * wmm / 520
        ph = pw * hmm / wmm
        pcy = (bumper_y0 + by - 0.06 * u) / 2
        return self._paste_plate(img, v, cx, pcy, pw, ph, look, moving)

    def _paste_plate(self, img: np.ndarray, v: SimVehicle, cx: float, cy: float, pw: float, ph: float,
                     look: _Look, moving: float) -> list[int] | None:
        plate = self._plate_image(v)
        sh, sw = plate.shape[:2]
        a = math.radians(look.tilt)
        ca, sa = math.cos(a), math.sin(a)
        corners = []
        for (dx, dy), k in zip(((-1, -1), (1, -1), (1, 1), (-1, 1)), look.skew, strict=True):
            x = dx * pw / 2 * (1 + k)
            y = dy * ph / 2 * (1 + k * dx)
            corners.append((cx + x * ca - y * sa, cy + x * sa + y * ca))
        dst = np.array(corners, np.float32)
        bx0, by0 = np.floor(dst.min(axis=0)).astype(int) - 2
        bx1, by1 = np.ceil(dst.max(axis=0)).astype(int) + 2
        H, W = img.shape[:2]
        fully_in = bx0 >= 0 and by0 >= 0 and bx1 <= W and by1 <= H
        cx0, cy0, cx1, cy1 = max(0, bx0), max(0, by0), min(W, bx1), min(H, by1)
        if cx1 - cx0 < 4 or cy1 - cy0 < 4:
            return None
        src = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], np.float32)
        M = cv2.getPerspectiveTransform(src, dst - np.array([cx0, cy0], np.float32))
        size = (cx1 - cx0, cy1 - cy0)
        warped = cv2.warpPerspective(plate, M, size, flags=cv2.INTER_AREA)
        mask = cv2.warpPerspective(np.full((sh, sw), 255, np.uint8), M, size, flags=cv2.INTER_LINEAR)
        if look.focus > 0.05:
            warped = cv2.GaussianBlur(warped, (0, 0), look.focus)
        k = round(moving * pw / 200)
        if k >= 2:  # motion blur along the direction of travel
            kernel = np.zeros((1, k), np.float32)
            kernel[0, :] = 1.0 / k
            warped = cv2.filter2D(warped, -1, kernel)
        m = (mask.astype(np.float32) / 255.0)[..., None]
        roi = img[cy0:cy1, cx0:cx1]
        roi[:] = (roi * (1 - m) + warped * m).astype(np.uint8)
        if not fully_in:
            return None
        return [int(bx0 + 2), int(by0 + 2), int(bx1 - bx0 - 4), int(by1 - by0 - 4)]


class SyntheticStream(Stream):
    """Frames on the wall-clock grid of ``fps`` (``pace="realtime"``), or back to back (``"fast"``)."""

    live = False

    def __init__(self, renderer: SceneRenderer, fps: float, pace: str = "realtime",
                 t0: float | None = None) -> None:
        self._r = renderer
        self._fps = fps
        self._pace = pace
        self._t0 = time.time() if t0 is None else t0
        self._n = 0
        self._last_tick: int | None = None
        self._interrupted = False

    def info(self) -> dict[str, Any]:
        return {"codec": "synthetic", "nominal_fps": self._fps, "backend": "synthetic"}

    def read(self) -> tuple[np.ndarray, float, Truth]:
        if self._pace == "fast":
            t = self._t0 + self._n / self._fps
        else:
            tick = math.floor(time.time() * self._fps) + 1
            if self._last_tick is not None and tick <= self._last_tick:
                tick = self._last_tick + 1
            self._last_tick = tick
            t = tick / self._fps
            delay = t - time.time()
            if delay > 0:
                time.sleep(delay)
        self._n += 1
        image, truth = self._r.render(t)
        return image, t, truth

    def close(self) -> None:
        pass
