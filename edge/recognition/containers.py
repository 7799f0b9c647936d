"""Container codes (ISO 6346) and ADR hazard plates, found among the texts OCR read in a picture.

A container code carries its own check digit, so a read is only reported when the digit verifies:
a wrong code sent to HQ is worse than none. Corrections (O/0, I/1...) are tried only where the code's
structure demands the other class, exactly as for plates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from edge.recognition.syntax import ALNUM, DIGITS, LETTERS, TO_DIGIT, TO_LETTER

# ISO 6346 letter values: 10 upwards, skipping the multiples of 11.
_LETTER_VALUES: dict[str, int] = {}
_v = 10
for _ch in LETTERS:
    if _v % 11 == 0:
        _v += 1
    _LETTER_VALUES[_ch] = _v
    _v += 1
CATEGORIES = "UJZ"
CODE_CLASSES = "LLLLDDDDDDD"  # owner code and category letters, serial and check digit
CODE_LEN = len(CODE_CLASSES)


def check_digit(code10: str) -> int:
    """The ISO 6346 check digit of owner code + category + 6-digit serial (10 characters)."""
    code10 = code10.upper()
    if not re.fullmatch(r"[A-Z]{3}[A-Z][0-9]{6}", code10):
        raise ValueError(f"not an ISO 6346 owner+category+serial: {code10!r}")
    total = 0
    for i, ch in enumerate(code10):
        value = _LETTER_VALUES[ch] if ch in _LETTER_VALUES else int(ch)
        total += value << i
    return total % 11 % 10


def is_valid(code: str) -> bool:
    """True for an 11-character code whose category is U/J/Z and whose check digit verifies."""
    code = re.sub(r"[\s-]", "", code.upper())
    if not re.fullmatch(r"[A-Z]{3}[UJZ][0-9]{7}", code):
        return False
    return check_digit(code[:10]) == int(code[10])


# The size and type code printed beside the container code (ISO 6346 ch. 4): length (1-4 or a
# letter for other lengths), height and width, then the type group and its detail (22G1, 45R1, L5G1).
SIZE_TYPE = re.compile(r"[1-9A-P][0-9CDEFLMNP][GVBSRHUPTA][0-9]")
SIZE_TYPE_MISREAD = re.compile(r"[1-9A-P][0-9CDEFLMNP][A-Z][0-9]")


def is_size_type(text: str, misread: bool = False) -> bool:
    """True for a text that is an ISO 6346 size and type code such as ``22G1`` or ``45R1``; with
    ``misread``, also where its type letter was misread as one no type has (``22C1``, ``45D1``):
    beside a container's code, that is what such a text is."""
    pattern = SIZE_TYPE_MISREAD if misread else SIZE_TYPE
    return pattern.fullmatch(re.sub(r"[\s-]", "", text.upper())) is not None


def format_code(code: str) -> str:
    """The way containers print it: ``CSQU 305438 3``."""
    return f"{code[:4]} {code[4:10]} {code[10]}"


def _alnum(text: str) -> str:
    """``text`` as the code's characters alone: upper case, spaces, dashes and stray marks dropped."""
    return "".join(ch for ch in text.upper() if ch in ALNUM)


def _coerce(text: str, classes: str) -> tuple[str, int] | None:
    """Force ``text`` into a class pattern (``L`` letter, ``D`` digit); count the corrections."""
    out: list[str] = []
    fixes = 0
    for ch, cls in zip(text, classes, strict=True):
        if cls == "L":
            if ch in LETTERS:
                out.append(ch)
                continue
            alt = TO_LETTER.get(ch)
        else:
            if ch in DIGITS:
                out.append(ch)
                continue
            alt = TO_DIGIT.get(ch)
        if alt is None:
            return None
        out.append(alt)
        fixes += 1
    return "".join(out), fixes


# What a category letter is misread as, mended in the category's place only: J as I, U as V.
CATEGORY_LOOKALIKES = {"I": "J", "V": "U"}


