"""ISO 6346 container codes and ADR hazard plates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.recognition.containers import check_digit, find_container_codes, is_valid, parse_adr

# Published examples: the BIC's own CSQU 305438 3 and BICU 123456 5, and codes quoted as valid in
# carriers' and standards' documentation.
PUBLISHED = ["CSQU3054383", "BICU1234565", "MSKU9070323", "TOLU4734787", "HLXU8142385"]


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_check_digits(code: str) -> None:
    assert check_digit(code[:10]) == int(code[10])
    assert is_valid(code)
    assert is_valid(f"{code[:4]} {code[4:10]} {code[10]}")


def test_wrong_check_digit_or_category_is_invalid() -> None:
    assert not is_valid("CSQU3054384")
    assert not is_valid("CSQX3054383")
    assert not is_valid("CSQU305438")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3),
       st.sampled_from("UJZ"), st.text(alphabet="0123456789", min_size=6, max_size=6))
def test_computed_check_digit_validates(owner: str, cat: str, serial: str) -> None:
    code = owner + cat + serial
    assert is_valid(code + str(check_digit(code)))


def test_codes_found_in_ocr_text_with_confusions_fixed() -> None:
    found = find_container_codes("CSQU 3O54383 22G1")
    assert [c.code for c in found] == ["CSQU3054383"]
    assert found[0].corrections == 1
    assert find_container_codes("CSQU3054384") == []
    assert [c.code for c in find_container_codes("xx MSKU9070323 yy")] == ["MSKU9070323"]


def test_adr_plate() -> None:
    adr = parse_adr("33", "1203")
    assert adr is not None and adr.text == "33/1203"
    assert parse_adr("X423", "1428") is not None
    assert parse_adr("33", "12O3") is not None  # O read for 0 in the UN number
    assert parse_adr("ABC", "1203") is None
    assert parse_adr("33", "99999") is None
