"""Plate syntaxes per country: ranking candidate texts, fixing confusions, naming the country.

The table itself is data (``plate_syntaxes.toml``). A character is only ever corrected where the
syntax demands a class the OCR did not give (a letter where a digit must be, a letter outside the
country's alphabet): the recognizer is right far more often than any rule, so a character the
syntax allows is never touched. A region code is one group, not its characters: where a country
issues a closed list of codes and the read is none of them, one character is corrected into a
listed code, as any other correction, where the recognizer saw a trace of it (``_snap_region``).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ConfigError
from edge.recognition.alphabet import ALNUM, DIGITS, LETTERS

# The classic confusions of plate OCR, in the direction a syntax may demand.
TO_DIGIT: dict[str, str] = {
    "O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1", "J": "1", "Z": "2", "B": "8",
    "S": "5", "G": "6", "A": "4", "T": "7", "E": "3", "Y": "7",
}  # fmt: skip
TO_LETTER: dict[str, str] = {
    "0": "O", "1": "I", "2": "Z", "4": "A", "5": "S", "6": "G", "7": "T", "8": "B", "3": "E",
}  # fmt: skip
# Further letter look-alikes used when a syntax restricts the alphabet (Russian plates).
LETTER_LOOKALIKE: dict[str, str] = {"D": "O", "Q": "O", "U": "Y", "V": "Y", "R": "P", "F": "E", "G": "C", "N": "H"}


@dataclass(frozen=True)
class Confusions:
    """The glyphs one script's recognizer takes for one another, in the direction a syntax may
    demand. They are a property of the script's glyphs, not of the Latin codes a read is written in:
    the Persian reader's E is ع, which looks nothing like a 3."""

    to_digit: dict[str, str]
    to_letter: dict[str, str]
    lookalike: dict[str, str] = field(default_factory=dict)
    # O read where the syntax wants 0 is free: one glyph on most Latin plates (see ``_fit``).
    o_is_zero: bool = False


CONFUSIONS: dict[str, Confusions] = {
    "latin": Confusions(TO_DIGIT, TO_LETTER, LETTER_LOOKALIKE, o_is_zero=True),
    # The Persian zero is a small ring or dot, and ه (H) a small loop: far plates' zeros are read as
    # H (drawn Iranian plates, 16-24 px). And the other way where the series letter is ه.
    "persian": Confusions({"H": "0"}, {"0": "H"}),
}

_COLUMN = {ch: i for i, ch in enumerate(ALNUM)}  # a character's column in a row of ALNUM probabilities
UNSEEN_P = 0.3  # the probability a classic confusion is credited with where the OCR was unsure of its read
MIN_ALT_P = 0.02  # below this the OCR saw no trace of the demanded character: no correction
CORRECTION_COST = 1.0  # a correction the confusion table does not explain
CLASSIC_COST = 0.5  # O->0, B->8...: glyphs a plate font draws (nearly) alike
PREFERRED_BOOST = 2.0
HINT_BOOST = 2.5  # the plate itself names the country
# Whether a plate read in colour has a blue band at its left tells whose it is, among the countries
# that fit its characters within this much (a band may be missed, an older plate lack one, a US
# state's blue lettering look like one, so the characters read never change). `us` dev split: 38 of
# the 222 best reads had been given a country that prints the band (19 LLL DDD as Lithuanian); the
# exact reads given the US went from 72.4% to 85.4%. Drawn plates: the right country 78/91/99% ->
# 79/93/100% at 14/16/24 px (a far band seen, its code unread). models/README.md, "A plate with no EU band".
BAND_MARGIN = 1.0
MISREAD_BAND_P = 0.1  # a band's code letter read as another, where the recognizer still gave it this much
UNSURE_CODE_P = 0.9  # a trailing letter read less surely than this may be a printed code's remnant
IGNORED_COST = 10.0  # below any reading of a country whose plates come (``SyntaxBook.match``)
UNLISTED_COST = 2.0  # a region code its country does not issue: the read is wrong, or the list is old