def _as_code(text: str, classes: str, max_corrections: int, max_in_digits: int | None = None) -> tuple[str, int] | None:
    """``text`` forced into ``classes`` (a code's, or the part of one that ends or starts with the
    category: its last ``L``) and the corrections made; None where the category's place holds no
    category, or where that takes more than ``max_corrections``, or more than ``max_in_digits`` of
    them in the digits' places. A category's look-alike as read (J read as I) counts as one; a digit
    read for it (1) is no category: two guesses in one place."""
    at = classes.rindex("L")
    fixes = 0
    if text[at] in CATEGORY_LOOKALIKES:
        text, fixes = text[:at] + CATEGORY_LOOKALIKES[text[at]] + text[at + 1 :], 1
    coerced = _coerce(text, classes)
    if coerced is None or coerced[0][at] not in CATEGORIES:
        return None
    code, more = coerced
    in_digits = sum(a != b for a, b, cls in zip(text, code, classes, strict=True) if cls == "D")
    if fixes + more > max_corrections or (max_in_digits is not None and in_digits > max_in_digits):
        return None
    return code, fixes + more


@dataclass(frozen=True)
class ContainerCode:
    code: str
    corrections: int
    start: int  # index into the joined text, to map back to boxes

    @property
    def display(self) -> str:
        return format_code(self.code)


ALT_MIN_PROB = 0.05  # a second choice the recognizer gave less than this is no reading of the character


def find_container_codes(text: str, max_corrections: int = 2, probs: np.ndarray | None = None) -> list[ContainerCode]:
    """Every check-digit-valid container code in a run of OCR text (spaces and dashes ignored), the
    surest first; of codes that would share characters, only the surest.

    With ``probs`` (the recognizer's probabilities of the 36 plate characters, one row per character
    of ``text``), a code whose check digit fails is mended where exactly one character has a second
    choice that makes it verify: the check digit catches every single wrong character, so one
    plausible fix that verifies is the code, while two would be a guess.
    """
    upper = text.upper()
    keep = [i for i, ch in enumerate(upper) if ch in ALNUM]
    s = "".join(upper[i] for i in keep)
    rows = probs[keep] if probs is not None and len(probs) == len(text) else None
    found: dict[str, ContainerCode] = {}
    for i in range(len(s) - 10):
        window = s[i : i + 11]
        coerced = _as_code(window, CODE_CLASSES, max_corrections)
        if coerced is None:
            continue
        code, fixes = coerced
        if not is_valid(code):
            mended = _mend(code, rows[i : i + 11]) if rows is not None and fixes < max_corrections else None
            if mended is None:
                continue
            code, fixes = mended, fixes + 1
        if code not in found or found[code].corrections > fixes:
            found[code] = ContainerCode(code, fixes, i)
    # Two codes cannot share characters: where windows overlap, the one needing fewer corrections
    # is the code (`BWGU2821745` beside its size-type `L5G1`: `WGU2821745L`, corrected twice to
    # `WGUZ8217451`, verifies by chance, one window in ten).
    kept: list[ContainerCode] = []
    for cand in sorted(found.values(), key=lambda c: (c.corrections, c.start)):
        if all(abs(cand.start - k.start) >= CODE_LEN for k in kept):
            kept.append(cand)
    return kept


def code_head(text: str, max_corrections: int = 2) -> str | None:
    """The owner code, category and serial a run of OCR text ends with, where its check digit is
    missing: the digit is painted in a box of its own beside the serial, which the text detector
    often leaves out of the line or does not see at all. None where the text ends otherwise.

    Ends with, not holds: the digit must come right after the serial, where the reader looks for it.
    """
    s = _alnum(text)
    if len(s) < 10:
        return None
    # A serial of two digits read as letters is a plate's letters more likely than a serial.
    coerced = _as_code(s[-10:], CODE_CLASSES[:10], max_corrections, max_in_digits=1)
    return None if coerced is None else coerced[0]


