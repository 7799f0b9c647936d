"""Text detection (DB) and recognition (CTC) with the PP-OCR ONNX models, run by our own code.

We re-implement the pre- and post-processing instead of depending on rapidocr because rapidocr
silently downloads models when its config and the bundled files disagree, pulls in shapely and
pyclipper, and decodes every class of the model when a plate only ever holds 36 (the shipped file's
output layer is already cut to 1 750 classes: models/tools/prune_classes.py). The recognizer's output is
folded onto a plate alphabet (letters in either case and Cyrillic look-alikes count as the same
Latin letter), which removes the "read a Chinese character instead of a 0" failure outright.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edge.errors import ModelError
from edge.recognition.alphabet import ALNUM

# Characters a recognizer may print for the Latin letters on a plate: Cyrillic and Greek look-alikes
# (Russian, Kazakh and Kyrgyz plates use only letters that look like Latin ones).
LOOKALIKES: dict[str, str] = {
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "У": "Y", "Х": "X", "а": "A", "в": "B", "е": "E", "к": "K", "м": "M", "н": "H",
    "о": "O", "р": "P", "с": "C", "т": "T", "у": "Y", "х": "X", "Α": "A", "Β": "B", "Ε": "E",
    "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T",
    "Υ": "Y", "Χ": "X", "Ø": "0", "Ö": "O", "Ü": "U", "Ç": "C", "Ş": "S", "Ğ": "G", "İ": "I",
}  # fmt: skip
SEPARATORS = " -·.:_|"

SEP = len(ALNUM)  # group index of "separator or anything else": ends a run, prints nothing
N_GROUPS = len(ALNUM) + 1


def quad_height(q: np.ndarray) -> float:
    """A text quad's (tl, tr, br, bl) height: the mean of its two sides, so a slanted line's height is
    its characters' height, not its bounding box's."""
    return float((np.linalg.norm(q[0] - q[3]) + np.linalg.norm(q[1] - q[2])) / 2)


def quad_width(q: np.ndarray) -> float:
    """A text quad's width: the mean of its top and bottom edges."""
    return float((np.linalg.norm(q[0] - q[1]) + np.linalg.norm(q[3] - q[2])) / 2)


@dataclass(frozen=True)
class TextBox:
    """A detected text region: four corners (tl, tr, br, bl) in image pixels, and the DB score."""

    quad: np.ndarray
    score: float

    @property
    def rect(self) -> tuple[int, int, int, int]:
        x0, y0 = self.quad.min(axis=0)
        x1, y1 = self.quad.max(axis=0)
        return int(x0), int(y0), math.ceil(x1 - x0), math.ceil(y1 - y0)

    @property
    def height(self) -> float:
        return quad_height(self.quad)

    @property
    def width(self) -> float:
        return quad_width(self.quad)


@dataclass
class TextLine:
    """What the recognizer read in one crop.

    ``probs`` holds, per printed character, the probabilities of the 36 plate characters at the
    time step that printed it: syntax correction uses it to pick the most likely character of the
    class a position demands instead of guessing from a confusion table alone.
    """

    text: str
    confs: list[float]
    probs: np.ndarray = field(default_factory=lambda: np.zeros((0, len(ALNUM)), np.float32))
    raw: str = ""
    # Each printed character's centre across the crop (0 its left edge, 1 its right), from the time
    # step that printed it; empty where unknown (a line merged or made up). It tells what on the
    # plate a character was read from: an emblem between two groups is read as one.
    xs: tuple[float, ...] = ()

    @property
    def confidence(self) -> float:
        return float(min(self.confs)) if self.confs else 0.0

    @property
    def mean_confidence(self) -> float:
        return float(np.mean(self.confs)) if self.confs else 0.0


def to_input(img: np.ndarray) -> np.ndarray:
    """A BGR image as the PP-OCR models take it: CHW, float, scaled to [-1, 1]."""
    x = img.astype(np.float32) * (2.0 / 255.0) - 1.0
    return x.transpose(2, 0, 1)


