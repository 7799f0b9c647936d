"""Plate text in the forms that post and HQ compare it in.

One place for the rules, so a watchlist at the post, a fuzzy search at HQ and the per-crossing vote
agree on when two reads are the same plate.
"""

from __future__ import annotations

_FOLD = str.maketrans("OIBSZ", "01852")
"""The classic OCR confusions, each pair folded onto its digit."""


def normalise_plate(text: str) -> str:
    """Upper case, letters and digits only: ``01 A 123-BC`` -> ``01A123BC``."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


def plate_key(text: str) -> str:
    """Normalised with O/0, I/1, B/8, S/5, Z/2 folded: one misread of that kind does not hide a plate."""
    return normalise_plate(text).translate(_FOLD)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute each cost 1)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def plate_distance(a: str, b: str) -> int:
    """Edit distance with the classic confusions costing nothing (HQ's fuzzy plate search)."""
    return edit_distance(a.translate(_FOLD), b.translate(_FOLD))
