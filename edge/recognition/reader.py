"""The plate reader: find the texts in a frame, pick the plates by syntax and size, read them well.

Pipeline, per frame (or the camera's region of interest), whose levels are first stretched where it
is dark (dusk, an exposure set against headlights):

1. the DB text detector with the frame's longer side at 640 px (cheap; near plates are big);
2. the CTC recognizer over every text box, folded onto the plate alphabet; a character read from a
   coloured emblem between the groups (a German plate's seals, a coat of arms) or from the blue
   band at a plate's left is taken out (``edge.recognition.emblems``), the line as read kept too at
   a price;
   and, unless ``recognition.persian_plates`` is off, our own Persian reader (``fa-plate-rec``) over
   every box as well, whose reads (Latin-coded: ``12E34567``) only Iran's formats explain;
3. each text, each pair of stacked texts (two-line plates) and each pair of side-by-side texts (a
   region code behind a bar) is matched against the syntax table, with and without a printed
   country code (exact, one letter off, or only its first letter), an EU band's letter, one
   spurious character or a digit read twice; texts that fit a syntax become candidates, ranked by
   syntax, OCR confidence and character height (the vehicle in the lane is the nearest). A printed
   code beside a text, or in a blue band at its left (found by colour, read on its own), names the
   country;
4. unless the best candidate is already certain (and no characters go on past its box's ends, as
   when the detector cut a plate's first characters off), the best two are re-read: the padded
   region around each is cut from the full-resolution frame, scaled so the characters are ~52 px
   tall, detected and read again; where that read is not certain either, its line is read twice
   more, cut a little wider and a little narrower, and the three reads vote;
5. only when no convincing plate came out of that (a number or a word alone never is, nor a plate
   at the frame's edge) does a second pass run the detector at up to
   ``det_max_side`` for small, far plates (steps 2-4 again); a frame no larger than the coarse pass
   sees it is enlarged for that pass, up to twice; in a photo read on its own (``still``), where
   still no plate is convincing, a third pass runs the detector on a grey copy of the frame (it
   finds some plates only without their colours);
6. container codes (ISO 6346, check digit verified) and ADR hazard plates are looked for among all
   the texts, a code's boxes joined in reading order (across, or down a corner post); a
   container's or an orange ADR plate's own print is then no plate candidate.

Texts that read as a clock or a date (a camera's timestamp overlay), and texts that continue one
on its line or right above or below it, are never plate candidates.

Thresholds were set on the OpenALPR ``br`` and ``us`` dev splits only (``bench/accuracy.py``).
``PlateReader`` is thread-safe: a lock serialises calls, because both sessions already use the
cores we give them and interleaving two frames would only make both slower.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from edge.config import RecognitionSection
from edge.recognition.alphabet import ALNUM, DIGITS, LETTERS
from edge.recognition.confidence import ConfidenceModel, ReadEvidence
from edge.recognition.containers import (
    CODE_LEN,
    ContainerCode,
    check_digit,
    code_head,
    code_part,
    code_piece,
    code_shaped,
    find_container_codes,
    format_code,
    is_size_type,
    parse_adr,
)
from edge.recognition.emblems import emblem_positions, without
from edge.recognition.models import ModelStore
from edge.recognition.ocr import (
    TextBox,
    TextDetector,
    TextLine,
    TextRecognizer,
    crop_quad,
    ensure_bgr,
    is_vertical,
    quad_height,
    quad_width,
)
from edge.recognition.syntax import MIN_ALT_P, TO_DIGIT, SyntaxBook, SyntaxMatch, is_word
from edge.recognition.types import PlateRead

log = logging.getLogger(__name__)

COARSE_SIDE = 640
DARK_MEAN = 60.0  # a frame (or region of interest) darker than this on average is brightened first
MIN_LEVELS = 8.0  # fewer grey levels than this between a dark frame's 1st and 99.5th percentiles: no scene
FINER = 1.15  # a second pass must see the frame at least this much larger than the coarse pass did
UPSCALE_MAX = 2  # how far the second pass enlarges a frame no larger than the coarse pass sees it
MAX_BOXES = 32
STACKED_COST = 0.5  # two texts read as a two-line plate's lines
SIDE_COST = 0.3  # two texts side by side read as one plate's (a region code behind a bar)
JOIN_RATIO = 1.6  # two texts side by side of heights within this ratio may be one plate's (Script.join_ratio)
PERSIAN_JOIN_RATIO = 2.2
MIN_CLOSER_CHARS = 6  # a text another script read into no plate is looked at closer from this length (Iranian: 8)
CLOSER_TIE = 0.25  # what a closer look's read may score below the first read and still win
# A text box is cut into two lines (``_two_lines``) where it is at least this tall in pixels, no
# wider than this many times its height, read at a mean confidence below this, and the row across
# its middle with the fewest upright strokes has this many times fewer than the fullest rows above
# and below it.
MIN_SPLIT_PX = 16
SPLIT_ASPECT = 3.0
SPLIT_CONF = 0.7
SPLIT_CONTRAST = 3.0
CERTAIN_CHAR_CONF = 0.9
SIZE_WEIGHT = 1.0
REREAD_CHAR_PX = 52.0  # text height the closer look scales a candidate to (best of 32-64 on the dev splits)
# The closer look's best line is read twice more, cut wider and narrower (each side, in line heights),
# and the three reads vote: what a read hinged on where its crop began and ended is outvoted.
RECUTS = (0.25, -0.1)
DROP_COST = 0.5
DROP_CONF_COST = 2.0
REPEAT_COST = 1.0  # reading a doubled digit or digit pair near the end once
MISREAD_CODE_COST = 1.0  # a printed country code read with one letter wrong names its country less surely
# A band's code read 96 px wide instead of 320: 207 codes of synthetic plates 20-48 px tall, 194 read
# right against 192, at 5.5 ms a code instead of 14.3.
CODE_WIDTH = 96
BAND_LETTER_COST = 0.5  # a leading I, D, F... may be the EU band's code, or the plate's own letter
# ``_blue_band`` looks from this many text widths left of a text, in a window at least this many
# pixels wide and tall (``_band_in_view``: whether all of that place is in the frame).
BAND_LOOK_LEFT = 0.2
MIN_BAND_LOOK_PX = 8
# A line with a character read from a coloured emblem (a German plate's seals, a coat of arms) is
# still read as the recognizer read it, at this price: the emblem finder may be wrong.
EMBLEM_KEEP_COST = 1.0
# Where it is not found by its colour (an infrared frame), the character at a format's emblem is
# dropped at this price, and only that country's plate explains it.
EMBLEM_CHAR_COST = 0.05
MAX_PLATE_CHARS = 12  # the longest plate of the syntax table: an Afghan temporary plate, KBL 12345 TEMP
CODE_CHARS = 11  # an ISO 6346 code: owner (3), category (1), serial (6), check digit (1)
# A container's check digit, in its box beside the serial, read on its own (``_check_digit_beside``):
# at the width a band's code is read at, taken where the recognizer is at least this sure of it, past
# a stroke that may be the box's side.
CHECK_DIGIT_WIDTH = 96
CHECK_DIGIT_MIN_CONF = 0.3
BOX_SIDE = frozenset("I1L|")
UNCLIP_HEIGHTS = (1.5, 2.1)  # a DB text box's height over its characters' (the unclip grows it)
COLUMN_CHARS = 3  # characters down a box that make it a column of text, never a plate (``_column``)
CODE_LOOK_GROW = 3  # characters a part of a code is grown by, at each end, to look for the rest
NEXT_LINE_DROP = 0.4  # a line's middle lies this many box heights below the one above it, at least
SAME_TEXT_IOU = 0.5  # two passes' boxes of one text overlap at least this much
MAX_CHAINS = 512  # a grid of single letters branches at every step; a frame's time is bounded
# Camera overlays and receipts print a clock or a date; no plate format does. On the raw OCR text
# (separators kept): HH:MM:SS, or a year-month-day date, with any separator between the fields.
OVERLAY = re.compile(r"\d{1,2}\s?[:.]\s?\d{2}\s?[:.]\s?\d{2}|(?:19|20)\d{2}\s?[^\w\s]\s?\d{1,2}\s?[^\w\s]?\s?\d{2}")
DET_MODEL = "ppocr-det"
REC_MODEL = "ppocr-rec"
FA_REC_MODEL = "fa-plate-rec"


def models_used(cfg: RecognitionSection) -> set[str]:
    """The manifest's models a reader configured by ``cfg`` loads and runs."""
    return {DET_MODEL, REC_MODEL} | ({FA_REC_MODEL} if cfg.persian_plates else set())


@dataclass(frozen=True)
class Script:
    """A script plates are written in: the recognizer that reads it and the syntaxes written in it.

    Latin plates are read by PP-OCR; Iranian national plates, in Persian digits, by ``fa-plate-rec``
    (into Latin codes), which reads every text box of a pass as well: the detector finds a plate's
    text whatever its script, and only the syntaxes tell which reading it is."""

    name: str
    recognizer: TextRecognizer
    book: SyntaxBook
    # How much taller one text may be than the one beside it that it is joined with. An Iranian
    # plate's province code, under the word ایران, is drawn 0.55-0.6 times as tall as its main
    # group, and the detector's boxes of the two differ by 1.7-2.0 (drawn plates of 96-120 px): at
    # Latin's 1.6 the near plate's two texts were never joined.
    join_ratio: float = JOIN_RATIO


@dataclass
class Candidate:
    """One text (or two stacked texts) that fits a plate syntax."""

    match: SyntaxMatch
    quad: np.ndarray  # tl, tr, br, bl in frame pixels
    score: float
    raw: str
    two_line: bool = False
    base: float = 0.0
    hint: str | None = None  # the country a code printed beside the text (or in its band) names
    # A blue band seen at the text's left (True), looked for in colour and not seen (False), or unknown
    banded: bool | None = None
    country_read: bool = False  # the match's country is the one a printed code named, not a guess
    script: str = "latin"  # which recognizer read it (``Script``): the closer look reads it with the same

    def charge(self, cost: float) -> None:
        """Lower the candidate's standing by ``cost`` (raise it, where negative). The charge is on
        ``base``, the score before the preference for larger text (``_prefer_large``), which is
        worked out again from ``base`` whenever candidates of several sizes meet."""
        self.base -= cost
        self.score = self.base

    @property
    def line_height(self) -> float:
        h = quad_height(self.quad)
        return h / 2 if self.two_line else h

    @property
    def rect(self) -> tuple[int, int, int, int]:
        x0, y0 = self.quad.min(axis=0)
        x1, y1 = self.quad.max(axis=0)
        return int(x0), int(y0), math.ceil(x1 - x0), math.ceil(y1 - y0)