@dataclass(frozen=True)
class Syntax:
    """One fixed-length variant of a plate format: a set of allowed characters per position."""

    country: str
    name: str
    positions: tuple[frozenset[str], ...]
    groups: tuple[int, ...]  # lengths of the display groups
    prior: float = 1.0
    regions: tuple[tuple[int, frozenset[str]], ...] = ()
    min_letters: int = 0
    min_digits: int = 0
    layout: str = "one-line"
    verified: bool = True
    # Where the plate prints a seal or a coat of arms between two groups, the characters before it
    # (the groups up to ``emblem_after``, summed), and what the recognizer reads it as; None where
    # it prints none.
    emblem_at: int | None = None
    emblem_reads: frozenset[str] = frozenset()
    # The script the plate is written in, and so the recognizer that reads it: "latin" (PP-OCR), or
    # "persian" (an Iranian national plate, read by ``fa-plate-rec`` into Latin codes).
    script: str = "latin"

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def generic(self) -> bool:
        """A format that says little: every position takes any letter (and maybe any digit)."""
        return all(len(p) >= len(LETTERS) - 2 for p in self.positions)

    def display(self, text: str) -> str:
        out, i = [], 0
        for g in self.groups:
            out.append(text[i : i + g])
            i += g
        return " ".join(out)

    def region_spans(self) -> list[tuple[int, int, frozenset[str]]]:
        """Where each region code lies in a text of this syntax (start, end) and the codes allowed."""
        starts = np.cumsum((0, *self.groups))
        return [(int(starts[gi]), int(starts[gi + 1]), allowed) for gi, allowed in self.regions]

    @property
    def ends_in_region(self) -> bool:
        """Whether the plate's last group is a region code from a list (Russia's region box)."""
        return any(k == len(self.groups) - 1 for k, _ in self.regions)

    def region_ok(self, text: str) -> bool:
        return all(text[a:b] in allowed for a, b, allowed in self.region_spans())


@dataclass(frozen=True)
class SyntaxMatch:
    text: str
    display: str
    country: str
    syntax: str
    score: float
    corrections: int
    confs: tuple[float, ...] = field(default=())
    generic: bool = False
    layout: str = "one-line"
    variant: Syntax | None = field(default=None, compare=False, repr=False)
    preference: float = 0.0  # the part of ``score`` that is the post's country preference, not evidence

    @property
    def confidence(self) -> float:
        return float(min(self.confs)) if self.confs else 0.0

    @property
    def evidence_score(self) -> float:
        """The score without the post's preferred-country boost: what the photo itself says."""
        return self.score - self.preference


SCRIPTS = tuple(CONFUSIONS)  # the scripts a plate may be written in: each has its reader and its confusions
_TOKEN = re.compile(r"(\[[A-Z0-9]+\]|[DLX])(\{(\d+)(?:,(\d+))?\})?")


def is_word(text: str) -> bool:
    """Letters alone: a personalised plate (``us-vanity``), but as often a word on the vehicle (a
    livery, a dealer's frame), so it is a plate only where nothing else was read."""
    return text.isalpha()


def _expand_group(group: str, letters: str) -> list[list[frozenset[str]]]:
    """All fixed-length position lists a pattern group like ``L{1,3}`` stands for."""
    pieces: list[list[list[frozenset[str]]]] = []
    pos = 0
    while pos < len(group):
        m = _TOKEN.match(group, pos)
        if m is None:
            raise ValueError(f"bad pattern group {group!r} at {group[pos:]!r}")
        tok = m.group(1)
        if tok == "D":
            cls = frozenset(DIGITS)
        elif tok == "L":
            cls = frozenset(letters)
        elif tok == "X":
            cls = frozenset(DIGITS + letters)
        else:
            cls = frozenset(tok[1:-1])
        lo = int(m.group(3)) if m.group(3) else 1
        hi = int(m.group(4)) if m.group(4) else lo
        pieces.append([[cls] * n for n in range(lo, hi + 1)])
        pos = m.end()
    return [[cls for piece in choice for cls in piece] for choice in product(*pieces)]


