"""The synthetic plate lines the recognizer is trained on: their labels are registrations the
syntax table itself accepts, and their images are what the reader feeds the recognizer."""

from __future__ import annotations

import random
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from edge.recognition.syntax import SyntaxBook

from .conftest import load_model_tool

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf")


@pytest.fixture(scope="module")
def synth() -> ModuleType:
    return load_model_tool("synth_plates")


def test_every_format_gives_registrations_the_table_accepts(synth: ModuleType) -> None:
    book = SyntaxBook.load()
    rng = random.Random(0)
    for syntax in book.syntaxes:
        for _ in range(5):
            text = synth.sample_text(syntax, rng)
            assert syntax.region_ok(text), (syntax.name, text)
            matches = book.match(text, max_corrections=0)
            assert any(m.syntax == syntax.name and m.text == text for m in matches), (syntax.name, text)


def test_region_codes_come_from_their_lists(synth: ModuleType) -> None:
    ru = next(s for s in SyntaxBook.load().syntaxes if s.name == "ru-private" and len(s) == 8)
    rng = random.Random(1)
    regions = dict(ru.regions)
    (gi, allowed), = regions.items()
    start = sum(ru.groups[:gi])
    seen = {synth.sample_text(ru, rng)[start : start + ru.groups[gi]] for _ in range(30)}
    assert seen <= allowed and len(seen) > 5


def test_a_line_is_rendered_as_the_reader_crops_it(synth: ModuleType) -> None:
    pytest.importorskip("PIL")
    if not FONT.is_file():
        pytest.skip(f"no font to render with at {FONT}")
    short = synth.render_line("AB 12", FONT, random.Random(2))
    long = synth.render_line("01 A 123 BC", FONT, random.Random(2))
    assert short.shape[0] == long.shape[0] == 48 and short.shape[2] == 3 and short.dtype == np.uint8
    assert long.shape[1] > short.shape[1]
    assert long.min() < 80 < 150 < long.max()  # dark ink on a light ground


def test_the_stream_draws_the_posts_countries(synth: ModuleType) -> None:
    pytest.importorskip("PIL")
    if not FONT.is_file():
        pytest.skip(f"no font to render with at {FONT}")
    stream = synth.samples([FONT], random.Random(3))
    book = SyntaxBook.load()
    countries = set()
    drawn = []
    for _ in range(300):
        img, label = next(stream)
        assert img.shape[0] == 48
        matches = book.match(label, max_corrections=0)
        countries |= {m.country for m in matches}
        drawn.append(matches[0].country if matches else "")
    assert {"UZ", "KZ", "KG", "TJ", "TM", "AF", "RU", "TR", "DE", "LT"} <= countries
    # Every country alike, not as many times as its formats have lengths (Afghanistan 27 of 218,
    # Kazakhstan 2, when every variant was drawn alike).
    assert drawn.count("AF") < 0.08 * len(drawn)


def test_worn_lines_keep_their_label_readable(synth: ModuleType) -> None:
    """A worn line adds a border, bolts, band lettering, separators and emblems around the text: none
    of it may become a character the label lacks. The shipped recognizer, which never saw these
    lines, reads most of them exactly; a layout that drew over the text would read wrong."""
    pytest.importorskip("PIL")
    if not FONT.is_file():
        pytest.skip(f"no font to render with at {FONT}")
    from edge.recognition.reader import PlateReader

    reader = PlateReader()
    book = SyntaxBook.load()
    rng = random.Random(4)
    syntaxes = [s for s in book.syntaxes if s.country in ("UZ", "KZ", "RU", "TR", "DE", "PL")]
    lines, labels = [], []
    for _ in range(24):
        syntax = rng.choice(syntaxes)
        text = synth.sample_text(syntax, rng)
        img = synth.render_line(syntax.display(text), FONT, rng, worn=True)
        assert img.shape[0] == 48 and img.shape[2] == 3 and img.dtype == np.uint8
        lines.append(img)
        labels.append(text)
    reads = reader.recognizer.recognize(lines)
    exact = sum(r.text == t for r, t in zip(reads, labels, strict=True))
    assert exact >= 16, [(r.text, t) for r, t in zip(reads, labels, strict=True)]


def test_worn_share_of_the_stream(synth: ModuleType) -> None:
    pytest.importorskip("PIL")
    if not FONT.is_file():
        pytest.skip(f"no font to render with at {FONT}")
    clean = [img for img, _ in (next(s) for s in [synth.samples([FONT], random.Random(5))] * 6)]
    worn = [img for img, _ in (next(s) for s in [synth.samples([FONT], random.Random(5), worn=1.0)] * 6)]
    # Clean lines are dark ink on a light ground edge to edge; worn ones are cut from a plate whose
    # border, bolts or band show, so they differ from the clean line of the same registration.
    assert all(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(clean, worn, strict=True))


def test_without_marks_no_emblem_stands_between_groups(synth: ModuleType) -> None:
    rng = random.Random(6)
    with_marks = {synth.gap_kind(rng, marks=True) for _ in range(200)}
    without = {synth.gap_kind(rng, marks=False) for _ in range(200)}
    assert "emblem" in with_marks and with_marks >= {"space", "dash"}
    assert "emblem" not in without and without >= {"space", "dash", "dot"}
    pytest.importorskip("PIL")
    if not FONT.is_file():
        pytest.skip(f"no font to render with at {FONT}")
    img = synth.render_line("01 A 123 BC", FONT, random.Random(7), worn=True, marks=False)
    assert img.shape[0] == 48 and img.dtype == np.uint8
