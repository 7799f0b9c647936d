"""One plate per crossing: group the frame-by-frame reads of a crossing and vote per character.

A single frame misreads a character now and then (motion blur, a glint, a bolt taken for a 1); the
same plate seen in ten frames almost never has the same character wrong in most of them. Reads that
differ by a character or two are the same plate; among those, each position goes to the character
with the largest summed confidence.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from edge.plates import edit_distance
from edge.recognition.syntax import SyntaxBook, is_word
from edge.recognition.types import PlateRead

log = logging.getLogger(__name__)


@dataclass
class _Track:
    kind: str
    reads: list[PlateRead] = field(default_factory=list)

    @property
    def weight(self) -> float:
        return sum(r.confidence for r in self.reads)

    def representative(self) -> str:
        counts: dict[str, float] = defaultdict(float)
        for r in self.reads:
            counts[r.text] += r.confidence
        return max(counts.items(), key=lambda kv: kv[1])[0]

    def near(self, text: str) -> bool:
        rep = self.representative()
        return edit_distance(rep, text) <= max(1, min(len(rep), len(text)) // 3)


class PlateVoter:
    """Collects the reads of one crossing; ``best()`` gives the crossing's plate."""

    def __init__(self, book: SyntaxBook | None = None, min_confidence: float = 0.0) -> None:
        self._tracks: list[_Track] = []
        self._reads: list[PlateRead] = []
        self._book = book
        self.min_confidence = min_confidence

    def add(self, read: PlateRead) -> None:
        if not read.text or read.confidence < self.min_confidence:
            return
        self._reads.append(read)
        best: _Track | None = None
        for t in self._tracks:
            if t.kind == read.kind and t.near(read.text):
                if best is None or t.weight > best.weight:
                    best = t
        if best is None:
            best = _Track(read.kind)
            self._tracks.append(best)
        best.reads.append(read)

    def extend(self, reads: list[PlateRead]) -> None:
        for r in reads:
            self.add(r)

    def reads(self) -> list[PlateRead]:
        return list(self._reads)

    def __len__(self) -> int:
        return len(self._reads)

    def best(self, kind: str = "plate") -> tuple[PlateRead, float, int] | None:
        """(best read, fused confidence, frames that support it), or None when nothing was read.

        The track with the most summed confidence is the crossing's plate (a plate seen in many
        frames beats a text glimpsed once). The returned read is the most confident frame whose
        text equals the vote, so its frame, camera and box are real; when no single frame read the
        voted text, the closest frame is returned with the voted text put in. A frame that read the
        plate's country code comes before those that only guessed the country from the format: the
        truck's far frames show the code too small to read, and one of them, however sure of the
        text, would name the country of whichever format fits it.
        """
        tracks = [t for t in self._tracks if t.kind == kind]
        if not tracks:
            return None
        # A word (letters alone: a livery, a dealer's frame) is a plate only where the whole
        # crossing read nothing else, as within one frame. Seen in every frame at a low
        # confidence, it would otherwise outweigh a plate read well in a few.
        if kind == "plate":
            tracks = [t for t in tracks if not all(is_word(r.text) for r in t.reads)] or tracks
        return self._fused(max(tracks, key=lambda t: (t.weight, len(t.reads))))

    def each(self, kind: str) -> list[tuple[PlateRead, float, int]]:
        """Every track of ``kind`` voted on by itself, the most read first: a truck carries two
        containers, or orange plates with different numbers, and each is reported. Container codes
        are told apart by :func:`vote_codes`, in the order the crossing showed them."""
        if kind == "container":
            return vote_codes(r for r in self._reads if r.kind == "container")
        tracks = sorted((t for t in self._tracks if t.kind == kind), key=lambda t: (-t.weight, -len(t.reads)))
        return [self._fused(t) for t in tracks]

    def _fused(self, track: _Track) -> tuple[PlateRead, float, int]:
        text, pos_support = _vote(track.reads)
        agreeing = [r for r in track.reads if r.text == text]
        if agreeing:
            base = max(agreeing, key=lambda r: (r.country_read, r.confidence))
        else:
            base = min(track.reads, key=lambda r: (edit_distance(r.text, text), -r.confidence))
            base = self._relabel(base, text)
        conf_agree = max((r.confidence for r in agreeing), default=base.confidence)
        fused = min(pos_support) if pos_support else 0.0
        # Many frames that agree make a read surer than any one of them; one frame is only as good
        # as its own confidence.
        miss = 1.0
        for r in agreeing:
            miss *= 1.0 - r.confidence
        fused = round(max(0.0, min(1.0, fused * max(conf_agree, 1.0 - miss))), 4)
        return base, fused, len(track.reads)

    def _relabel(self, read: PlateRead, text: str) -> PlateRead:
        display, country, syntax = text, read.country, read.syntax
        book = self._book if self._book is not None else SyntaxBook.load(script=None)
        # The read's own country first: the voted text may fit another country's format too.
        matches = [m for m in book.match(text) if m.text == text]
        m = next((m for m in matches if m.country == read.country), matches[0] if matches else None)
        if m is not None:
            display, country, syntax = m.display, m.country or None, m.syntax
        return replace(read, text=text, display=display, country=country, syntax=syntax)


