"""The plate syntax table: formats per country, confusion fixes only where the syntax demands them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from edge.recognition.syntax import ALNUM, Syntax, SyntaxBook

BOOK = SyntaxBook.load()

EXAMPLES = [
    # read text, expected text, country, syntax
    ("01A123BC", "01A123BC", "UZ", "uz-private"),
    ("O1A123BC", "01A123BC", "UZ", "uz-private"),
    ("01A12EBC", "01A123BC", "UZ", "uz-private"),
    ("01123ABC", "01123ABC", "UZ", "uz-legal"),
    ("4O777ABC", "40777ABC", "UZ", "uz-legal"),
    ("123ABC02", "123ABC02", "KZ", "kz-private"),
    ("1234AB01", "1234AB01", "TJ", "tj-private"),
    ("AG1234MR", "AG1234MR", "TM", "tm-private"),
    ("A123BC77", "A123BC77", "RU", "ru-private"),
    ("A123BC777", "A123BC777", "RU", "ru-private"),
    ("34ABC123", "34ABC123", "TR", "tr-private"),
    ("ABC1234", "ABC1234", "BR", "br-old"),
    ("A8C1234", "ABC1234", "BR", "br-old"),
    ("ABC1D23", "ABC1D23", "BR", "br-mercosur"),
    ("4GLS168", "4GLS168", "US", "us-dlllddd"),
]


@pytest.mark.parametrize(("read", "text", "country", "syntax"), EXAMPLES)
def test_examples(read: str, text: str, country: str, syntax: str) -> None:
    m = BOOK.best(read)
    assert m is not None
    assert (m.text, m.country, m.syntax) == (text, country, syntax)


def test_display_follows_the_layout() -> None:
    m = BOOK.best("01A123BC")
    assert m is not None and m.display == "01 A 123 BC"
    m = BOOK.best("01123ABC")
    assert m is not None and m.display == "01 123 ABC"


def test_preferred_country_breaks_a_tie() -> None:
    # Kyrgyz and Uzbek legal-entity plates share the layout; the post's config decides.
    assert BOOK.best("01234XYZ") is not None
    kg = SyntaxBook.load(preferred=["KG"]).best("01234XYZ")
    assert kg is not None and kg.country == "KG"


def test_words_and_timestamps_are_not_plates() -> None:
    for word in ("TEXAS", "RESIDENT", "PRIVATE", "DOMINION"):
        assert all(m.generic is False for m in BOOK.match(word)) or not BOOK.match(word), word
        assert BOOK.best(word) is None or BOOK.best(word).corrections > 0  # type: ignore[union-attr]


def test_russian_plates_take_only_cyrillic_lookalike_letters() -> None:
    assert all(m.syntax != "ru-private" for m in BOOK.match("A123BF77", max_corrections=0))


def test_probabilities_choose_the_correction() -> None:
    # "01A1Z3BC" read: Z at a digit position; the recognizer's second choice there was 7, not 2.
    probs = np.full((8, len(ALNUM)), 0.001, np.float32)
    for i, ch in enumerate("01A1Z3BC"):
        probs[i, ALNUM.index(ch)] = 0.9
    probs[4, ALNUM.index("7")] = 0.08
    m = SyntaxBook.load(preferred=["UZ"]).best("01A1Z3BC", probs=probs)
    assert m is not None and m.text == "01A173BC"


syntax_strategy = st.sampled_from(BOOK.syntaxes)


@settings(max_examples=300, deadline=None)
@given(syntax_strategy, st.data())
def test_correction_never_changes_an_allowed_character(syntax: Syntax, data: st.DataObject) -> None:
    n = len(syntax)
    text = data.draw(st.text(alphabet=ALNUM, min_size=n, max_size=n))
    for m in BOOK.match(text, max_corrections=n):
        fitted = m.variant
        assert fitted is not None and all(c in p for c, p in zip(m.text, fitted.positions, strict=True))
        for i, (before, after) in enumerate(zip(text, m.text, strict=True)):
            if before in fitted.positions[i]:
                assert before == after, (text, m)


@settings(max_examples=300, deadline=None)
@given(syntax_strategy, st.data())
def test_a_plate_that_fits_its_syntax_matches_it_unchanged(syntax: Syntax, data: st.DataObject) -> None:
    text = "".join(data.draw(st.sampled_from(sorted(p))) for p in syntax.positions)
    assume(sum(c.isalpha() for c in text) >= syntax.min_letters)
    assume(sum(c.isdigit() for c in text) >= syntax.min_digits)
    matches = BOOK.match(text)
    assert any(m.variant == syntax and m.corrections == 0 and m.text == text for m in matches)