def ensure_bgr(img: np.ndarray) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.size == 0:
        raise ValueError("image is empty or not an array")
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.ndim == 3 and img.shape[2] == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    raise ValueError(f"unsupported image shape {img.shape}")


def _mini_box(points: Any) -> tuple[np.ndarray, float]:
    rect = cv2.minAreaRect(points)
    return order_quad(cv2.boxPoints(rect)), float(min(rect[1]))


def order_quad(pts: np.ndarray) -> np.ndarray:
    """Corners in the order tl, tr, br, bl (the order the perspective crop expects)."""
    pts = np.asarray(pts, dtype=np.float32).reshape(4, 2)
    xs = pts[np.argsort(pts[:, 0], kind="stable")]
    left = xs[:2][np.argsort(xs[:2, 1], kind="stable")]
    right = xs[2:][np.argsort(xs[2:, 1], kind="stable")]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


def unclip_rect(quad: np.ndarray, ratio: float) -> np.ndarray:
    """Grow a shrunk DB box back to the text's extent.

    DB's training shrank each text polygon by ``area * (1 - r^2) / perimeter``; PaddleOCR undoes it
    by offsetting the polygon outward by ``area * unclip_ratio / perimeter`` (pyclipper). For the
    rectangle minAreaRect gives, offsetting is growing both sides by twice that distance; the round
    corners pyclipper would add are cut off by the next minAreaRect anyway.
    """
    rect = cv2.minAreaRect(quad.astype(np.float32))
    (cx, cy), (w, h), angle = rect
    area = w * h
    perimeter = 2 * (w + h)
    if perimeter <= 0:
        return quad
    d = area * ratio / perimeter
    return order_quad(cv2.boxPoints(((cx, cy), (w + 2 * d, h + 2 * d), angle)))