def code_part(text: str, max_corrections: int = 1) -> bool:
    """Whether a run of OCR text is a container code with one or two characters cut off: its owner
    code read only in part (``FU5090926``, a corner post's column whose top rows the detector left
    out), or its serial cut short (``PJJZ88890``, a far code's characters run together). No plate
    format reads so, but a generic one takes it: it is the container's print, and its code is
    looked for around it. An owner code and serial without the check digit are ``code_head``'s.

    Three letters missing (``U1234567``) is not taken: a British trailer plate is a letter and
    seven digits. The category alone dropped (``WOL9738821``: the J between owner code and serial
    lost, a condensed font's narrow letter) is a part too, its seven digits as read; with one more
    character lost (``PRR623263``) it is not, as an Afghan plate's three letters, five digits and
    a letter read with the letter as a digit (``HRT 38867 L`` as ``HRT388671``) look the same."""
    s = _alnum(text)
    if not CODE_LEN - 2 <= len(s) <= CODE_LEN - 1:
        return False
    for classes in ("L" * (len(s) - 8) + CODE_CLASSES[3:], CODE_CLASSES[: len(s)]):
        if _as_code(s, classes, max_corrections) is not None:
            return True
    if len(s) != CODE_LEN - 1 or not s[3:].isdigit():
        return False
    owner = _coerce(s[:3], CODE_CLASSES[:3])
    return owner is not None and owner[1] <= max_corrections


def code_shaped(text: str) -> int | None:
    """Where a run of OCR text holds a whole container code as read, owner code, category and
    seven digits, whether or not its check digit verifies (the index of its first character
    among the text's letters and digits); None where it holds none. A container's print all the
    same, which no plate format reads so. No character is corrected: with one, a truck's phone
    number (`PROCHEM 281-880-8231`, `HEM2` for `HEMZ`) took the plate beside it for print."""
    s = _alnum(text)
    return next((i for i in range(len(s) - CODE_LEN + 1) if _as_code(s[i : i + CODE_LEN], CODE_CLASSES, 0)), None)


def code_piece(text: str, min_chars: int = 3, max_corrections: int = 1) -> bool:
    """Whether a run of OCR text fits somewhere inside a container code: letters of the owner code,
    the category in its place, digits of the serial (``XWO``, ``ZU12``, ``4070430``). Only for a
    column of text, which no plate is: a corner post's rows are often found in pieces."""
    s = _alnum(text)
    if not min_chars <= len(s) <= CODE_LEN:
        return False
    for start in range(CODE_LEN - len(s) + 1):
        classes = CODE_CLASSES[start : start + len(s)]
        coerced = _coerce(s, classes)
        if coerced is None or coerced[1] > max_corrections:
            continue
        if start <= 3 < start + len(s) and coerced[0][3 - start] not in CATEGORIES:
            continue
        return True
    return False


def _mend(code: str, rows: np.ndarray) -> str | None:
    """The one single-character change, among the recognizer's plausible second choices, that makes
    the check digit verify; None when there is none or more than one."""
    fixes = set()
    for pos, cls in enumerate(CODE_CLASSES):
        allowed = LETTERS if cls == "L" else DIGITS
        for alt in allowed:
            if alt == code[pos] or rows[pos, ALNUM.index(alt)] < ALT_MIN_PROB:
                continue
            candidate = code[:pos] + alt + code[pos + 1 :]
            if candidate[3] in CATEGORIES and is_valid(candidate):
                fixes.add(candidate)
    return fixes.pop() if len(fixes) == 1 else None


@dataclass(frozen=True)
class AdrPlate:
    hazard: str
    un_number: str

    @property
    def text(self) -> str:
        return f"{self.hazard}/{self.un_number}"

    @property
    def display(self) -> str:
        return f"{self.hazard} / {self.un_number}"


def parse_adr(upper: str, lower: str) -> AdrPlate | None:
    """An orange plate: hazard identification number (``33``, ``X423``) over a 4-digit UN number."""
    hz = upper.upper().replace("O", "0")
    un = "".join(TO_DIGIT.get(c, c) for c in lower.upper())
    if not re.fullmatch(r"X?[2-9][0-9]{1,2}", hz):
        return None
    if not re.fullmatch(r"[0-9]{4}", un) or not (1 <= int(un) <= 3600):
        return None
    return AdrPlate(hz, un)