def vote_codes(reads: Iterable[PlateRead]) -> list[tuple[PlateRead, float, int]]:
    """Each container code of a crossing once: (its most confident read, confidence, frames).

    A code's check digit catches almost every misread, but a code with characters mended to
    verify does so by chance now and then (one wrong code in about 400 reads in ``bench.containers``),
    and over a crossing's many frames such a code would reach HQ as a container that never passed.
    Voting per character, as for plates, cannot help: two codes a character or two apart may be two
    containers (serials run on, and a chassis often carries two of one owner), and a vote would
    merge them. What tells them apart is when they were seen: two containers are seen in the same
    frames, or one after the other, while a misread comes in the middle of the reads of its code.
    So a code is taken for another's misread where it differs from it in at most two characters,
    was read in fewer frames, never in a frame that also read the other, and only by cameras that
    were reading the other at the time (between their first and last reads of it). Its frames
    count for the code it misread and lower that code's confidence, by the share of the
    crossing's confidence that they hold.
    """
    by_code: dict[str, list[PlateRead]] = defaultdict(list)
    for r in reads:
        by_code[r.text].append(r)
    frames = {code: {(r.camera, r.frame_seq) for r in rs} for code, rs in by_code.items()}
    weight = {code: sum(r.confidence for r in rs) for code, rs in by_code.items()}

    def while_read(mine: list[PlateRead], theirs: list[PlateRead]) -> bool:
        for camera in {r.camera for r in mine}:
            seen = [r.timestamp for r in theirs if r.camera == camera]
            if not seen or not all(min(seen) <= r.timestamp <= max(seen) for r in mine if r.camera == camera):
                return False
        return True

    def misread_of(code: str, other: str) -> bool:
        return (
            len(code) == len(other)
            and sum(a != b for a, b in zip(code, other, strict=True)) <= 2
            and len(frames[code]) < len(frames[other])
            and not frames[code] & frames[other]
            and while_read(by_code[code], by_code[other])
        )

    kept: list[str] = []
    absorbed: dict[str, list[str]] = defaultdict(list)
    for code in sorted(by_code, key=lambda c: (-len(frames[c]), -weight[c])):
        host = next((k for k in kept if misread_of(code, k)), None)
        if host is None:
            kept.append(code)
        else:
            absorbed[host].append(code)
            log.info("container code %s (%d frames) taken for a misread of %s (%d frames)",
                     code, len(frames[code]), host, len(frames[host]))
    out: list[tuple[PlateRead, float, int]] = []
    for code in sorted(kept, key=lambda c: min((r.timestamp, r.frame_seq) for r in by_code[c])):
        best = max(by_code[code], key=lambda r: r.confidence)
        share = weight[code] / max(weight[code] + sum(weight[c] for c in absorbed[code]), 1e-9)
        seen = len(frames[code]) + sum(len(frames[c]) for c in absorbed[code])
        out.append((best, round(best.confidence * share, 4), seen))
    return out


def _vote(reads: list[PlateRead]) -> tuple[str, list[float]]:
    """Character-wise weighted vote among the reads of the winning length."""
    length_w: dict[int, float] = defaultdict(float)
    for r in reads:
        length_w[len(r.text)] += r.confidence
    length = max(length_w.items(), key=lambda kv: kv[1])[0]
    same = [r for r in reads if len(r.text) == length]
    chars: list[str] = []
    support: list[float] = []
    for i in range(length):
        w: dict[str, float] = defaultdict(float)
        for r in same:
            w[r.text[i]] += max(r.confidence, 1e-3)
        ch, best_w = max(w.items(), key=lambda kv: kv[1])
        chars.append(ch)
        support.append(best_w / sum(w.values()))
    return "".join(chars), support
