"""ISO 6346 container codes and ADR hazard plates."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.recognition.containers import (
    check_digit,
    code_head,
    code_part,
    code_piece,
    code_shaped,
    find_container_codes,
    is_size_type,
    is_valid,
    parse_adr,
)
from edge.recognition.ocr import ALNUM

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


def test_a_category_letter_read_as_its_look_alike() -> None:
    # YLZJ's J read as I: the category's place takes only U, J or Z, so I is a J there, and the
    # check digit decides; elsewhere an I stays an I.
    assert [(c.code, c.corrections) for c in find_container_codes("YLZI5572672")] == [("YLZJ5572672", 1)]
    assert [c.code for c in find_container_codes("CSQV3054383")] == ["CSQU3054383"]
    assert find_container_codes("CSQI3054383") == []  # CSQJ 305438 does not give 3
    assert code_head("CSQI305438") == "CSQJ305438"  # its digit is looked for beside it


def test_of_overlapping_codes_only_the_surest_is_found() -> None:
    # The size and type code after a code: `WGU2821745L` corrected twice (2 to Z, L to 1) verifies
    # too, by the one chance in ten any window has; two codes cannot share characters.
    assert is_valid("WGUZ8217451")
    assert [c.code for c in find_container_codes("BWGU2821745L5G1")] == ["BWGU2821745"]
    assert [c.code for c in find_container_codes("CSQU3054383 MSKU9070323")] == ["CSQU3054383", "MSKU9070323"]


def _probs(text: str, unsure: dict[int, dict[str, float]] | None = None) -> np.ndarray:
    """Recognizer probabilities: sure of every character but those in ``unsure``."""
    rows = np.zeros((len(text), len(ALNUM)), np.float32)
    for i, ch in enumerate(text):
        for alt, p in (unsure or {}).get(i, {ch: 0.98}).items():
            rows[i, ALNUM.index(alt)] = p
    return rows


def test_one_misread_character_is_mended_where_the_recognizer_had_the_right_one_second() -> None:
    misread = "CSQU3054883"  # the serial's 3 read as 8
    assert find_container_codes(misread) == []
    found = find_container_codes(misread, probs=_probs(misread, {8: {"8": 0.6, "3": 0.35}}))
    assert [(c.code, c.corrections) for c in found] == [("CSQU3054383", 1)]
    # The check digit itself misread.
    found = find_container_codes("CSQU3054388", probs=_probs("CSQU3054388", {10: {"8": 0.7, "3": 0.2}}))
    assert [c.code for c in found] == ["CSQU3054383"]


def test_no_mending_on_a_second_choice_the_recognizer_barely_gave() -> None:
    misread = "CSQU3054883"
    assert find_container_codes(misread, probs=_probs(misread, {8: {"8": 0.98, "3": 0.01}})) == []


def test_no_mending_when_two_fixes_would_verify() -> None:
    misread = "CSQU3054883"
    # Another single change that also verifies: with two plausible fixes, either is a guess.
    other = next(
        (pos, d)
        for pos in range(4, 10)
        for d in "0123456789"
        if pos != 8 and d != misread[pos] and is_valid(misread[:pos] + d + misread[pos + 1 :])
    )
    unsure = {8: {"8": 0.6, "3": 0.35}, other[0]: {misread[other[0]]: 0.6, other[1]: 0.35}}
    assert find_container_codes(misread, probs=_probs(misread, unsure)) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("22G1", True), ("45R1", True), ("L5G1", True), ("42U1", True), ("22T6", True),
    ("AB12", False), ("2201", False), ("22G", False), ("22G1X", False),
])
def test_size_and_type_codes(text: str, expected: bool) -> None:
    assert is_size_type(text) is expected


def test_a_size_and_type_code_with_its_type_letter_misread() -> None:
    # G read as C, R as D: no type is so lettered, but beside a container's code that is what it is.
    assert not is_size_type("22C1") and is_size_type("22C1", misread=True)
    assert is_size_type("45D1", misread=True)
    assert not is_size_type("2201", misread=True) and not is_size_type("AB12", misread=True)


def test_adr_plate() -> None:
    adr = parse_adr("33", "1203")
    assert adr is not None and adr.text == "33/1203"
    assert parse_adr("X423", "1428") is not None
    assert parse_adr("33", "12O3") is not None  # O read for 0 in the UN number
    assert parse_adr("ABC", "1203") is None
    assert parse_adr("33", "99999") is None


def test_an_owner_code_and_serial_without_their_check_digit() -> None:
    assert code_head("CSQU 305438") == "CSQU305438"
    assert code_head("00DU131263") == "OODU131263"  # an owner code's O read as 0, twice
    assert code_head("CSQU3054383") is None  # ends with the digit: a whole code, or none
    assert code_head("CSQX305438") is None  # no category
    assert code_head("C5Q0305438") is None  # three corrections are a guess
    # Plates read after a line of words (dev photos): no serial has two letters in it, and a digit
    # in the category's place is no category.
    assert code_head("DFBRASLIA" + "JGZ3298") is None  # LIAJ G→6 Z→2: a Brazilian plate
    assert code_head("ACCESSTOINDEPENDENCE" + "1365847") is None  # NCE, 1 for I for J


@pytest.mark.parametrize(("text", "expected"), [
    ("FU5090926", True),  # a corner post read without its top two rows
    ("TKU4070430", True),
    ("PJJZ88890", True),  # a far code's serial run together, a digit short
    ("AUB187052", True),  # a serial's 3 read as B: one correction
    ("U1234567", False),  # a British trailer plate is a letter and seven digits
    ("FU509092", False),  # three characters cut off: too little left to tell
    ("FX50909", False),  # too short for any part
    ("F0B0B0926", False),  # two corrections however it is read
    ("WOL9738821", True),  # the category (a narrow J) lost between owner code and serial
    ("W0L9738821", True),  # ... and one more correction
    ("W0L97388Z1", False),  # ... two more
    ("SMG14419L", False),  # an Afghan plate: a letter where the serial's last digit would be
    ("HRT388671", False),  # another read with its L as 1, as a code without category and digit would be
    ("CSQU3054383", False),  # a whole code is no part of one
])
def test_a_code_with_characters_cut_off(text: str, expected: bool) -> None:
    assert code_part(text) is expected


@pytest.mark.parametrize(("text", "at"), [
    ("CSQU3054380", 0),  # its check digit fails: still a code's print
    ("CSQU 305438 3", 0),
    ("22G1CSQU3054380", 4),  # anywhere in the text
    ("C5QU3054380", None),  # a character out of its class
    ("CSQA3054380", None),  # no category
    ("ABC1234567", None),  # ten characters
    ("PROCHEM2818808231", None),  # a phone number on a truck: HEM2 is no owner code and category
])
def test_a_whole_code_shape_whether_or_not_it_verifies(text: str, at: int | None) -> None:
    assert code_shaped(text) == at


@pytest.mark.parametrize(("text", "expected"), [
    ("XWO", True),  # a corner post's top rows
    ("ZU12", True),  # the category in its place, then the serial
    ("4070430", True),  # serial and check digit
    ("XWOJ1327165", True),  # the whole code is a piece of itself
    ("65", False),  # too little to tell
    ("X12", False),  # two corrections wherever it is put
    ("ABX1", False),  # the fourth character of an owner code is its category
    ("P33M00MM", False),
])
def test_a_piece_of_a_code(text: str, expected: bool) -> None:
    assert code_piece(text) is expected