Rect = tuple[int, int, int, int]


@dataclass
class _CodeLooks:
    """The closer looks a frame's container print has had, kept for the frame: ``_others`` runs
    after every pass, with the earlier passes' boxes among its texts, and a look is a detector pass."""

    # check digits looked for beside a serial, by owner code and serial and the serial's box
    digits: dict[tuple[str, Rect], tuple[TextBox, float] | None] = field(default_factory=dict)
    # whole codes looked for around a part of one, by the part's box
    codes: dict[Rect, PlateRead | None] = field(default_factory=dict)


def _geo_mean(confs: tuple[float, ...] | list[float]) -> float:
    if not confs:
        return 0.0
    return float(math.exp(sum(math.log(max(c, 1e-6)) for c in confs) / len(confs)))


def _union_rect(parts: list[TextBox]) -> tuple[int, int, int, int]:
    """The (x, y, w, h) around every box of ``parts``."""
    pts = np.vstack([b.quad for b in parts])
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def _union_quad(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    pts = np.vstack([a, b])
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


class PlateReader:
    """Reads plates, container codes and ADR plates in frames; one per controller process."""

    def __init__(self, cfg: RecognitionSection | None = None, *, reread: bool = True) -> None:
        self.cfg = cfg or RecognitionSection.model_validate({})
        self.store = ModelStore(self.cfg.models_dir, threads=self.cfg.threads, spin_us=self.cfg.spin_us)
        det = self.store.load(DET_MODEL)
        rec = self.store.load(REC_MODEL)
        self.detector = TextDetector(det.session, max_side=self.cfg.det_max_side)
        self.recognizer = TextRecognizer(rec.session)
        self.book = SyntaxBook.load(preferred=self.cfg.countries, ignored=self.cfg.ignore_countries)
        self.latin = Script("latin", self.recognizer, self.book)
        self.scripts = [self.latin]
        if self.cfg.persian_plates:
            fa = self.store.load(FA_REC_MODEL)
            self.scripts.append(Script("persian", TextRecognizer(fa.session),
                                       SyntaxBook.load(preferred=self.cfg.countries, script="persian",
                                                       ignored=self.cfg.ignore_countries),
                                       join_ratio=PERSIAN_JOIN_RATIO))
        # For a crossing's voted text, whichever script it is in: the post's countries, as read.
        self.crossing_book = SyntaxBook.load(preferred=self.cfg.countries, script=None,
                                             ignored=self.cfg.ignore_countries)
        self.calibration = ConfidenceModel.load()
        self.reread = reread
        self.max_rereads = 2
        self._lock = threading.Lock()

    def model_versions(self) -> dict[str, str]:
        used = models_used(self.cfg)
        return {name: spec.sha256[:12] for name, spec in self.store.specs.items() if name in used}

    # -- public -----------------------------------------------------------------------------------

    def read(
        self, image: np.ndarray, roi: tuple[int, int, int, int] | None = None, *, still: bool = False,
        far: bool = True,
    ) -> list[PlateRead]:
        """Plates (best first), then container codes and ADR plates, boxes in full-frame pixels.

        ``still``: a photo read on its own, with no next frame to look again at. Where no plate is
        convincing even at full resolution, the detector then also looks at it in grey, which costs
        a detector pass on those photos (`us`: 45 of 222, the mean time +20%). A lane's frames are
        not stills: a crossing's next frame is its second look, and on a synthetic lane the grey
        look cost 18% of the frames a second for no vehicle read better.

        ``far``: where the coarse pass finds no convincing plate, look again at full resolution for
        a far, small one. A lane may leave that out for a frame or two after such a look found
        nothing (``edge.recognition.gating.FarLook``): the frames that follow are nearly the same
        picture, and an approaching plate grows into the coarse pass's reach."""
        frame = ensure_bgr(image)
        ox, oy = 0, 0
        if roi is not None:
            x0, y0, x1, y1 = _bounds(frame, (int(roi[0]), int(roi[1]), int(roi[2]), int(roi[3])))
            if x1 - x0 < 8 or y1 - y0 < 8:
                fh, fw = frame.shape[:2]
                raise ValueError(f"ROI {roi} leaves nothing of a {fw}x{fh} frame")
            frame = frame[y0:y1, x0:x1]
            ox, oy = x0, y0
        frame = _lifted(frame)
        with self._lock:
            reads = self._read(frame, still, far)
        if ox or oy:
            reads = [
                replace(r, box=(r.box[0] + ox, r.box[1] + oy, r.box[2], r.box[3])) for r in reads
            ]
        return reads

    def line_readings(self, line: TextLine, crop: np.ndarray) -> list[SyntaxMatch]:
        """What the syntax step makes of the text line read in ``crop``, best first: the line as
        read and its variants (a printed country code cut off, a spurious character dropped...),
        each fitted to its likeliest format. For measuring a recognizer on its own
        (``bench.recognizer``, the recognizer's fine-tuning tool)."""
        return [c.match for c in self._crop_candidates(line, crop)]

    def cuts_vote(self, lines: list[TextLine], crops: list[np.ndarray]) -> str:
        """The text the vote of cuts (``_recut_vote``) settles on, given the same line read in each of
        its cuts: for measuring a recognizer as the closer look uses it; "" where no cut fits a plate."""
        best = [cands[0] for line, crop in zip(lines, crops, strict=True)
                if (cands := self._crop_candidates(line, crop))]
        return _majority(best).match.text if best else ""

    def _crop_candidates(self, line: TextLine, crop: np.ndarray) -> list[Candidate]:
        h, w = crop.shape[:2]
        quad = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
        return sorted(self._crop_line_candidates(line, crop, quad, None, None)[0], key=lambda c: -c.score)

    # -- pipeline ---------------------------------------------------------------------------------

    def _read(self, img: np.ndarray, still: bool = False, far: bool = True) -> list[PlateRead]:
        # A coarse pass finds near plates cheaply; only when it finds no convincing plate does a
        # pass at full resolution (up to det_max_side) look for small, far ones. A container's or an
        # ADR plate's own print is never a plate, nor a reason to stop looking.
        longer = max(img.shape[:2])
        fine_side = min(self.cfg.det_max_side, longer)
        coarse_side = min(COARSE_SIDE, fine_side)
        if fine_side <= coarse_side * FINER:
            # A frame this small has no finer scale of its own to look at: the second pass sees it
            # enlarged, up to twice, so that a far plate's characters grow to a size the detector
            # finds (half-resolution dev photos: `us` 59.0% -> 70.7%).
            fine_side = min(self.cfg.det_max_side, UPSCALE_MAX * longer)
        boxes, lines, cands = self._pass(img, coarse_side)
        # A container's print looked at closer once a frame, not again each pass.
        looks = _CodeLooks()
        others, heads = self._others(boxes, lines, img, looks)
        cands = _without_others_print(cands, others, img, heads)
        # A plate at the frame's edge may be cut, or another lane's: no reason to stop looking either
        # (and a lane drops such a read, by the same rule).
        view = (0, 0, img.shape[1], img.shape[0])
        settled = bool(cands) and _convincing(cands[0]) and not cut_by_edge(cands[0].rect, view)
        if far and fine_side > coarse_side * FINER and not settled:
            boxes, lines, cands, others = self._look_again(img, fine_side, (boxes, lines, cands), looks)
            if still and not (cands and _convincing(cands[0])) and not _is_grey(img):
                # The detector answers to colour as well as to shape: on the dev photos it found two
                # plates in a grey copy of the frame that it never found in colour (one then read
                # right, us 86.0% -> 86.5%). The characters are still read from the colour frame.
                # The coarse scale first: drawn plates of 14-16 px that neither colour pass found
                # were found in grey at 640 px and not at 1280 (`plate_size`: 73 / 89% -> 80 / 94%
                # exact at 14 / 16 px); on the dev photos it cost 6% of `us`'s summed time.
                grey = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
                for side in (coarse_side, fine_side):
                    boxes, lines, cands, others = self._look_again(img, side, (boxes, lines, cands), looks, grey)
                    if cands and _convincing(cands[0]):
                        break
        # The floor is on what the recognizer saw, as configured: a read the syntax finds unlikely
        # is still reported, with the low probability it has, for HQ to judge. It applies to each
        # reading before one is chosen per place: a correction the recognizer gave no weight to
        # must not take the place's other readings down with it.
        plates = _one_per_place(cands, self.cfg.min_confidence)
        # A word is a plate only where nothing else is: beside a plate, it is the vehicle's lettering.
        if any(not is_word(c.match.text) for c in plates):
            plates = [c for c in plates if not is_word(c.match.text)]
        return [self._to_read(c) for c in plates] + others

    def _look_again(
        self, img: np.ndarray, side: int, seen: tuple[list[TextBox], list[TextLine], list[Candidate]],
        looks: _CodeLooks, det_img: np.ndarray | None = None,
    ) -> tuple[list[TextBox], list[TextLine], list[Candidate], list[PlateRead]]:
        """One more pass, skipping the places already read, joined with what was seen before; and
        the container codes and ADR plates among all the texts (a code may span both passes')."""
        boxes, lines, cands = seen
        more_boxes, more_lines, more = self._pass(img, side, skip=[c.rect for c in cands], det_img=det_img)
        boxes, lines, cands = boxes + more_boxes, lines + more_lines, cands + more
        _prefer_large(cands)
        others, heads = self._others(boxes, lines, img, looks)
        return boxes, lines, _without_others_print(cands, others, img, heads), others

    def _pass(
        self, img: np.ndarray, side: int, skip: list[tuple[int, int, int, int]] | None = None,
        det_img: np.ndarray | None = None,
    ) -> tuple[list[TextBox], list[TextLine], list[Candidate]]:
        """Detect (in ``det_img``, a same-size view of ``img``, where given), read and rank. The
        texts in ``skip``'s places were read before and give no candidates of their own, but are read
        again where a new text sits beside or under one: to be joined with it."""
        look = img if det_img is None else det_img
        boxes = self.detector.detect(look, max_side=side, upscale=side > max(img.shape[:2]))
        seen: list[TextBox] = []
        if skip:
            old = [any(iou(b.rect, r) > 0.3 for r in skip) for b in boxes]
            fresh = [b for b, o in zip(boxes, old, strict=True) if not o]
            # A near plate's second part (an Iranian province box, under the word ایران) may be
            # found at the finer scale alone, its first part at the coarse one (drawn Iranian plates
            # of 96-120 px).
            ratio = max(s.join_ratio for s in self.scripts)
            seen = [b for b, o in zip(boxes, old, strict=True) if o and any(_joinable(b, f, ratio) for f in fresh)]
            boxes = fresh
        if len(boxes) > MAX_BOXES:
            boxes = sorted(boxes, key=lambda b: -b.height)[:MAX_BOXES]
        if not boxes:
            return [], [], []
        every = boxes + seen[:MAX_BOXES]
        crops = [crop_quad(img, b.quad) for b in every]
        lines = self.recognizer.recognize(crops)
        # A two-line plate seen from afar is one text to the detector: its lines, read apart, are
        # texts of their own (new ones, before those read only to be joined).
        halves = [h for b, line, crop in zip(boxes, lines, crops, strict=False) for h in _two_lines(b, line, crop)]
        if halves:
            half_crops = [crop_quad(img, b.quad) for b in halves]
            n = len(boxes)
            boxes = boxes + halves
            every = boxes + every[n:]
            crops = crops[:n] + half_crops + crops[n:]
            lines = lines[:n] + self.recognizer.recognize(half_crops) + lines[n:]
        cands = self._candidates(every, lines, img, crops, fresh=len(boxes))
        for script in self.scripts[1:]:
            cands += self._candidates(every, script.recognizer.recognize(crops), img, crops, script, judged_by=lines,
                                      fresh=len(boxes))
        _prefer_large(cands)
        if self.reread and not (cands and _certain(cands[0]) and not _text_goes_on(img, cands[0].quad)):
            cands = self._reread_top(img, cands)
            _prefer_large(cands)
        return boxes, lines[: len(boxes)], cands

    def _candidates(
        self, boxes: list[TextBox], lines: list[TextLine], img: np.ndarray, crops: list[np.ndarray],
        script: Script | None = None, judged_by: list[TextLine] | None = None, fresh: int | None = None,
        closer: bool = True,
    ) -> list[Candidate]:
        """Every plate reading of the texts ``lines`` read from ``crops`` (cut from ``img`` at
        ``boxes``) by ``script``'s recognizer (Latin by default), on their own and joined in twos.
        ``fresh``: only the first ``fresh`` texts are new; the rest were read before, and count
        only joined with a new one.
        Printed country codes, bands and emblems are looked for in Latin reads only: the Persian
        reader reads a plate's own characters and nothing else. ``judged_by``: the Latin reads of
        the same boxes, which tell a camera's clock or date overlay (the Persian reader has no ':'
        or '/' to show one by: it read a `us` photo's overlay as an Iranian plate), and Latin text:
        a text the Latin recognizer reads at least as surely as this script's is no plate of this
        script. ``closer``: a text another script reads more surely than the Latin recognizer, but
        into no plate, gets a closer look of its own (``_closer_best``)."""
        script = script or self.latin
        keep = _not_overlays(boxes, judged_by if judged_by is not None else lines)
        new = [fresh is None or i < fresh for i in keep]
        boxes, lines, crops = [boxes[i] for i in keep], [lines[i] for i in keep], [crops[i] for i in keep]
        judged = [judged_by[i] for i in keep] if judged_by is not None else None

        def latin_text(*texts: int) -> bool:
            # On the dev photos the Persian reader read a car's badge (HYUNDAI) and a plate's state
            # name (NEW JERSEY, ARKANSAS) as Iranian plates, at 0.57-0.81, where the Latin reader was
            # at 0.93-0.99. On drawn Iranian plates of 14-48 px the Latin reader was never the surer
            # (closest: 0.88 against 0.92): it reads Persian digits as scattered Latin letters. But
            # not the province code's on its own, whose ۱ and ۹ are a Latin 1 and 9: a join is
            # judged as a whole.
            if judged is None:
                return False
            theirs = [c for k in texts for c in judged[k].confs]
            ours = [c for k in texts for c in lines[k].confs]
            return bool(theirs) and (not ours or float(np.mean(theirs)) >= float(np.mean(ours)))

        latin = script is self.latin
        # A band is looked for beside a text of a plate's length.
        looked = [latin and 4 <= len(line.text) <= 10 for line in lines]
        bands = [_blue_band(img, box.rect) if look else None for box, look in zip(boxes, looked, strict=True)]
        hints = self._code_boxes(boxes, lines) + self._band_codes(img, bands) if latin else []
        # Whether a blue band was seen at a text's left tells, among the countries that fit its
        # characters, whose plate it is (``SyntaxBook.match``): a band the strict look finds (the
        # one whose code is read), or none found even by a looser look. In a grey frame the band
        # is just another grey shape, and nothing is told.
        colour = latin and not _is_grey(img)
        out: list[Candidate] = []
        for k, (box, crop) in enumerate(zip(boxes, crops, strict=True)):
            if not new[k]:
                # Read before, and here only to be joined: its characters, without its own readings.
                lines[k] = self._plate_chars(lines[k], crop, _span_in(box.quad, bands[k]), script)[0]
                continue
            if latin_text(k) or _column(box, lines[k]):
                continue
            banded: bool | None = None
            if colour and looked[k]:
                if bands[k] is not None:
                    banded = True
                elif _band_in_view(img, box.rect) and _blue_band(img, box.rect, loose=True) is None:
                    banded = False
            cands, lines[k] = self._crop_line_candidates(lines[k], crop, box.quad, box, _hint_for(box.rect, hints),
                                                         _span_in(box.quad, bands[k]), script, banded)
            if not cands and not latin and closer and self.reread and len(lines[k].text) >= MIN_CLOSER_CHARS:
                # The closer look (``_reread``) starts from a candidate, and a text read into no
                # plate is none: a drawn Iranian plate of 20 px, boxed 43 px tall in the colour
                # frame, read `52Q87D6` (its last ۲ lost) and lost to the Latin reading of its
                # digits (`APGAVOS`), where the grey frame's tighter box led to the closer look
                # that read it right. So such a text gets a closer look of its own.
                closer_best = self._closer_best(img, box.rect, box.height, script, judged=True)
                cands = [closer_best] if closer_best is not None else []
            out.extend(cands)
        n = len(boxes)
        whole: list[np.ndarray] = []
        for i in range(n):
            for j in range(n):
                if i == j or not (new[i] or new[j]) or not lines[i].text or not lines[j].text:
                    continue
                if _stacked(boxes[i], boxes[j]):
                    # Two-line plates: a short upper line stacked over a lower one.
                    cost = STACKED_COST
                elif _side_by_side(boxes[i], boxes[j], script.join_ratio):
                    # A region code behind a bar, detected as a text of its own.
                    cost = SIDE_COST
                else:
                    continue
                if latin_text(i, j):
                    continue
                merged = TextLine(
                    lines[i].text + lines[j].text,
                    lines[i].confs + lines[j].confs,
                    np.vstack([lines[i].probs, lines[j].probs]),
                    (lines[i].raw or lines[i].text) + " " + (lines[j].raw or lines[j].text),
                )
                quad = _union_quad(boxes[i].quad, boxes[j].quad)
                hint = _hint_for(_rect_of(quad), hints)
                for c in self._line_candidates(merged, quad, None, hint, script=script):
                    c.two_line = cost == STACKED_COST
                    c.charge(cost)
                    out.append(c)
                if not latin and cost == SIDE_COST:
                    whole.append(quad)
        if whole:
            # The Persian reader was trained on whole plates, and reads the two texts' union as one
            # line too, cut wider as the vote of cuts cuts it: an Iranian province code's 0 is a dot
            # the detector leaves out of its box (۶۰ boxed as ۶), and the two reads joined miss it.
            whole = [widened(q, RECUTS[0]) for q in whole]
            for quad, line in zip(whole, script.recognizer.recognize([crop_quad(img, q) for q in whole]), strict=True):
                for c in self._line_candidates(line, quad, None, None, script=script):
                    c.charge(SIDE_COST)
                    out.append(c)
        return out

    def _crop_line_candidates(
        self, line: TextLine, crop: np.ndarray, quad: np.ndarray, box: TextBox | None, hint: str | None,
        band: tuple[float, float] | None = None, script: Script | None = None, banded: bool | None = None,
    ) -> tuple[list[Candidate], TextLine]:
        """``_line_candidates`` of a line read in ``crop``, and the line as the plate's characters:
        without those read from a coloured emblem between its groups (a German plate's seals, a
        coat of arms; ``edge.recognition.emblems``), nor from the blue band that spans ``band`` of
        the crop's width (its code is read on its own, ``_band_codes``). Only a Latin read has
        them: the Persian reader reads a plate's own characters and nothing else."""
        if script is not None and script is not self.latin:
            return self._line_candidates(line, quad, box, hint, script=script), line
        clean, found = self._plate_chars(line, crop, band, script)
        if not found:
            return self._line_candidates(line, quad, box, hint, banded=banded), line
        # Where the first emblem between characters sat, counted in the characters kept before it.
        inner = [p - k for k, p in enumerate(found) if 0 < p - k < len(clean.text)]
        out = self._line_candidates(clean, quad, box, hint, inner[0] if inner else None, banded=banded)
        # As the recognizer read it too, at a price: the emblem finder may be wrong.
        for c in self._line_candidates(line, quad, box, hint, banded=banded):
            c.charge(EMBLEM_KEEP_COST)
            out.append(c)
        return out, clean

    def _plate_chars(
        self, line: TextLine, crop: np.ndarray, band: tuple[float, float] | None, script: Script | None = None
    ) -> tuple[TextLine, list[int]]:
        """``line`` without the characters read from an emblem or from the blue band spanning
        ``band`` of the crop's width (see ``_crop_line_candidates``), and where those were."""
        if script is not None and script is not self.latin:
            return line, []
        found = emblem_positions(crop, line)
        if band is not None and len(line.xs) == len(line.text):
            found = sorted({*found, *(i for i, x in enumerate(line.xs) if band[0] <= x <= band[1])})
        return (without(line, found) if found else line), found

    def _code_boxes(self, boxes: list[TextBox], lines: list[TextLine]) -> list[tuple[tuple[int, int, int, int], str]]:
        """Texts that are just a printed country code (``UZ`` under the flag)."""
        out = []
        for box, line in zip(boxes, lines, strict=True):
            country = self.book.codes.get(line.text)
            if country is not None and len(line.text) >= 2:
                out.append((box.rect, country))
        return out

    def _band_codes(
        self, img: np.ndarray, found: list[tuple[int, int, int, int] | None]
    ) -> list[tuple[tuple[int, int, int, int], str]]:
        """Country codes printed in the blue bands ``found`` at plates' left (EU, TR; ``_blue_band``):
        the recognizer reads the plate's characters and skips the band's small code, so the band is
        found by its colour and its lower part read on its own."""
        bands: list[tuple[tuple[int, int, int, int], np.ndarray]] = []
        for band in found:
            if band is None:
                continue
            bx, by, bw, bh = band
            code_crop = img[by + bh // 2 : by + bh, bx : bx + bw]
            if code_crop.shape[0] >= 6 and code_crop.shape[1] >= 4:
                bands.append((band, code_crop))
        out: list[tuple[tuple[int, int, int, int], str]] = []
        # One recognizer batch for all the bands in view.
        codes = self.recognizer.recognize([crop for _, crop in bands], min_width=CODE_WIDTH)
        for (band, code_crop), code_line in zip(bands, codes, strict=True):
            country = self.book.codes.get(code_line.text)
            if country is None and _lone_bar(code_crop):
                country = self.book.codes.get("I")  # a lone stroke is no glyph the recognizer knows
            if country is None:
                country = self.book.codes.get(_as_letters(code_line))
            if country is None:
                country = self.book.misread_band_code(code_line.text, code_line.probs)
            if country is not None:
                out.append((band, country))
        return out

    def _line_candidates(
        self, line: TextLine, quad: np.ndarray, box: TextBox | None, hint: str | None = None,
        emblem_at: int | None = None, script: Script | None = None, banded: bool | None = None,
    ) -> list[Candidate]:
        """The plate readings of ``line`` (read by ``script``'s recognizer, Latin by default) and of
        its variants. ``emblem_at``: where an emblem was taken out of the line (the characters
        before it), which tells a format that prints one where its first group ends (Germany's
        seals: KA F 3784, not K AF 3784). ``banded``: whether a blue band was seen at its left
        (``SyntaxBook.match``)."""
        script = script or self.latin
        book = script.book
        text = line.text
        if len(text) < 4 or len(text) > 14:
            return []
        confs = list(line.confs)
        probs = line.probs
        # (text, confs, probs, cost, hint, must_be_country)
        variants: list[tuple[str, list[float], np.ndarray, float, str | None, str | None]] = [
            (text, confs, probs, 0.0, hint, None)
        ]
        # The printed country code read as part of the registration: cut it off, take it as a hint.
        # Only a plate of that country explains the cut: "DPB" + a flag read as "R" is no Brazilian "BR".
        # A code read with one letter wrong, or only half of it, names its country less surely.
        cuts = [(cut, 0.0) for cut in book.strip_code(text)]
        cuts += [(cut, MISREAD_CODE_COST) for cut in book.strip_misread_code(text, probs)]
        for (rest, country, cut0, cut1), cost in cuts:
            stop = len(text) - cut1
            variants.append((rest, confs[cut0:stop], probs[cut0:stop], cost, country, country))
            if cut0 and len(rest) >= 6:
                # The band's or the flag's edge read between the code and the registration: TR, O,
                # then 01A12345.
                edge_cost = cost + DROP_COST + DROP_CONF_COST * confs[cut0]
                variants.append((rest[1:], confs[cut0 + 1 : stop], probs[cut0 + 1 : stop], edge_cost, country,
                                 country))
        for rest, country, cut0, _ in book.strip_band_letter(text):
            variants.append((rest, confs[cut0:], probs[cut0:], BAND_LETTER_COST, hint, country))
        # A seal or a coat of arms between two groups read as a character, where the country prints one.
        emblem_of = {0: emblem_at} if emblem_at is not None else {}
        for rest, country, k in book.strip_emblem(text):
            emblem_of[len(variants)] = k
            variants.append((rest, confs[:k] + confs[k + 1 :], np.delete(probs, k, axis=0), EMBLEM_CHAR_COST, hint,
                             country))
        # One spurious character (a bolt, a state emblem, the plate's edge): try without the least
        # confident one and without either end, at a price that grows with the OCR's confidence in it.
        if len(text) >= 6 and confs:
            for k in sorted({int(np.argmin(confs)), 0, len(text) - 1}):
                cost = DROP_COST + DROP_CONF_COST * confs[k]
                variants.append(
                    (text[:k] + text[k + 1 :], confs[:k] + confs[k + 1 :], np.delete(probs, k, axis=0), cost, hint,
                     None)
                )
        # Digits read twice near the end, where a region box stacks them over "RUS": "1818" or "118"
        # for 18. Only a format whose last group is a listed region code tells the two readings
        # apart, so only one explains the repeat: an Afghan FRH 25229 (its class cut off) had become
        # a Brazilian FRH 2529.
        regional_end = set()
        for twice in _repeats(text):
            keep = [i for i in range(len(text)) if i not in twice]
            regional_end.add(len(variants))
            variants.append(("".join(text[i] for i in keep), [confs[i] for i in keep], probs[keep], REPEAT_COST, hint,
                             None))
        out: list[Candidate] = []
        shape = _shape_score(quad, box)
        for vi, (vtext, vconfs, vprobs, cost, vhint, cut_country) in enumerate(variants):
            if len(vtext) > MAX_PLATE_CHARS:
                continue
            matches = book.match(vtext, vconfs, vprobs, hint=vhint, banded=banded)
            if cut_country is not None:
                matches = [m for m in matches if m.country == cut_country]
            if vi in emblem_of:
                # Where the emblem sat: a format that prints one elsewhere does not explain it.
                matches = [m for m in matches if m.variant is None or m.variant.emblem_at in (None, emblem_of[vi])]
            if vi in regional_end:
                matches = [m for m in matches if m.variant is not None and m.variant.ends_in_region]
            if not matches:
                continue
            m = matches[0]
            score = m.score - cost + shape
            out.append(Candidate(m, quad.astype(np.float32), score, line.raw or line.text, base=score, hint=hint,
                                 country_read=bool(vhint) and m.country == vhint, script=script.name,
                                 banded=banded))
        return out

    def _reread_top(self, img: np.ndarray, cands: list[Candidate]) -> list[Candidate]:
        """Read the best candidates again from a padded, rescaled crop of the full-resolution frame."""
        seen: list[tuple[int, int, int, int]] = []
        out = list(cands)
        for c in cands[: self.max_rereads * 2]:
            if len(seen) >= self.max_rereads:
                break
            if any(iou(c.rect, s) > 0.3 for s in seen):
                continue
            seen.append(c.rect)
            better = self._reread(img, c)
            if better is not None:
                out.append(better)
        out.sort(key=lambda c: -c.score)
        return out

    def closer_look(
        self, img: np.ndarray, rect: tuple[int, int, int, int], line_h: float
    ) -> tuple[np.ndarray, int, int, list[TextBox]]:
        """The padded region around ``rect`` (text lines ``line_h`` tall), its offset in ``img``,
        and the texts the detector finds in it with the characters scaled to ~``REREAD_CHAR_PX``.
        No texts where the region is too small to look at."""
        x, y, w, h = rect
        pad_x, pad_y = int(0.15 * w + 0.5 * line_h), int(0.6 * line_h)
        fh, fw = img.shape[:2]
        x0, y0 = max(0, x - pad_x), max(0, y - pad_y)
        x1, y1 = min(fw, x + w + pad_x), min(fh, y + h + pad_y)
        crop = img[y0:y1, x0:x1]
        if crop.shape[0] < 8 or crop.shape[1] < 8:
            return crop, x0, y0, []
        scale = float(np.clip(REREAD_CHAR_PX / max(line_h, 1.0), 0.5, 4.0))
        side = int(max(crop.shape[:2]) * scale)
        return crop, x0, y0, self.detector.detect(crop, max_side=max(64, min(side, 1280)), upscale=True)

    def _reread(self, img: np.ndarray, cand: Candidate) -> Candidate | None:
        h = cand.rect[3]
        best = self._closer_best(img, cand.rect, h / 2 if cand.two_line else h, self._script(cand.script))
        if best is None:
            return None
        # The closer look wins ties, where it is as sure of its weakest character as the first read
        # was: a drawn Iranian plate of 48 px read right at first (its last ۲ at 0.81) lost to the
        # closer look's vote that read the ۲ as ۴ at 0.76. No dev read changed.
        if min(best.match.confs, default=0.0) >= min(cand.match.confs, default=0.0):
            best.charge(-CLOSER_TIE)
        return best

    def _closer_best(
        self, img: np.ndarray, rect: tuple[int, int, int, int], line_h: float, script: Script, judged: bool = False
    ) -> Candidate | None:
        """The best reading by ``script``'s recognizer of the texts the closer look finds around
        ``rect`` (by the vote of its cuts where it is not certain), in ``img``'s pixels; None where
        it finds none. ``judged``: the texts are judged by their Latin reads as well, as the first
        pass judges another script's (a text the Latin recognizer reads as surely is no plate of
        this script). A text read into no plate here gets no closer look of its own: this is it."""
        crop, x0, y0, boxes = self.closer_look(img, rect, line_h)
        if not boxes:
            return None
        crops = [crop_quad(crop, b.quad) for b in boxes]
        latin = self.latin.recognizer.recognize(crops) if judged else None
        local = self._candidates(boxes, script.recognizer.recognize(crops), crop, crops, script, judged_by=latin,
                                 closer=False)
        if not local:
            return None
        best = max(local, key=lambda c: c.score)
        if not best.two_line and not _certain(best):
            best = self._recut_vote(crop, best, script)
        best.quad = best.quad + np.array([x0, y0], np.float32)
        return best

    def _script(self, name: str) -> Script:
        return next(s for s in self.scripts if s.name == name)

    def _recut_vote(self, crop: np.ndarray, best: Candidate, script: Script | None = None) -> Candidate:
        """``best``, or the reading that the same line cut a little wider and narrower outvotes it
        with.

        The recognizer reads the text between the crop's ends, and where the detector put those
        ends decides more reads than it should: a bolt or the plate's edge taken for a character, a
        first character half cut. On the dev splits, voting among the three cuts read 4 more `us`
        photos right (83.3% -> 85.1%), lost none on either split, and cost 10-17 ms on the median
        `us` photo. Cuts varied less (+0.15/-0.05 line heights) changed nothing. A certain read is not
        voted on: there is nothing to gain and the time to lose.
        """
        script = script or self.latin
        quads = [widened(best.quad, r) for r in RECUTS]
        cuts = [crop_quad(crop, q) for q in quads]
        lines = script.recognizer.recognize(cuts)
        reads = [best]
        for q, cut, line in zip(quads, cuts, lines, strict=True):
            cands, _ = self._crop_line_candidates(line, cut, q, None, best.hint, script=script,
                                                  banded=best.banded)
            if cands:
                reads.append(max(cands, key=lambda c: c.score))
        return _majority(reads)

    def _to_read(self, c: Candidate) -> PlateRead:
        m = c.match
        evidence = ReadEvidence(round(_geo_mean(m.confs), 4), round(min(m.confs, default=0.0), 4),
                                round(m.evidence_score, 4))
        return PlateRead(
            text=m.text,
            confidence=round(self.calibration.probability(evidence), 4),
            box=c.rect,
            display=m.display,
            country=m.country or None,
            syntax=m.syntax,
            raw_text=c.raw,
            kind="plate",
            evidence=evidence,
            country_read=c.country_read,
        )

    def _others(
        self, boxes: list[TextBox], lines: list[TextLine], img: np.ndarray,
        looks: _CodeLooks,
    ) -> tuple[list[PlateRead], list[tuple[int, int, int, int]]]:
        """Container codes and ADR plates among all the texts; and where a container's owner code
        and serial were read but no check digit verified them, their place: a container's print all
        the same, never a plate. ``looks``: the closer looks this frame's container print has had
        (a later pass holds the earlier pass's boxes)."""
        out: list[PlateRead] = []
        seen: set[str] = set()
        heads: dict[str, list[int]] = {}
        unverified: list[tuple[int, int, int, int]] = []
        # A container code is often split over several boxes: owner and category, serial, and a
        # check digit in a box of its own; on one line, on two, or one character per line down a
        # corner post. The boxes are joined in reading order, so a boxed digit that sits higher
        # than the serial still follows it.
        for chain in _reading_chains(boxes, lines, min_chars=CODE_CHARS - 1):
            joined = "".join(lines[j].text for j in chain)
            probs = np.vstack([lines[j].probs for j in chain])
            codes = find_container_codes(joined, probs=probs)
            if not codes and (head := code_head(joined)) is not None:
                heads.setdefault(head, chain)
            elif not codes and (at := code_shaped(joined)) is not None:
                # A whole code whose check digit fails (a character misread past mending, or the
                # digit painted wrong): no container to report, but its print is no plate either
                # (its serial and digit, seven digits, fit many formats). Only the boxes it was
                # read from: a chain runs on into other texts.
                owners = _char_boxes(chain, lines)
                unverified.append(_union_rect([boxes[j] for j in dict.fromkeys(owners[at : at + CODE_LEN])]))
            for code in codes:
                if code.code in seen or _digit_from_line_below(code, chain, boxes, lines):
                    continue
                seen.add(code.code)
                out.append(self._container_read(code.code, [boxes[j] for j in chain], [lines[j] for j in chain]))
        # A code read with characters cut off at either end, or an owner code and serial down a
        # corner post: the line (or column) is looked at again, longer and closer, for the whole
        # code; once a frame, whichever pass boxed it.
        partial = [i for i, line in enumerate(lines)
                   if _partial_code(boxes[i], line.text) and not any(_inside(boxes[i].rect, r.box) for r in out)]
        for i in partial:
            rect = boxes[i].rect
            looked = next((r for r in looks.codes if iou(r, rect) > SAME_TEXT_IOU), None)
            if looked is None:
                looked = rect
                looks.codes[rect] = self._code_around(img, boxes[i], lines[i].text)
            found = looks.codes[looked]
            unverified.append(rect)  # the part's own box is the container's print, found or not
            if found is not None and found.text not in seen:
                seen.add(found.text)
                out.append(found)
        for head, chain in heads.items():
            if any(code.startswith(head) for code in seen) or (len(chain) == 1 and chain[0] in partial):
                continue
            # The check digit in its box, which the detector left out or did not see: looked for
            # beside the serial, and taken only where it is the digit the owner code and serial
            # demand. Where it is not found, nothing is reported, but the place is no plate's.
            key = (head, boxes[chain[-1]].rect)
            if key not in looks.digits:
                looks.digits[key] = self._check_digit_beside(img, boxes[chain[-1]], head)
            digit = looks.digits[key]
            chain_boxes = [boxes[j] for j in chain]
            if digit is None:
                unverified.append(_union_rect(chain_boxes))
                continue
            verified = head + str(check_digit(head))
            seen.add(verified)
            out.append(self._container_read(verified, [*chain_boxes, digit[0]], [lines[j] for j in chain],
                                            digit_conf=digit[1]))
        for i in range(len(boxes)):
            for j in range(len(boxes)):
                if i == j or not _stacked(boxes[i], boxes[j], loose=True):
                    continue
                adr = parse_adr(lines[i].text, lines[j].text)
                if adr is None or adr.text in seen:
                    continue
                seen.add(adr.text)
                out.append(
                    PlateRead(
                        text=adr.text,
                        confidence=round(_geo_mean(lines[i].confs + lines[j].confs), 4),
                        box=_union_rect([boxes[i], boxes[j]]),
                        display=adr.display,
                        syntax="adr",
                        raw_text=f"{lines[i].text}/{lines[j].text}",
                        kind="adr",
                    )
                )
        return out, unverified

    @staticmethod
    def _container_read(
        code: str, parts: list[TextBox], lines: list[TextLine], digit_conf: float | None = None
    ) -> PlateRead:
        """A container code read in ``lines`` (boxed by ``parts``); ``digit_conf``: its check digit's
        confidence, where the digit was read apart from them."""
        confs = [c for line in lines for c in line.confs] + ([digit_conf] if digit_conf is not None else [])
        return PlateRead(
            text=code,
            confidence=round(_geo_mean(confs), 4),
            box=_union_rect(parts),
            display=format_code(code),
            syntax="iso6346",
            raw_text=" ".join(line.raw or line.text for line in lines),
            kind="container",
        )

    def _code_around(self, img: np.ndarray, box: TextBox, text: str) -> PlateRead | None:
        """The container code read in a closer look at ``box`` (a text of part of a code), grown
        by ``CODE_LOOK_GROW`` characters at each end of its line, or up and down its column; None where no code
        there verifies. The detector leaves out a corner post's top or bottom rows where they are
        far apart, and reads a tall column as one text whose characters run together; seen
        closer, the whole column is one text again (``bench.containers``: `VLFU 509092 6`, read
        `FU5090926` at 640 px)."""
        x, y, w, h = box.rect
        vertical = is_vertical(box.quad)
        pitch = (h if vertical else w) / max(len(text), 1)
        # A column's piece may be the top or the bottom of the code: the look takes in as many rows
        # as are missing, each way.
        grow = int(max(CODE_LOOK_GROW, CODE_CHARS - len(text) if vertical else 0) * pitch)
        rect = (x, y - grow, w, h + 2 * grow) if vertical else (x - grow, y, w + 2 * grow, h)
        # A column's box may be much wider than its characters (the unclip grows a narrow text's
        # box, a wall's ribs join it): the characters' pitch bounds the size they are seen at.
        crop, x0, y0, found = self.closer_look(img, rect, min(w, 2 * pitch) if vertical else h)
        if not found:
            return None
        found.sort(key=lambda b: b.rect[1] if vertical else b.rect[0])
        reads = self.recognizer.recognize([crop_quad(crop, b.quad) for b in found])
        # Each text on its own, then all of them in reading order (a column read in two parts).
        texts = [[k] for k in range(len(found))] + ([list(range(len(found)))] if len(found) > 1 else [])
        for part in texts:
            joined = "".join(reads[k].text for k in part)
            codes = find_container_codes(joined, probs=np.vstack([reads[k].probs for k in part]))
            if codes:
                parts = [TextBox(found[k].quad + np.array([x0, y0], np.float32), found[k].score) for k in part]
                return self._container_read(codes[0].code, parts, [reads[k] for k in part])
        return None

    def _check_digit_beside(
        self, img: np.ndarray, serial: TextBox, head: str
    ) -> tuple[TextBox, float] | None:
        """The check digit of ``head`` (owner code, category, serial) read right after the serial
        in ``serial``'s text, with its box and the recognizer's confidence; None where what is read
        there is another character, or nothing.

        A closer look at the serial's end finds where its last digits are (a far line's first box
        is often much larger than its text) and, often, the digit's box of its own, with the
        serial's last characters (``70``) or apart. Where the detector sees no text in the box (a
        boxed 0 is a ring in a frame), the box is found in the ink right of the serial and its
        inside read alone (``_box_inside``): read with its sides, a boxed 1 is a D, which the check
        digit's place would take for a 0. Where no box is found there, the place is read cut to
        the characters' rows, so that a box's top and bottom are left out."""
        want = str(check_digit(head))
        x, y, w, h = serial.rect
        crop, x0, y0, found = self.closer_look(img, (int(x + w - 2 * h), y, int(5 * h), h), serial.height)
        # The look's margin takes in the line above or below (the owner code, over the serial where
        # it is printed in two lines); only the serial's row is read, or its characters would be
        # sorted in among the serial's.
        found = [b for b in found if _in_row(b.rect, (x - x0, y - y0, w, h))]
        if not found:
            return None
        reads = self.recognizer.recognize([crop_quad(crop, b.quad) for b in found])
        chars: list[tuple[float, str, float, TextBox]] = []  # (x in img, character, confidence, its text's box)
        for b, line in zip(found, reads, strict=True):
            bx, _, bw, _ = b.rect
            frame_box = TextBox(b.quad + np.array([x0, y0], np.float32), b.score)
            chars += [(x0 + bx + frac * bw, ch, conf, frame_box)
                      for ch, conf, frac in zip(line.text, line.confs, line.xs, strict=False)]
        chars.sort(key=lambda t: t[0])
        as_digits = "".join(_as_digit(ch) or "?" for _, ch, _, _ in chars)
        tail = as_digits.rfind(head[-3:])
        if tail < 0:
            return None
        last = tail + 2
        after = chars[last + 1 :]
        if len(after) >= 2 and after[0][1] in BOX_SIDE:
            after = after[1:]
        if after:
            _, ch, conf, box = after[0]
            return (box, conf) if _as_digit(ch) == want and conf >= CHECK_DIGIT_MIN_CONF else None
        # Nothing found after the serial: the digit's box is looked for right of it, and its inside
        # alone read (the box's sides read as part of its digit wherever a cut takes them in: a
        # boxed 1 as D, which the check digit's place turns into 0). A digit read there decides.
        cx, _, _, line_box = chars[last]
        mid = float(line_box.quad[:, 1].mean())
        char_lo, char_hi = line_box.height / UNCLIP_HEIGHTS[-1], line_box.height / UNCLIP_HEIGHTS[0]
        region = (int(cx), int(mid - 1.1 * char_hi), int(2.8 * char_hi), int(2.2 * char_hi))
        inside = _box_inside(img, region, min_height=char_lo, text=line_box.rect)
        if inside is not None:
            crop, (bx, by, bw, bh) = inside
            line = self.recognizer.recognize([crop], min_width=CHECK_DIGIT_WIDTH)[0]
            if len(line.text) == 1 and line.text in DIGITS and line.confs[0] >= CHECK_DIGIT_MIN_CONF:
                return (_rect_box(bx, by, bx + bw, by + bh), line.confs[0]) if line.text == want else None
        # No box found, or nothing read in it: the place where the digit is painted is read. A text
        # box is 1.5 to 2.1 times as tall as its characters, so both are tried; the digit must be the
        # one the check demands either way.
        fh, fw = img.shape[:2]
        for ratio in UNCLIP_HEIGHTS:
            char_h = line_box.height / ratio
            rx0, rx1 = int(cx + 0.4 * char_h), int(cx + 2.2 * char_h)
            ry0, ry1 = int(mid - 0.65 * char_h), int(mid + 0.65 * char_h)
            if rx0 < 0 or ry0 < 0 or rx1 > fw or ry1 > fh or rx1 - rx0 < 4 or ry1 - ry0 < 4:
                continue
            line = self.recognizer.recognize([img[ry0:ry1, rx0:rx1]], min_width=CHECK_DIGIT_WIDTH)[0]
            ch = line.text[-1:] if line.text[:1] in BOX_SIDE and len(line.text) == 2 else line.text
            if _as_digit(ch) == want and line.confs[-1] >= CHECK_DIGIT_MIN_CONF:
                return _rect_box(rx0, ry0, rx1, ry1), line.confs[-1]
        return None


def _digit_from_line_below(code: ContainerCode, chain: list[int], boxes: list[TextBox], lines: list[TextLine]) -> bool:
    """Whether ``code``, found in the texts ``chain`` joined, takes its check digit from the start
    of a longer text below its serial: the size and type code under it (`45G1`), whose first digit
    verifies one head in ten, misread heads included (`JJCU 159964 5`, its boxed digit unseen, gave
    `JJCU1599644`). A digit below the serial is a corner post's row, a text of its own."""
    owners = _char_boxes(chain, lines)
    serial, digit = owners[code.start + CODE_LEN - 2], owners[code.start + CODE_LEN - 1]
    return digit != serial and not _in_row(boxes[digit].rect, boxes[serial].rect) and owners.count(digit) > 1


def _char_boxes(chain: list[int], lines: list[TextLine]) -> list[int]:
    """For each letter and digit of the texts ``chain`` joined (as ``find_container_codes`` and
    ``code_shaped`` count them), the index of the text it was read in."""
    return [j for j in chain for ch in lines[j].text.upper() if ch in ALNUM]


def _box_inside(
    img: np.ndarray, region: Rect, min_height: float, text: Rect
) -> tuple[np.ndarray, Rect] | None:
    """The inside of the largest box drawn in ``region`` of ``img`` (a check digit's box), at least
    ``min_height`` tall: cut clear of the box's sides and padded with its ground, as the recognizer
    reads a character best; with its place in ``img``. None where ``region`` holds no such box.
    Ink and paint are told apart as in ``text``, a line of the same print (Otsu's split, the ink
    the lesser part): the region may take in what lies beyond the container's edge."""
    sample = _clipped(img, text)
    x0, y0, x1, y1 = _bounds(img, region)
    if sample is None or x1 - x0 < 8 or y1 - y0 < 8:
        return None
    level, split = cv2.threshold(cv2.cvtColor(sample, cv2.COLOR_BGR2GRAY), 0, 255,
                                 cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    dark_ink = float((split > 0).mean()) > 0.5
    grey = cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    ink = ((grey <= level) if dark_ink else (grey > level)).astype(np.uint8) * 255
    contours, hierarchy = cv2.findContours(ink, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    holes = [cv2.boundingRect(c) for c, links in zip(contours, hierarchy[0], strict=True) if links[3] >= 0] \
        if hierarchy is not None else []
    holes = [r for r in holes if r[3] >= min_height and r[2] >= 0.3 * r[3]]
    if not holes:
        return None
    hx, hy, hw, hh = max(holes, key=lambda r: r[2] * r[3])
    inset = max(2, round(0.07 * hh))  # the sides' blurred edge, which reads as a 0 around the digit
    inner = img[y0 + hy + inset : y0 + hy + hh - inset, x0 + hx + inset : x0 + hx + hw - inset]
    if inner.shape[0] < 4 or inner.shape[1] < 2:
        return None
    ground = [int(v) for v in np.median(inner.reshape(-1, 3), axis=0)]
    pad = max(2, round(0.2 * hh))
    crop = cv2.copyMakeBorder(inner, pad, pad, 2 * pad, 2 * pad, cv2.BORDER_CONSTANT, value=ground)
    return crop, (x0 + hx, y0 + hy, hw, hh)


def _column(box: TextBox, line: TextLine) -> bool:
    """Whether ``line`` runs down ``box``, several characters one under another (a container's
    corner post, a sign's lettering): never a plate, whose characters stand side by side. The
    recognizer reads a column turned a quarter, and a misread one fits a plate format as well as a
    line does (`018U668940` of the corner post `OTBU 668940 2`, its 2 lost)."""
    return is_vertical(box.quad) and len(line.text) >= COLUMN_CHARS


def _partial_code(box: TextBox, text: str) -> bool:
    """Whether ``text`` in ``box`` is a part of a container code that a longer look may complete:
    a code with characters cut off (``code_part``), or any piece of a code down a column
    (``code_piece``: a corner post's rows found in pieces). A line that reads as either an owner
    code and serial or a code cut off (`IIUZ330992`, Z for 2) is taken for owner code and serial,
    whose check digit is looked for beside it (``_check_digit_beside``)."""
    if is_vertical(box.quad):
        return code_head(text) is not None or code_piece(text)
    return code_head(text) is None and code_part(text)


def _as_digit(ch: str) -> str | None:
    """``ch`` as the digit it is or is mistaken for (O, D for 0...); None for any other text."""
    if len(ch) != 1:
        return None
    return ch if ch in DIGITS else TO_DIGIT.get(ch)


def _two_lines(box: TextBox, line: TextLine, crop: np.ndarray) -> list[TextBox]:
    """The two lines of ``box`` where it holds two texts one over the other, as the detector boxes a
    far two-line plate (an Afghan plate's Persian and Latin lines, a trailer plate's two rows, an ADR
    plate's two numbers): cut at the row with the fewest upright strokes; [] where it holds one line.

    Only a box about as tall as a two-line plate for its width, and read unsurely: one line read
    whole is read with confidence. The halves are cut in the crop's own upright frame."""
    h, w = crop.shape[:2]
    if is_vertical(box.quad):
        return []  # a vertical text, which crop_quad turned to read: no two-line plate
    if h < MIN_SPLIT_PX or w / h > SPLIT_ASPECT or (line.confs and float(np.mean(line.confs)) >= SPLIT_CONF):
        return []
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    # Characters are upright strokes: the rows between two lines have none, whatever the colours
    # (and a plate's own edges, top and bottom, are level).
    strokes = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3))
    rows = strokes[:, w // 10 : w - w // 10].mean(axis=1) if w >= 10 else strokes.mean(axis=1)
    rows = np.convolve(rows, np.ones(3, np.float32) / 3, mode="same")
    lo, hi = int(h * 0.3), int(h * 0.7)
    cut = lo + int(np.argmin(rows[lo:hi]))
    above, below = float(rows[:cut].max(initial=0.0)), float(rows[cut:].max(initial=0.0))
    if min(above, below) < SPLIT_CONTRAST * max(float(rows[cut]), 1.0):
        return []
    q = box.quad.astype(np.float32)
    t = cut / h
    left, right = q[0] + (q[3] - q[0]) * t, q[1] + (q[2] - q[1]) * t
    return [TextBox(np.array([q[0], q[1], right, left], np.float32), box.score),
            TextBox(np.array([left, right, q[2], q[3]], np.float32), box.score)]


def widened(quad: np.ndarray, by: float) -> np.ndarray:
    """``quad`` (tl, tr, br, bl) with each end moved outwards by ``by`` line heights (inwards when
    negative), along the text's own direction, so a slanted line stays the same line."""
    q = quad.astype(np.float32)
    h = quad_height(q)
    along = (q[1] - q[0] + q[2] - q[3]) / 2
    step = along / max(float(np.linalg.norm(along)), 1e-6) * by * h
    return np.array([q[0] - step, q[1] + step, q[2] + step, q[3] - step], np.float32)


def _majority(reads: list[Candidate]) -> Candidate:
    """The best-scored read of the text most reads agree on; with no majority, the best-scored."""
    votes: dict[str, list[Candidate]] = {}
    for r in reads:
        votes.setdefault(r.match.text, []).append(r)
    group = max(votes.values(), key=lambda g: (len(g), max(c.score for c in g)))
    return max(group, key=lambda c: c.score)


def _lifted(img: np.ndarray) -> np.ndarray:
    """``img``, or, when it is dark, ``img`` with its levels stretched over the full range.

    The models were trained on well-exposed photos. A frame the camera's gain left dark (dusk, an
    exposure set against headlights) keeps its plate's contrast in a few grey levels, which the
    detector does not see as text: the dev photos at a third of their light read `us` 75.2% and
    `br` 96.5%, and 78.8% and 99.1% stretched. Nine dev photos are that dark as taken; none of them
    reads differently. The levels come from every fourth pixel, and one table lookup applies them.
    """
    sample = img[::4, ::4]
    if float(sample.mean()) >= DARK_MEAN:
        return img
    lo, hi = (float(v) for v in np.percentile(sample, (1.0, 99.5)))
    if hi - lo < MIN_LEVELS:
        return img  # a black frame (a covered lens, a dead night): nothing to bring out
    lut = np.clip((np.arange(256, dtype=np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return cv2.LUT(img, lut)


def _one_per_place(cands: list[Candidate], floor: float) -> list[Candidate]:
    """The best reading of each place (and each text once), among those whose characters the
    recognizer gave at least ``floor`` on average; ``cands`` best first."""
    kept: list[Candidate] = []
    for c in cands:
        if _geo_mean(c.match.confs) < floor:
            continue
        if any(iou(c.rect, k.rect) > 0.2 or c.match.text == k.match.text for k in kept):
            continue
        kept.append(c)
    return kept


def _without_others_print(
    cands: list[Candidate], others: list[PlateRead], img: np.ndarray,
    unverified: Sequence[tuple[int, int, int, int]] = (),
) -> list[Candidate]:
    """The candidates that are not a container's or an ADR plate's own print.

    A container's code, or its size and type code (``22G1``) beside it, is no plate. Nor are the
    hazard and UN numbers of an orange ADR plate, which tankers carry right by their registration
    plate: read in every frame, ``331203`` would outvote it. The ADR plate must be orange to count,
    so a two-line registration plate of digits is never taken for one (in an infrared camera's grey
    frames, nothing is dropped).
    """
    containers = [r.box for r in others if r.kind == "container"] + list(unverified)
    adr = [r.box for r in others if r.kind == "adr" and _orange(img, r.box)]
    if not containers and not adr:
        return cands
    return [
        c for c in cands
        if not any(_container_text(c.rect, c.match.text, box) for box in containers)
        and not any(_inside(c.rect, box) for box in adr)
    ]


def _inside(rect: tuple[int, int, int, int], box: tuple[int, int, int, int]) -> bool:
    """At least half of ``rect`` lies in ``box``."""
    return _intersection(rect, box) >= 0.5 * rect[2] * rect[3]


def _in_row(rect: Rect, row: Rect) -> bool:
    """``rect``'s middle lies within ``row``'s height: a text on the same line, whatever its width."""
    mid = rect[1] + rect[3] / 2
    return row[1] <= mid <= row[1] + row[3]


def _rect_box(x0: int, y0: int, x1: int, y1: int) -> TextBox:
    """An upright box from its corners, as the detector would give it (sure of it)."""
    return TextBox(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32), 1.0)


def _bounds(img: np.ndarray, rect: Rect) -> tuple[int, int, int, int]:
    """``rect`` (x, y, w, h) as the corners (x0, y0, x1, y1) of its part inside ``img``."""
    x, y, w, h = rect
    fh, fw = img.shape[:2]
    return max(0, x), max(0, y), min(fw, x + w), min(fh, y + h)


def _clipped(img: np.ndarray, rect: Rect) -> np.ndarray | None:
    """The part of ``img`` inside ``rect``; None where there is none."""
    x0, y0, x1, y1 = _bounds(img, rect)
    return img[y0:y1, x0:x1] if x1 > x0 and y1 > y0 else None


def _orange(img: np.ndarray, rect: tuple[int, int, int, int]) -> bool:
    """Whether ``rect`` is mostly the saturated orange of an ADR plate (its black digits aside)."""
    crop = _clipped(img, rect)
    if crop is None:
        return False
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    orange = (hsv[..., 0] >= 5) & (hsv[..., 0] <= 25) & (hsv[..., 1] >= 120) & (hsv[..., 2] >= 80)
    return float(orange.mean()) >= 0.3


def _container_text(rect: tuple[int, int, int, int], text: str, container: tuple[int, int, int, int]) -> bool:
    if _inside(rect, container):
        return True
    px, py, pw, ph = rect
    cx, cy, cw, ch = container
    char = min(cw, ch)  # the code's character height, whether it runs across or down
    dx = max(0, max(px, cx) - min(px + pw, cx + cw))
    dy = max(0, max(py, cy) - min(py + ph, cy + ch))
    return is_size_type(text, misread=True) and dx <= 3 * char and dy <= 3 * char


def _reading_chains(
    boxes: list[TextBox], lines: list[TextLine], max_boxes: int = 12, min_chars: int = CODE_CHARS
) -> list[list[int]]:
    """Runs of boxes in reading order of at least ``min_chars`` characters (a container code's by
    default), shortest first.

    Each box is followed by its nearest neighbour to the right on the same line and by its nearest
    one on the next line down; both are tried, so a code is found whichever way it is laid out.
    Shortest first, so a code is reported with the boxes it is made of and nothing around it.
    """
    n = len(boxes)
    rects = [b.rect for b in boxes]
    after: list[list[int]] = []
    for i in range(n):
        xi, yi, wi, hi = rects[i]
        right: list[tuple[float, int]] = []
        below: list[tuple[float, int]] = []
        for j in range(n):
            if j == i or not lines[j].text:
                continue
            xj, yj, wj, hj = rects[j]
            h = max(hi, hj)
            v_overlap = min(yi + hi, yj + hj) - max(yi, yj)
            gap = xj - (xi + wi)
            if v_overlap >= 0.5 * min(hi, hj) and xj >= xi + 0.5 * wi and -0.3 * min(wi, wj) <= gap <= 4 * h:
                right.append((gap, j))
                continue
            drop = yj - (yi + hi)
            h_overlap = min(xi + wi, xj + wj) - max(xi, xj)
            # The next line down by the lines' middles: a small text's boxes, grown by the unclip,
            # overlap by more than half their height (a two-line code of 14 px characters).
            lower = (yj + hj / 2) - (yi + hi / 2) >= NEXT_LINE_DROP * h
            if lower and drop <= h and (h_overlap > 0 or abs(xj - xi) <= 2 * h):
                below.append((drop, j))
        # The nearest neighbour each way, and the same text as another pass boxed it: a coarse and
        # a fine pass box one line twice, and only one of the two may have been read right.
        nexts: list[int] = []
        for near in (right, below):
            if near:
                first = min(near)[1]
                nexts += [j for _, j in sorted(near) if j == first or iou(rects[j], rects[first]) > SAME_TEXT_IOU]
        after.append(nexts)
    chains: list[list[int]] = []

    def walk(path: list[int], chars: int) -> None:
        if len(chains) >= MAX_CHAINS:
            return
        if chars >= min_chars:
            chains.append(path)
        if len(path) >= max_boxes or chars >= CODE_CHARS + 4:
            return
        for j in after[path[-1]]:
            if j not in path:
                walk([*path, j], chars + len(lines[j].text))

    for i in range(n):
        if lines[i].text:
            walk([i], len(lines[i].text))
    chains.sort(key=len)
    return chains


def _blue_band(
    img: np.ndarray, rect: tuple[int, int, int, int], loose: bool = False
) -> tuple[int, int, int, int] | None:
    """The blue band at the left of a plate whose text occupies ``rect``, or None.

    Looked for from a little left of the text to a little inside it (a detector box may or may not
    include the band): the leftmost run of columns largely of saturated blue, 4-18% as wide as the
    text, with something else to its left and the plate's light ground to its right.

    ``loose``: the blue of a column is counted over the rows that hold blue, not the text box's (a far
    plate's box is twice its height, and its band 5 px wide fell short of a third), and the run must
    be upright. This finds the band of every drawn plate from 14 px, where the strict look missed 6
    of 20, but finds "bands" on 17 of the `us` dev photos' plates (a state's blue lettering) where
    the strict one finds 5. So it only decides that a plate has no band; the code is read from what
    the strict look finds.
    """
    x, y, w, h = rect
    fh, fw = img.shape[:2]
    # The band starts before 0.15 of the text's width, and is followed to its end even past that.
    x0, x1 = max(0, int(x - BAND_LOOK_LEFT * w)), min(fw, int(x + 0.35 * w))
    last_start = int(x + 0.15 * w) - x0
    y0, y1 = max(0, y), min(fh, y + h)
    if x1 - x0 < MIN_BAND_LOOK_PX or y1 - y0 < MIN_BAND_LOOK_PX:
        return None
    hsv = cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_BGR2HSV)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    blue = (hue >= 95) & (hue <= 130) & (sat >= 90) & (val >= 50)
    # The stars and the code interrupt the blue: a column counts at a third blue, smoothed. A third
    # of the rows that hold blue at all: a far plate's text box is twice the plate's height.
    band_rows = max(1, int(np.count_nonzero(blue.sum(axis=1) >= 2))) if loose else blue.shape[0]
    cols = np.convolve(blue.sum(axis=0) / band_rows, np.ones(3) / 3, mode="same") >= 0.33
    idx = np.flatnonzero(cols)
    if idx.size == 0:
        return None
    start = int(idx[0])
    if start > last_start:
        return None
    if start == 0 and x0 > 0:
        return None  # blue from beyond the window on: a blue car or sign, not a band
    end = start
    while end + 1 < cols.size and cols[end + 1]:
        end += 1
    width = end - start + 1
    if not 0.04 * w <= width <= 0.18 * w:
        return None
    # The band's own rows: a far plate's text box is tall with the car body above and below it,
    # which must not count as the plate's ground, nor be read as the band's code.
    rows = np.flatnonzero(blue[:, start : end + 1].mean(axis=1) >= 0.3)
    if rows.size == 0:
        return None
    top, bottom = y0 + int(rows[0]), y0 + int(rows[-1]) + 1
    if loose and bottom - top < max(1.5 * width, 0.3 * h):
        return None  # a few blue pixels, not a band: the band is upright and spans most of the plate
    # The plate's ground right of the band: light, characters and all (most of it is ground).
    rx0 = x0 + end + 2
    right = img[top:bottom, rx0 : min(fw, rx0 + max(4, int(0.25 * w)))]
    if right.size == 0 or float(np.percentile(right.max(axis=2), 60)) < 120:
        return None
    return x0 + start, top, width, bottom - top


def _band_in_view(img: np.ndarray, rect: tuple[int, int, int, int]) -> bool:
    """Whether ``_blue_band`` sees all of the place a band at this text's left would be in: a plate
    cut by the frame's left edge, or a text too small to look beside, shows no band that it lacks."""
    x, y, w, h = rect
    return x - BAND_LOOK_LEFT * w >= 0 and y >= 0 and y + h <= img.shape[0] and h >= MIN_BAND_LOOK_PX


def _is_grey(img: np.ndarray) -> bool:
    """Whether a frame has no colour (an infrared camera's at night): its grey copy is itself, but
    for the few levels of chroma noise a video codec leaves (the dev photos: 30 and more)."""
    sample = img[::8, ::8].astype(np.int16)
    return bool(np.percentile(np.abs(sample - sample[..., :1]), 99) <= 6)


def _as_letters(line: TextLine) -> str:
    """A band's code read as the letters it must be: each character the likeliest letter the
    recognizer saw there. A far plate's code is a few pixels tall, and Italy's lone I then reads as
    1, Belgium's B as 8; "" where some character shows no trace of any letter."""
    if len(line.probs) != len(line.text):
        return ""
    out = []
    for row in line.probs:
        k = int(np.argmax(row[len(DIGITS):]))
        if float(row[len(DIGITS) + k]) < MIN_ALT_P:
            return ""
        out.append(LETTERS[k])
    return "".join(out)


def _lone_bar(crop: np.ndarray) -> bool:
    """Whether the light ink on a band's code crop is one upright stroke: Italy's I, which the
    recognizer, seeing no neighbours, reads as 0 or D."""
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    _, ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink)
    width = ink.shape[1]
    # Slivers at the crop's sides are the plate's ground or its border, not the code.
    blobs = [s for s in stats[1:] if s[cv2.CC_STAT_AREA] >= 0.02 * ink.size
             and s[cv2.CC_STAT_LEFT] > 0 and s[cv2.CC_STAT_LEFT] + s[cv2.CC_STAT_WIDTH] < width]
    if len(blobs) != 1:
        return False
    _, _, w, h, _ = blobs[0]
    return bool(h >= 0.3 * ink.shape[0] and h >= 2.4 * w)


def is_overlay(raw: str) -> bool:
    """Whether a raw OCR line is a camera's timestamp (or any clock or date), never a plate."""
    return OVERLAY.search(raw) is not None


def _not_overlays(boxes: list[TextBox], lines: list[TextLine]) -> list[int]:
    """The indices of the texts that are no camera overlay: neither a clock or date, nor a text
    that continues one.

    An overlay printed as a date over a time, or beside it, is detected as two texts; where the
    time lost a colon ("07:41821"), only its neighbour shows what it is.
    """
    stamps = [i for i, line in enumerate(lines) if is_overlay(line.raw or line.text)]
    drop = set(stamps)
    for i in stamps:
        for j, box in enumerate(boxes):
            if j not in drop and _continues(boxes[i], box):
                drop.add(j)
    return [i for i in range(len(lines)) if i not in drop]


def _continues(stamp: TextBox, box: TextBox) -> bool:
    """``box`` sits on the overlay's line or right above or below it, in print of the same height."""
    if not 0.7 < stamp.height / max(box.height, 1.0) < 1.4:
        return False
    return (_side_by_side(stamp, box) or _side_by_side(box, stamp) or _stacked(stamp, box)
            or _stacked(box, stamp))


def _repeats(text: str, tail: int = 4) -> list[range]:
    """Positions to drop so that a digit or a pair of digits repeated in the last ``tail``
    characters is read once: "A939KX1818" -> drop 8 and 9, "A939KX118" -> drop 7."""
    n = len(text)
    out: list[range] = []
    if n < 6:
        return out
    start = n - tail
    for i in range(max(start, 1), n):
        if text[i].isdigit() and text[i] == text[i - 1]:
            out.append(range(i, i + 1))
    for i in range(max(start, 2), n - 1):
        if text[i : i + 2].isdigit() and text[i : i + 2] == text[i - 2 : i]:
            out.append(range(i, i + 2))
    return out


def _convincing(c: Candidate) -> bool:
    """A read good enough that looking harder would not pay.

    Never a number or a word alone: phone numbers, fleet numbers and the words of a livery on the
    vehicle are what a coarse pass reads best, and a plate too small for it may be beside them.
    """
    if c.match.text.isdigit() or is_word(c.match.text):
        return False
    conf = _geo_mean(c.match.confs)
    return (not c.match.generic and conf >= 0.85) or conf >= 0.97


def _certain(c: Candidate) -> bool:
    """A first read so clean that a closer look would only cost time."""
    m = c.match
    return not m.generic and m.corrections == 0 and min(m.confs, default=0.0) >= CERTAIN_CHAR_CONF


def _text_goes_on(img: np.ndarray, quad: np.ndarray) -> bool:
    """Whether characters go on past either end of the box, so that its read, however clean, may be
    part of the plate: the detector cut 6LSU216's box after its 6L, and `SU216` read as certain.

    Looks at a strip of 0.6 line heights beyond each end: a character's strokes leave ink in the
    line's middle rows with the plate's ground above or below them, over a good part of the strip,
    as the characters inside the box do.
    """
    strip = 0.6  # line heights beyond each end
    h = quad_height(quad)
    if h < 10:
        return False
    w = quad_width(quad)
    wide = crop_quad(img, widened(quad, strip))
    gray = cv2.cvtColor(wide, cv2.COLOR_BGR2GRAY) if wide.ndim == 3 else wide
    rows, cols = gray.shape
    ext = round(cols * strip * h / (w + 2 * strip * h))  # the strip beyond each end, in pixels
    if ext < 3 or cols - 2 * ext < 4:
        return False
    top, bottom = int(rows * 0.2), max(int(rows * 0.8), int(rows * 0.2) + 1)
    thresh, _ = cv2.threshold(gray[top:bottom, ext : cols - ext], 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    dark = gray < thresh
    if dark[top:bottom, ext : cols - ext].mean() > 0.5:  # light characters on a dark plate
        dark = ~dark
    ink = dark[top:bottom].mean(axis=0)
    # Ground above or below the stroke: the plate goes on there, where the plate's border and the
    # car's body beyond its edge are dark from top to bottom.
    margins = np.vstack([dark[: max(1, rows // 8)], dark[rows - max(1, rows // 8) :]]).mean(axis=0)
    stroke = (ink > 0.15) & (margins < 0.5)
    inside = stroke[ext : cols - ext].mean()
    return any(stroke[part].mean() >= max(0.2, 0.5 * inside) for part in (slice(0, ext), slice(cols - ext, cols)))


def _prefer_large(cands: list[Candidate]) -> None:
    """The vehicle in the lane is the nearest: its plate's characters are the tallest in view."""
    if not cands:
        return
    tallest = max(c.line_height for c in cands)
    for c in cands:
        c.score = c.base + SIZE_WEIGHT * math.log(max(c.line_height, 1.0) / max(tallest, 1.0))
    cands.sort(key=lambda c: -c.score)


def _shape_score(quad: np.ndarray, box: TextBox | None) -> float:
    """Plates are short, wide-ish texts; long lines of small print are not plates."""
    w, h = quad_width(quad), quad_height(quad)
    if h <= 0:
        return -5.0
    aspect = w / h
    score = 0.0
    if aspect > 9:
        score -= 1.0
    if h < 8:
        score -= 1.0
    return score


def _rect_of(quad: np.ndarray) -> tuple[int, int, int, int]:
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    return int(x0), int(y0), math.ceil(x1 - x0), math.ceil(y1 - y0)


def _span_in(quad: np.ndarray, rect: tuple[int, int, int, int] | None) -> tuple[float, float] | None:
    """The columns of ``rect`` (a band beside a text, in frame pixels) as a span of the text's
    crop width, 0 at its left end: where a character read inside it was read from the band."""
    if rect is None:
        return None
    left = float((quad[0][0] + quad[3][0]) / 2)
    width = max(1.0, float((quad[1][0] + quad[2][0]) / 2) - left)
    return (rect[0] - left) / width, (rect[0] + rect[2] - left) / width


def _hint_for(rect: tuple[int, int, int, int], hints: list[tuple[tuple[int, int, int, int], str]]) -> str | None:
    """The country whose printed code sits on or right beside this text."""
    x, y, w, h = rect
    for (hx, hy, hw, hh), country in hints:
        cx, cy = hx + hw / 2, hy + hh / 2
        if x - 1.5 * h <= cx <= x + w + 1.5 * h and y - 0.8 * h <= cy <= y + 1.8 * h:
            return country
    return None


def _side_by_side(left: TextBox, right: TextBox, ratio: float = JOIN_RATIO) -> bool:
    """``right`` continues ``left`` on the same line, a small gap apart, their heights within
    ``ratio`` of each other."""
    lx, ly, lw, lh = left.rect
    rx, ry, rw, rh = right.rect
    if rx <= lx:
        return False
    gap = rx - (lx + lw)
    if gap > 1.2 * max(lh, rh) or gap < -0.3 * min(lw, rw):
        return False
    overlap = min(ly + lh, ry + rh) - max(ly, ry)
    if overlap < 0.6 * min(lh, rh):
        return False
    return 1 / ratio < lh / max(rh, 1) < ratio


def _joinable(a: TextBox, b: TextBox, ratio: float = JOIN_RATIO) -> bool:
    """Whether ``_candidates`` would join the two texts, in either order (side by side: their
    heights within ``ratio``)."""
    return _side_by_side(a, b, ratio) or _side_by_side(b, a, ratio) or _stacked(a, b) or _stacked(b, a)


def _stacked(top: TextBox, bottom: TextBox, loose: bool = False) -> bool:
    """``top`` sits right above ``bottom``, overlapping it horizontally."""
    tx, ty, tw, th = top.rect
    bx, by, bw, bh = bottom.rect
    if ty >= by:
        return False
    gap = by - (ty + th)
    if gap > 0.8 * max(th, bh) or gap < -0.5 * min(th, bh):
        return False
    overlap = min(tx + tw, bx + bw) - max(tx, bx)
    if overlap < 0.5 * min(tw, bw):
        return False
    if not loose and not (0.4 < th / max(bh, 1) < 2.5):
        return False
    return True


def _intersection(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    """The area two (x, y, w, h) boxes share."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))


def cut_by_edge(box: tuple[int, int, int, int], view: tuple[int, int, int, int], margin: int = 3) -> bool:
    """True when ``box`` touches the border of the region the reader looked at, where the text may
    go on beyond it."""
    x, y, w, h = box
    vx, vy, vw, vh = view
    return x <= vx + margin or y <= vy + margin or x + w >= vx + vw - margin or y + h >= vy + vh - margin


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    inter = _intersection(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