def compile_syntax(entry: dict[str, Any]) -> list[Syntax]:
    letters = str(entry.get("letters", LETTERS))
    groups = str(entry["pattern"]).split()
    emblem_after = entry.get("emblem_after")
    if emblem_after is not None and (
        not isinstance(emblem_after, int) or isinstance(emblem_after, bool) or not 0 <= emblem_after < len(groups) - 1
    ):
        raise ValueError(f"emblem_after must be the index of a group that another follows (0-{len(groups) - 2}), "
                         f"not {emblem_after!r}")
    script = entry.get("script", "latin")
    if script not in SCRIPTS:
        raise ValueError(f"script must be one of {', '.join(SCRIPTS)}, not {script!r}")
    per_group = [_expand_group(g, letters) for g in groups]
    regions_raw = entry.get("regions", {}) or {}
    out = []
    for combo in product(*per_group):
        positions = tuple(p for g in combo for p in g)
        lengths = tuple(len(g) for g in combo)
        # A list may mix lengths (RU: 01-99 and 102-977); each expansion checks the values of its
        # own group length, and none where the list has no value of that length.
        fitting = {
            int(k): frozenset(str(v) for v in vals if len(str(v)) == lengths[int(k)])
            for k, vals in regions_raw.items()
            if int(k) < len(lengths)
        }
        regions = tuple((k, vals) for k, vals in fitting.items() if vals)
        out.append(
            Syntax(
                country=str(entry["country"]),
                name=str(entry["name"]),
                positions=positions,
                groups=lengths,
                prior=float(entry.get("prior", 1.0)),
                regions=regions,
                min_letters=int(entry.get("min_letters", 0)),
                min_digits=int(entry.get("min_digits", 0)),
                layout=str(entry.get("layout", "one-line")),
                verified=bool(entry.get("verified", True)),
                emblem_at=sum(lengths[: emblem_after + 1]) if emblem_after is not None else None,
                emblem_reads=frozenset(str(entry.get("emblem_reads", "")).upper()),
                script=script,
            )
        )
    return out


