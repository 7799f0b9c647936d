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
    for _ in range(200):
        img, label = next(stream)
        assert img.shape[0] == 48
        countries |= {m.country for m in book.match(label, max_corrections=0)}
    assert {"UZ", "KZ", "RU", "TR", "DE"} <= countries
