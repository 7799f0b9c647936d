"""Emblems, seals and stickers between a plate's groups, which the recognizer reads as characters.

A German plate carries its registration seals (two round stickers, one over the other) between the
district and the letters, and the recognizer reads them as a B, an 8 or an O: "M AB 1234" becomes
MBAB1234, itself a valid German plate. Austrian, Slovak, Croatian, Slovenian and Serbian plates
put a coat of arms there, and many US plates a state emblem (Florida's orange) between the groups;
the EU band's own letter, white on blue, is read as the registration's first character too. The
syntax step cannot tell such a character from a real one where both texts fit. What tells them
apart is the ink: a plate's characters are dark strokes of one ink, while a seal, an emblem or the
band is coloured and holds little of that ink. So a character whose place on the plate is coloured
and nearly inkless, where the other characters' places are plain and inked, is taken for an emblem.

Only colour is judged: in an infrared camera's grey frame a seal is just another grey shape, and
nothing is flagged here. There the syntax table says where a country prints its seals and what
they are read as (``emblem_after``, ``emblem_reads``: a German plate's two seals read as an 8), and
the reader drops such a character for that country's format alone (``SyntaxBook.strip_emblem``).
A plate printed in coloured ink, or on a coloured ground, has all its characters' places coloured
alike, and nothing is flagged either.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.recognition.ocr import TextLine

# A pixel of an emblem: its chroma in CIELAB (the distance of a* b* from grey, OpenCV's 8-bit
# scale). Black and tinted dark ink, the white ground and grey road stay under it; red, orange,
# blue and green stickers and arms are over it. (HSV saturation would not do: dark ink with a
# tint, such as the teal or brown of Brazil's plates, is as saturated as a sticker.)
MIN_CHROMA = 30
# A character's place: a window this many line heights either side of its centre, over the line's
# middle rows. A character is about half a line height wide.
HALF_WINDOW = 0.25
# An emblem's place is at least this coloured (a seal on a plate 20 px tall is a few pixels, its
# colour washed out: 0.13-0.2 of its place), holds more colour than ink, and at most this share of
# the ink the median character's place holds (a character beside the EU band has the band in its
# window, but its own strokes too). A thin glyph holds little ink: the L of a dev photo's YD6L3C,
# beside a faded emblem, had 0.13 colour and 0.11 ink, and at 0.12 colour it was taken out.
# Where a seal's place falls short, its 8 is still dropped by the syntax table (emblem_after).
COLOURED_SHARE = 0.15
INK_RATIO = 0.5
# ...while the median of the other characters' places is at most this coloured.
PLAIN_SHARE = 0.05


def place_shares(crop: np.ndarray, line: TextLine) -> list[tuple[float, float]]:
    """Per printed character, (coloured share, dark-ink share) of its place on ``crop`` (the
    line's rectified crop). Empty where the line carries no character positions or the crop is
    not colour."""
    if not line.xs or len(line.xs) != len(line.text) or crop.ndim != 3 or crop.shape[2] != 3:
        return []
    h, w = crop.shape[:2]
    if h < 4 or w < 4:
        return []
    mid = slice(int(0.2 * h), max(int(0.2 * h) + 1, int(0.8 * h)))
    lab = cv2.cvtColor(np.ascontiguousarray(crop[mid]), cv2.COLOR_BGR2LAB)
    chroma = np.hypot(lab[..., 1].astype(np.float32) - 128.0, lab[..., 2].astype(np.float32) - 128.0)
    coloured = chroma >= MIN_CHROMA
    light = lab[..., 0]
    # Ink is the darker of the line's two tones (Otsu), where it is not coloured.
    level, _ = cv2.threshold(light, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = (light < level) & ~coloured
    half = max(1.0, HALF_WINDOW * h)
    out = []
    for x in line.xs:
        cx = x * w
        a, b = int(max(0, cx - half)), int(min(w, cx + half + 1))
        out.append((float(coloured[:, a:b].mean()), float(ink[:, a:b].mean())) if b > a else (0.0, 0.0))
    return out


def emblem_positions(crop: np.ndarray, line: TextLine) -> list[int]:
    """Indices of the characters of ``line`` read from an emblem (see the module's docstring)."""
    if len(line.text) < 4:
        return []  # no plate, and too few places to tell one from the rest
    shares = place_shares(crop, line)
    if len(shares) < 4:
        return []
    out = []
    for i, (col, ink) in enumerate(shares):
        if col < COLOURED_SHARE:
            continue
        others = shares[:i] + shares[i + 1 :]
        if (float(np.median([c for c, _ in others])) <= PLAIN_SHARE and ink <= col
                and ink <= INK_RATIO * float(np.median([k for _, k in others]))):
            out.append(i)
    return out


def without(line: TextLine, positions: list[int]) -> TextLine:
    """``line`` with the characters at ``positions`` taken out (text, confidences, probabilities
    and positions alike)."""
    drop = set(positions)
    keep = [i for i in range(len(line.text)) if i not in drop]
    probs = line.probs[keep] if len(line.probs) == len(line.text) else line.probs
    xs = tuple(line.xs[i] for i in keep) if len(line.xs) == len(line.text) else ()
    return TextLine("".join(line.text[i] for i in keep), [line.confs[i] for i in keep], probs, line.raw, xs)