class SyntaxBook:
    """All known syntaxes, indexed by length, with the post's preferred countries boosted."""

    def __init__(
        self, syntaxes: Iterable[Syntax], preferred: Sequence[str] = (), codes: dict[str, str] | None = None,
        codes_at_right: Iterable[str] = (), band_at_left: Iterable[str] = (), ignored: Iterable[str] = (),
    ) -> None:
        self.syntaxes = list(syntaxes)
        # Printed country code -> country; only codes of two letters or more are stripped from text.
        self.codes = dict(codes or {})
        # The countries that print their code after the registration (every other one before it).
        self.codes_at_right = frozenset(codes_at_right)
        # The countries whose plates carry a blue band at the left (the EU's, Turkey's...).
        self.band_at_left = frozenset(band_at_left)
        self.preferred = [c.upper() for c in preferred]
        self.ignored = frozenset(c.upper() for c in ignored)
        self.by_len: dict[int, list[Syntax]] = {}
        for s in self.syntaxes:
            self.by_len.setdefault(len(s), []).append(s)

    @classmethod
    def load(
        cls, path: Path | None = None, preferred: Sequence[str] = (), script: str | None = "latin",
        ignored: Sequence[str] = (),
    ) -> SyntaxBook:
        """The table's syntaxes written in ``script`` (the reads of that script's recognizer are
        matched against them alone), or all of them (``None``: for a text whose script is unknown,
        as when reads of one crossing are voted on). Printed country codes are Latin: a book of
        another script has none. ``ignored``: countries whose plates never come (a post's
        ``ignore_countries``; see ``match``)."""
        syntaxes, codes, at_right, banded = _load_entries(str(path) if path else None)
        if script is not None:
            syntaxes = tuple(s for s in syntaxes if s.script == script)
        latin = script in (None, "latin")
        return cls(syntaxes, preferred, dict(codes) if latin else {}, at_right if latin else (),
                   banded if latin else (), ignored)

    def strip_code(self, text: str) -> list[tuple[str, str, int, int]]:
        """Ways to read ``text`` as a plate with its printed country code at the end its country
        prints it (``codes_at_right``; the left otherwise): (rest, country, chars cut at the start,
        chars cut at the end).

        Only at its own end: an Afghan rickshaw of Uruzgan, UZG 6183 TRC, read exactly, had become
        an Uzbek 66 183 TRC behind a "UZ" at its left, where no Uzbek plate prints it (its G taken
        for a 6, and the code's hint outscoring the Afghan format).

        A CTC recognizer prints two equal neighbours once unless it sees a gap between them, so a
        plate ending in U beside a printed UZ reads "...UZ" with one U: keeping the code's first
        character as the plate's last (and the code's last as the plate's first) is a reading too.
        """
        out = []
        for code, country in self.codes.items():
            if len(code) < 2 or len(text) < len(code) + 4:
                continue
            at_right = country in self.codes_at_right
            if not at_right and text.startswith(code):
                out.append((text[len(code) :], country, len(code), 0))
                out.append((text[len(code) - 1 :], country, len(code) - 1, 0))
            if at_right and text.endswith(code):
                out.append((text[: -len(code)], country, 0, len(code)))
                out.append((text[: len(text) - len(code) + 1], country, 0, len(code) - 1))
        return out

    def strip_band_letter(self, text: str) -> list[tuple[str, str, int, int]]:
        """Ways to read ``text`` as a plate behind a one-letter code (the EU band's I, D, F...).

        The band sits right before the first character, and the recognizer often reads its letter
        as part of the plate ("IAB123CD" for an Italian AB 123 CD). One letter is weak evidence (many
        plates start with an A or a D), so the caller accepts only a plate of that country, at a price.
        """
        if len(text) < 6:
            return []
        return [(text[1:], country, 1, 0) for code, country in self.codes.items() if len(code) == 1 and text[0] == code]

    def strip_emblem(self, text: str) -> list[tuple[str, str, int]]:
        """Ways to read ``text`` as a plate whose seal or coat of arms between two groups was read as
        a character (a German plate's seals as an 8: B8MW1234): (rest, country, the character's
        index). Only formats that print one there (``emblem_after``) explain it, so the caller
        accepts only a plate of that country. In colour the reader finds the emblem by its look
        (``edge.recognition.emblems``); this is for where it cannot, as in an infrared frame."""
        out: dict[tuple[str, str], int] = {}
        for syn in self.by_len.get(len(text) - 1, []):
            k = syn.emblem_at
            if k is not None and 0 < k < len(text) - 1 and text[k] in syn.emblem_reads:
                out.setdefault((text[:k] + text[k + 1 :], syn.country), k)
        return [(rest, country, k) for (rest, country), k in out.items()]

    def strip_misread_code(self, text: str, probs: np.ndarray) -> list[tuple[str, str, int, int]]:
        """Like ``strip_code``, for a printed code with one letter misread ("KG" as "RG"), or of
        which only the first letter was read, unsurely ("K" or "R" for "KG").

        The code is printed small under the flag, and its letters are the least legible on the
        plate. One differing letter is forgiven only where the recognizer itself gave the code's
        letter some probability (``probs``: one row of 36 per character of ``text``); the caller
        still only accepts a plate of that country, and at a price. A misread code is looked for
        only at the end its country prints it at: an Afghan lorry's JZJ 570 L, its class letter L
        read unsurely under motion smear, had become a Lithuanian JZJ570, whose LT is printed in the
        band at the left.
        """
        out: list[tuple[str, str, int, int]] = []
        n = len(text)
        if len(probs) != n:
            return out
        last = probs[-1]
        last_unsure = n >= 6 and float(last.max()) < UNSURE_CODE_P
        for code, country in self.codes.items():
            k = len(code)
            if k < 2 or n < k + 4:
                continue
            if country not in self.codes_at_right:
                if _one_letter_off(text[:k], code, probs[:k]):
                    out.append((text[k:], country, k, 0))
                continue
            if _one_letter_off(text[n - k :], code, probs[n - k :]):
                out.append((text[: n - k], country, 0, k))
            # Only the code's first letter made it, unsure ("02345ABR": the K of KG read as R).
            if k == 2 and last_unsure and (text[-1] == code[0] or float(last[_COLUMN[code[0]]]) >= MIN_ALT_P):
                out.append((text[:-1], country, 0, 1))
        return out

    def misread_band_code(self, text: str, probs: np.ndarray) -> str | None:
        """The country whose code a blue band's ``text`` is with one letter misread, where the
        recognizer gave the code's letter at least ``MISREAD_BAND_P`` (the likeliest such code), or
        None. A far band's code is a few pixels of white on blue: a Dutch band's NL read as WL, its
        N at 0.34. Only the codes of countries that print a band are looked for."""
        if len(probs) != len(text):
            return None
        best: tuple[float, str] | None = None
        for code, country in self.codes.items():
            if len(code) != len(text) or country not in self.band_at_left:
                continue
            k = _one_off(text, code)
            if k is None:
                continue
            p = float(probs[k][_COLUMN[code[k]]])
            if p >= MISREAD_BAND_P and (best is None or p > best[0]):
                best = (p, country)
        return best[1] if best else None

    @property
    def countries(self) -> list[str]:
        return sorted({s.country for s in self.syntaxes})

    def _boost(self, country: str) -> float:
        if country in self.preferred:
            return PREFERRED_BOOST * (len(self.preferred) - self.preferred.index(country)) / len(self.preferred)
        return 0.0

    def match(
        self,
        text: str,
        confs: Sequence[float] | None = None,
        probs: np.ndarray | None = None,
        max_corrections: int | None = None,
        hint: str | None = None,
        banded: bool | None = None,
    ) -> list[SyntaxMatch]:
        """Every syntax ``text`` fits, after corrections, best first.

        ``probs`` (one row of 36 probabilities per character, order ``ALNUM``) lets a correction pick
        the character the recognizer itself found second most likely; without it the classic
        confusion table decides. ``hint``: the country a printed code names; ``banded``: whether a
        blue band was seen at the text's left (None: unknown, as in a grey frame); the countries
        that fit the same characters the band's way win them (``_by_band``).
        """
        text = text.upper()
        n = len(text)
        if n == 0 or any(c not in ALNUM for c in text):
            return []
        if confs is None:
            confs = [1.0] * n
        limit = max_corrections if max_corrections is not None else max(1, n // 3)
        # Counted on what the OCR read, not on a corrected text: a word like TEXAS must not become
        # a plate by having its S "corrected" into the digit the format needs.
        letters = sum(ch in LETTERS for ch in text)
        digits = n - letters
        out: list[SyntaxMatch] = []
        for syn in self.by_len.get(n, []):
            if letters < syn.min_letters or digits < syn.min_digits:
                continue
            m = self._fit(syn, text, confs, probs, limit)
            if m is not None:
                if hint is not None and m.country == hint:
                    m = replace(m, score=m.score + HINT_BOOST)
                if m.country in self.ignored:
                    # A country whose plates never come: its format explains the characters only
                    # where nothing else does, and names no country. It stays a reading at all
                    # because a misread plate that fits only such a format (an Afghan KBL 444 PRV
                    # read KBLPREY at 16 px, a US vanity plate's letters) is what sends the reader
                    # for the closer look that reads it right.
                    m = replace(m, country="", score=m.score - IGNORED_COST)
                out.append(m)
        if banded is not None:
            out = self._by_band(out, banded)
        out.sort(key=lambda m: -m.score)
        return out

    def _by_band(self, matches: list[SyntaxMatch], banded: bool) -> list[SyntaxMatch]:
        """``matches`` of a text with a blue band seen at its left (``banded``) or looked for and
        not seen: a country whose plates are the other way gives way, for the same characters, to
        one whose plates are this way, unless it fits them better by ``BAND_MARGIN`` or more.
        Only the country changes, at the characters' own score: the band tells whose plate it is,
        not what it says. Its absence may be an older plate (a Turkish plate without its band
        must not become a Kazakh one with its A read as a 4), its presence a state's blue
        lettering (5 of the `us` dev photos)."""
        out = []
        for m in matches:
            if (m.country in self.band_at_left) != banded:
                rivals = [u for u in matches if u.text == m.text and (u.country in self.band_at_left) == banded
                          and u.score > m.score - BAND_MARGIN]
                if rivals:
                    u = max(rivals, key=lambda u: u.score)
                    m = replace(u, score=m.evidence_score + u.preference)
            out.append(m)
        return out

    def best(
        self, text: str, confs: Sequence[float] | None = None, probs: np.ndarray | None = None
    ) -> SyntaxMatch | None:
        matches = self.match(text, confs, probs)
        return matches[0] if matches else None

    def _fit(
        self, syn: Syntax, text: str, confs: Sequence[float], probs: np.ndarray | None, limit: int
    ) -> SyntaxMatch | None:
        chars: list[str] = []
        new_confs: list[float] = []
        preference = self._boost(syn.country)
        score = syn.prior + preference
        corrections = 0
        confusions = CONFUSIONS[syn.script]
        for i, (ch, allowed) in enumerate(zip(text, syn.positions, strict=True)):
            c = float(confs[i])
            if ch in allowed:
                chars.append(ch)
                new_confs.append(c)
                score += math.log(max(c, 1e-4))
                continue
            alt, p, classic = _correct(ch, allowed, probs[i] if probs is not None and i < len(probs) else None,
                                       confusions)
            if alt is None:
                return None
            corrections += 1
            if corrections > limit:
                return None
            chars.append(alt)
            if confusions.o_is_zero and ch == "O" and alt == "0":
                # O and 0 are one glyph on most plates, and plates print the digit far more often:
                # where the syntax wants a digit the recognizer's O says nothing, so the fix is free.
                # (The other way, a letter O read where the OCR saw 0, pays like any confusion:
                # otherwise every date would become a plate.)
                p = c
                score += math.log(max(c, 1e-4))
            elif classic:
                # A classic confusion is credited with UNSEEN_P where the recognizer was unsure of
                # what it read, and with less the surer it was: a Turkish 32 SLY 11 read exactly had
                # become a Kazakh 325LY11, the S at 0.99 made a 5 for the cost of a glyph the
                # recognizer could not tell, and a post's preference for Kazakhstan paid for it.
                # O and 0 are one glyph, whatever the recognizer's certainty (models/README.md).
                floor = UNSEEN_P if {ch, alt} == {"O", "0"} else UNSEEN_P * min(1.0, 2.0 * (1.0 - c))
                score += math.log(max(p, floor)) - CLASSIC_COST
            else:
                score += math.log(max(p, 1e-4)) - CORRECTION_COST
            new_confs.append(p)
        fixed = "".join(chars)
        if syn.regions and not syn.region_ok(fixed):
            snap = _snap_region(syn, fixed, new_confs, probs, confusions) if corrections < limit else None
            if snap is None:
                score -= UNLISTED_COST
            else:
                # The listed code, scored as its correction, and never below the unlisted code it
                # replaces: the list says that one is no plate.
                fixed, new_confs, delta = snap
                score += max(delta, -UNLISTED_COST)
                corrections += 1
        return SyntaxMatch(
            text=fixed,
            display=syn.display(fixed),
            country=syn.country,
            syntax=syn.name,
            score=score,
            corrections=corrections,
            confs=tuple(new_confs),
            generic=syn.generic,
            layout=syn.layout,
            variant=syn,
            preference=preference,
        )


def _snap_region(
    syn: Syntax, text: str, confs: list[float], probs: np.ndarray | None, confusions: Confusions
) -> tuple[str, list[float], float] | None:
    """``text`` with its unlisted region code replaced by the listed one a character away that the
    recognizer saw most of a trace of, its confidences, and what that does to the score; None
    where no listed code is one character off.

    A region list is a closed set the country issues (Afghanistan's provinces, Uzbekistan's 14
    region numbers), so an unlisted code is a misread: under motion smear the M of Samangan's SMG
    is read as H, and SHG is no province. Only one character of one code is changed, and only to a
    character the recognizer gave some probability (or, without probabilities, the script's
    confusion table names), as every other correction."""
    unlisted = [(a, b, allowed) for a, b, allowed in syn.region_spans() if text[a:b] not in allowed]
    if len(unlisted) != 1:
        return None  # two unlisted codes: a misread of more than one character
    a, b, allowed = unlisted[0]
    seen = text[a:b]
    best: tuple[float, int, str, float] | None = None  # (score change, position, character, its p)
    for code in _listed(allowed):
        if len(code) != len(seen):
            continue
        k = _one_off(seen, code)
        if k is None:
            continue
        i = a + k
        want, got = code[k], text[i]
        table = confusions.to_digit.get(got) if got in LETTERS else confusions.to_letter.get(got)
        classic = want in (table, confusions.lookalike.get(got))
        if probs is not None and i < len(probs):
            p = float(probs[i][_COLUMN[want]])
            if p < MIN_ALT_P:
                continue
        elif classic:
            p = UNSEEN_P
        else:
            continue
        cost = CLASSIC_COST if classic else CORRECTION_COST
        delta = math.log(max(p, UNSEEN_P if classic else 1e-4)) - cost - math.log(max(confs[i], 1e-4))
        if best is None or delta > best[0]:
            best = (delta, i, want, p)
    if best is None:
        return None
    delta, i, want, p = best
    return text[:i] + want + text[i + 1 :], [*confs[:i], p, *confs[i + 1 :]], delta


@lru_cache(maxsize=256)
def _listed(allowed: frozenset[str]) -> tuple[str, ...]:
    """A region list in order, so that a tie between two listed codes goes the same way in every
    process (a frozenset's order follows the string hash, which differs between processes)."""
    return tuple(sorted(allowed))


def _one_off(seen: str, code: str) -> int | None:
    """Where ``seen`` differs from ``code`` (of the same length), if at exactly one character."""
    diff = [i for i, (a, b) in enumerate(zip(seen, code, strict=True)) if a != b]
    return diff[0] if len(diff) == 1 else None


def _one_letter_off(seen: str, code: str, rows: np.ndarray) -> bool:
    k = _one_off(seen, code)
    return k is not None and float(rows[k][_COLUMN[code[k]]]) >= MIN_ALT_P


@lru_cache(maxsize=1024)
def _columns(allowed: frozenset[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """A position's allowed characters in order and their columns in a row of ``ALNUM``
    probabilities. Cached: the table has a few dozen distinct sets, and the dev photos' candidates
    asked for them 1,100 times a photo; sorting them afresh each time made the syntax step 3.6
    times as slow (with the count checks ``match`` now makes before fitting)."""
    chars = tuple(sorted(allowed))
    return chars, np.array([_COLUMN[c] for c in chars], np.intp)


def _correct(
    ch: str, allowed: frozenset[str], row: np.ndarray | None, confusions: Confusions = CONFUSIONS["latin"]
) -> tuple[str | None, float, bool]:
    """The character the syntax demands in place of ``ch``, how likely the OCR found it, and
    whether the swap is a classic confusion (the script's table's)."""
    if confusions.o_is_zero and ch == "O" and "0" in allowed:
        return "0", 1.0, True
    table = confusions.to_digit.get(ch) if ch in LETTERS else confusions.to_letter.get(ch)
    if table is not None and table not in allowed:
        table = None
    if table is None and ch in LETTERS:
        look = confusions.lookalike.get(ch)
        table = look if look in allowed else None
    if row is not None:
        chars, cols = _columns(allowed)
        vals = row[cols]
        k = int(vals.argmax())
        p = float(vals[k])
        alt = chars[k]
        if p >= MIN_ALT_P:
            return alt, p, alt == table
        if table is not None:
            return table, max(float(row[_COLUMN[table]]), MIN_ALT_P), True
        return None, 0.0, False
    if table is not None:
        return table, UNSEEN_P, True
    return None, 0.0, False


def table_countries() -> frozenset[str]:
    """Every country the shipped syntax table has a format for, whatever its script."""
    return frozenset(s.country for s in _load_entries(None)[0] if s.country)


@lru_cache(maxsize=4)
def _load_entries(
    path: str | None,
) -> tuple[tuple[Syntax, ...], tuple[tuple[str, str], ...], frozenset[str], frozenset[str]]:
    try:
        if path is None:
            raw = resources.files("edge.recognition").joinpath("plate_syntaxes.toml").read_text("utf-8")
            source = "plate_syntaxes.toml"
        else:
            raw = Path(path).read_text("utf-8")
            source = path
        data = tomllib.loads(raw)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(path or "plate_syntaxes.toml", [("", f"cannot load plate syntaxes: {err}")]) from err
    out: list[Syntax] = []
    problems: list[tuple[str, str]] = []
    for i, entry in enumerate(data.get("syntax", [])):
        try:
            out.extend(compile_syntax(entry))
        except (KeyError, ValueError, TypeError) as err:
            problems.append((f"syntax[{i}]", str(err)))
    codes: list[tuple[str, str]] = []
    for country, names in (data.get("codes") or {}).items():
        if not isinstance(names, list):
            problems.append((f"codes.{country}", "must be a list of printed codes"))
            continue
        codes.extend((str(n).upper(), str(country)) for n in names)
    at_right = data.get("codes_at_right", [])
    if not isinstance(at_right, list) or not all(isinstance(c, str) for c in at_right):
        problems.append(("codes_at_right", "must be a list of countries"))
        at_right = []
    elif unknown := sorted(set(at_right) - {country for _, country in codes}):
        problems.append(("codes_at_right", f"countries without a printed code: {', '.join(unknown)}"))
    banded = data.get("band_at_left", [])
    if not isinstance(banded, list) or not all(isinstance(c, str) for c in banded):
        problems.append(("band_at_left", "must be a list of countries"))
        banded = []
    elif unknown := sorted(set(banded) - {s.country for s in out}):
        problems.append(("band_at_left", f"countries without a plate syntax: {', '.join(unknown)}"))
    if problems:
        raise ConfigError(source, problems)
    return tuple(out), tuple(codes), frozenset(at_right), frozenset(banded)