class TextDetector:
    """PP-OCR DB detector: probability map, threshold, contours, unclip."""

    def __init__(
        self,
        session: Any,
        max_side: int = 960,
        thresh: float = 0.3,
        box_thresh: float = 0.5,
        unclip_ratio: float = 1.6,
        max_candidates: int = 300,
    ) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.max_side = max_side
        self.thresh = thresh
        self.box_thresh = box_thresh
        self.unclip_ratio = unclip_ratio
        self.max_candidates = max_candidates

    def prepare(
        self, img: np.ndarray, max_side: int | None = None, upscale: bool = False
    ) -> tuple[np.ndarray, float, float]:
        limit = max_side or self.max_side
        h, w = img.shape[:2]
        ratio = limit / max(h, w) if upscale else min(1.0, limit / max(h, w))
        rh = max(32, round(h * ratio / 32) * 32)
        rw = max(32, round(w * ratio / 32) * 32)
        resized = cv2.resize(img, (rw, rh), interpolation=cv2.INTER_LINEAR if ratio < 1 else cv2.INTER_CUBIC)
        return to_input(resized)[None], rh / h, rw / w

    def detect(self, img: np.ndarray, max_side: int | None = None, upscale: bool = False) -> list[TextBox]:
        """Text boxes in ``img``, in its pixels; the detector sees it with its longer side at most
        ``max_side`` (exactly ``max_side`` with ``upscale``, to make small text big enough)."""
        img = ensure_bgr(img)
        x, sy, sx = self.prepare(img, max_side, upscale)
        try:
            out = self.session.run(None, {self.input_name: x})[0]
        except Exception as err:
            raise ModelError(f"text detector failed on a {img.shape} image: {err}") from err
        prob = out[0, 0]
        return self.boxes_from_map(prob, img.shape[1], img.shape[0], sx, sy)

    def boxes_from_map(self, prob: np.ndarray, width: int, height: int, sx: float, sy: float) -> list[TextBox]:
        mask: Any = cv2.dilate((prob > self.thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        boxes: list[TextBox] = []
        for contour in contours[: self.max_candidates]:
            quad, short = _mini_box(contour)
            if short < 3:
                continue
            score = self._score(prob, quad)
            if score < self.box_thresh:
                continue
            grown = unclip_rect(quad, self.unclip_ratio)
            grown, short = _mini_box(grown)
            if short < 5:
                continue
            grown[:, 0] = np.clip(np.round(grown[:, 0] / sx), 0, width - 1)
            grown[:, 1] = np.clip(np.round(grown[:, 1] / sy), 0, height - 1)
            tb = TextBox(grown, score)
            if tb.width <= 3 or tb.height <= 3:
                continue
            boxes.append(tb)
        boxes.sort(key=lambda b: (b.quad[0, 1], b.quad[0, 0]))
        return boxes

    @staticmethod
    def _score(prob: np.ndarray, quad: np.ndarray) -> float:
        h, w = prob.shape
        x0 = int(np.clip(np.floor(quad[:, 0].min()), 0, w - 1))
        x1 = int(np.clip(np.ceil(quad[:, 0].max()), 0, w - 1))
        y0 = int(np.clip(np.floor(quad[:, 1].min()), 0, h - 1))
        y1 = int(np.clip(np.ceil(quad[:, 1].max()), 0, h - 1))
        mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
        pts = (quad - np.array([x0, y0], np.float32)).astype(np.int32)
        cv2.fillPoly(mask, [pts], 1)
        return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


VERTICAL = 1.5  # a box this many times as tall as it is wide holds a vertical text


def _crop_size(q: np.ndarray) -> tuple[int, int]:
    w = max(2, int(max(np.linalg.norm(q[0] - q[1]), np.linalg.norm(q[2] - q[3]))))
    h = max(2, int(max(np.linalg.norm(q[0] - q[3]), np.linalg.norm(q[1] - q[2]))))
    return w, h


def is_vertical(quad: np.ndarray) -> bool:
    """Whether ``crop_quad`` turns this box's crop a quarter to read it: its text runs downwards."""
    w, h = _crop_size(np.asarray(quad, np.float32))
    return h / w >= VERTICAL


def crop_quad(img: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Perspective-rectify a quadrilateral (tl, tr, br, bl) into an upright crop."""
    q = np.asarray(quad, np.float32)
    w, h = _crop_size(q)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    m = cv2.getPerspectiveTransform(q, dst)
    crop = cv2.warpPerspective(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if h / w >= VERTICAL:
        crop = np.ascontiguousarray(np.rot90(crop))
    return crop


MIN_WIDTH = 320  # px at the recognizer's 48 px height: PP-OCR's recognizers are trained on 320-wide lines


class TextRecognizer:
    """PP-OCR CTC recognizer folded onto the plate alphabet, greedy-decoded by us."""

    HEIGHT = 48

    def __init__(self, session: Any, charset: list[str] | None = None, max_batch: int = 8) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        if charset is None:
            meta = session.get_modelmeta().custom_metadata_map
            if "character" not in meta:
                raise ModelError("recognizer model has no 'character' metadata: cannot decode its output")
            charset = meta["character"].splitlines()
        # Class 0 is the CTC blank; PaddleOCR appends a space after the dictionary.
        self.classes = ["<blank>", *charset, " "]
        self.max_batch = max_batch
        self.group_of, self.group_cols = self._groups(self.classes)

    @staticmethod
    def _groups(classes: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Map every class to a plate character, or to SEP, so probabilities can be summed per group."""
        group_of = np.full(len(classes), SEP, np.int32)
        for i, ch in enumerate(classes[1:], start=1):
            c = LOOKALIKES.get(ch, ch.upper() if len(ch) == 1 else ch)
            if len(c) == 1 and c in ALNUM:
                group_of[i] = ALNUM.index(c)
        cols = [np.flatnonzero(group_of == g) for g in range(len(ALNUM))]
        return group_of, cols

    def _batch(self, crops: list[np.ndarray], min_width: int = MIN_WIDTH) -> tuple[np.ndarray, list[int]]:
        widths = []
        resized = []
        for c in crops:
            h, w = c.shape[:2]
            rw = max(8, min(math.ceil(self.HEIGHT * w / max(h, 1)), 1600))
            resized.append(cv2.resize(c, (rw, self.HEIGHT), interpolation=cv2.INTER_LINEAR))
            widths.append(rw)
        max_w = max(max(widths), min_width)
        max_w = int(math.ceil(max_w / 8) * 8)
        batch = np.zeros((len(crops), 3, self.HEIGHT, max_w), np.float32)
        for i, r in enumerate(resized):
            batch[i, :, :, : r.shape[1]] = to_input(r)
        return batch, widths

    def recognize(self, crops: list[np.ndarray], min_width: int = MIN_WIDTH) -> list[TextLine]:
        """The text in each crop. Crops are read at least ``min_width`` px wide (at 48 px tall),
        right-padded: the width the model was trained at. Narrower batches change plate reads (one
        photo fewer on each dev split at 160 or 240), but suit a few letters alone, such as an EU
        band's code, at a fraction of the time."""
        if not crops:
            return []
        crops = [ensure_bgr(c) for c in crops]
        order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / max(crops[i].shape[0], 1))
        results: list[TextLine | None] = [None] * len(crops)
        for start in range(0, len(order), self.max_batch):
            idx = order[start : start + self.max_batch]
            batch, widths = self._batch([crops[i] for i in idx], min_width)
            try:
                out = self.session.run(None, {self.input_name: batch})[0]
            except Exception as err:
                raise ModelError(f"text recognizer failed on a batch of {len(idx)} crops: {err}") from err
            steps = out.shape[1]
            for j, i in enumerate(idx):
                # A time step covers batch.shape[3] / steps input pixels; the crop fills widths[j] of them.
                results[i] = self.decode(out[j], step_frac=batch.shape[3] / steps / widths[j])
        return [r if r is not None else TextLine("", []) for r in results]

    def fold(self, probs: np.ndarray) -> np.ndarray:
        """Per time step: [blank, 36 plate characters, separator/other] probabilities."""
        t = probs.shape[0]
        folded = np.empty((t, len(ALNUM) + 2), np.float32)
        folded[:, 0] = probs[:, 0]
        for g, cols in enumerate(self.group_cols):
            folded[:, g + 1] = probs[:, cols].sum(axis=1)
        folded[:, -1] = np.clip(1.0 - folded[:, :-1].sum(axis=1), 0.0, 1.0)
        return folded

    def decode(self, probs: np.ndarray, step_frac: float = 0.0) -> TextLine:
        """CTC greedy decode over the folded alphabet: collapse repeats, drop blanks and separators.

        ``step_frac``: the share of the crop's width one time step covers; 0 leaves ``xs`` empty."""
        folded = self.fold(probs)
        best = folded.argmax(axis=1)
        raw_best = probs.argmax(axis=1)
        raw = "".join(self.classes[k] for k, prev in zip(raw_best, [-1, *raw_best[:-1]], strict=True)
                      if k != prev and k != 0)
        text: list[str] = []
        confs: list[float] = []
        rows: list[np.ndarray] = []
        spans: list[list[int]] = []
        prev = -1
        for t, k in enumerate(best):
            k = int(k)
            if k != prev and 0 < k <= len(ALNUM):
                text.append(ALNUM[k - 1])
                confs.append(float(folded[t, k]))
                rows.append(folded[t, 1 : len(ALNUM) + 1])
                spans.append([t, t])
            elif k == prev and 0 < k <= len(ALNUM):
                # A character spread over several steps: keep its most confident step.
                if folded[t, k] > confs[-1]:
                    confs[-1] = float(folded[t, k])
                    rows[-1] = folded[t, 1 : len(ALNUM) + 1]
                spans[-1][1] = t
            prev = k
        p = np.array(rows, np.float32) if rows else np.zeros((0, len(ALNUM)), np.float32)
        # A character peaks about half a step after its ink's centre: step t is taken as its centre.
        xs = tuple((a + b) / 2 * step_frac for a, b in spans) if step_frac > 0 else ()
        return TextLine("".join(text), confs, p, raw, xs)
