"""Afghan number plates, drawn for the synthetic camera.

Afghan trucks cross into Uzbekistan at Termez-Hairatan, so a post there sees these plates more than
any other foreign one. The 2004 series (Wikipedia, "Vehicle registration plates of Afghanistan" and
"Kfz-Kennzeichen (Afghanistan)"; no photograph was checked here): a plate of about 390 x 160 mm,
black on white (on yellow for buses and taxis), in two lines. Above, in Persian: the province's
name, the number in Persian digits and the class's letter; below, in Latin: the province's three
letters, the same number, and the class (``KBL 12345 PRV``: PRV private, L lorry, B bus, T taxi,
M motorcycle). At the left between the lines an image of the presidential palace, at the right a
hologram. The reader reads the Latin line; the Persian one is there to be told from a plate.

Not drawn: Kabul's sixth digit, which newer plates print in the Persian line only (so the Latin line
of such a plate does not say the whole number), and the Herat plates of January 2026 with Western
digits only, whose layout no source here describes.
"""

from __future__ import annotations

import cv2
import numpy as np

from drivers.camera.iranian import DIGITS_FA, SERIES, atlas_glyphs, digit_rows, paint_mask

SIZE_MM = (390, 160)
"""The plate's width and height."""

# The provinces the simulator's Afghan trucks come from: the north's, which the Hairatan bridge
# serves, and the largest cities'. Names as the plates print them (Persian or Pashto).
PROVINCES: dict[str, str] = {
    "KBL": "کابل", "BLK": "بلخ", "HRT": "هرات", "KDZ": "کندز", "JZJ": "جوزجان", "SMG": "سمنگان",
    "KDR": "قندهار", "NGR": "ننگرهار",
}
# The class's Persian letter for its Latin code.
CLASSES: dict[str, str] = {"PRV": SERIES["W"], "L": SERIES["L"], "B": SERIES["B"], "T": SERIES["T"],
                           "M": SERIES["M"]}
_WHITE = (242, 244, 244)
_YELLOW = (0, 200, 250)
_INK = (22, 22, 22)


def parse(display: str) -> tuple[str, str, str]:
    """(province, number, class) of an Afghan plate's Latin line, ``"KBL 12345 PRV"``."""
    parts = display.split()
    if len(parts) != 3 or parts[0] not in PROVINCES or not parts[1].isdigit() or parts[2] not in CLASSES:
        raise ValueError(f"not an Afghan plate this camera draws: {display!r} "
                         f"(provinces {sorted(PROVINCES)}, classes {sorted(CLASSES)})")
    return parts[0], parts[1], parts[2]


def draw_afghan_plate(display: str, height: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The plate for ``display`` (``KBL 12345 PRV``), ``height`` px tall, without its Latin line, and
    the box (x, y, w, h) that line fills: the caller letters it as it letters every Latin plate."""
    province, number, cls = parse(display)
    H = int(height)
    W = round(H * SIZE_MM[0] / SIZE_MM[1])
    img = np.full((H, W, 3), _YELLOW if cls in ("B", "T") else _WHITE, np.uint8)
    b = max(2, int(H * 0.03))
    cv2.rectangle(img, (b // 2, b // 2), (W - 1 - b // 2, H - 1 - b // 2), _INK, b, cv2.LINE_AA)
    # The Persian line, read right to left: the province's name at the right, the number, the class's
    # letter at the left. Scaled by the digits' ink height, as an Iranian plate's.
    glyphs = [DIGITS_FA[int(c)] for c in number]
    digits = [atlas_glyphs(g) for g in glyphs]
    ref_top, ref_h = digit_rows(glyphs, digits)
    s = H * 0.26 / ref_h
    top = H * 0.08 - ref_top * s
    pieces = [atlas_glyphs(CLASSES[cls]), *digits, atlas_glyphs(PROVINCES[province])]
    gaps = [H * 0.12] + [H * 0.025] * (len(digits) - 1) + [H * 0.12]
    total = sum(m.shape[1] for m in pieces) * s + sum(gaps)
    x0, x1 = W * 0.06, W * 0.94
    sx = min(s, s * (x1 - x0) / total)
    x = x0 + max(0.0, (x1 - x0 - total * sx / s) / 2)
    for m, gap in zip(pieces, [*gaps, 0.0], strict=True):
        x += paint_mask(img, m, x, top, sx, s, _INK) + gap * sx / s
    # The palace at the left between the lines, the hologram at the right.
    py = H * 0.45
    cv2.rectangle(img, (int(W * 0.03), int(py)), (int(W * 0.11), int(py + H * 0.07)), (150, 120, 90), -1)
    cv2.ellipse(img, (int(W * 0.07), int(py)), (int(W * 0.025), int(H * 0.035)), 0, 180, 360, (150, 120, 90), -1,
                cv2.LINE_AA)
    cv2.circle(img, (int(W * 0.93), int(H * 0.47)), int(H * 0.05), (200, 195, 185), -1, cv2.LINE_AA)
    return img, (W * 0.05, H * 0.55, W * 0.9, H * 0.36)
