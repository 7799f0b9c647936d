"""Voting across the frames of one crossing."""

from __future__ import annotations

from dataclasses import replace

from edge.plates import edit_distance
from edge.recognition.syntax import SyntaxBook
from edge.recognition.types import PlateRead
from edge.recognition.voting import PlateVoter


def _read(text: str, conf: float, seq: int, kind: str = "plate") -> PlateRead:
    return PlateRead(text=text, confidence=conf, box=(10, 10, 100, 30), display=text, country="UZ",
                     frame_seq=seq, kind=kind)


def test_edit_distance() -> None:
    assert edit_distance("01A123BC", "01A123BC") == 0
    assert edit_distance("01A123BC", "01A128BC") == 1
    assert edit_distance("01A123BC", "1A123BC") == 1


def test_one_misread_frame_is_outvoted() -> None:
    v = PlateVoter()
    for seq, text in enumerate(["01A123BC", "01A128BC", "01A123BC", "01A123BC", "O1A123BC"]):
        v.add(_read(text, 0.9, seq))
    best = v.best()
    assert best is not None
    read, conf, frames = best
    assert read.text == "01A123BC"
    assert frames == 5
    assert read.frame_seq in (0, 2, 3)
    assert 0.5 < conf <= 1.0
    assert len(v.reads()) == 5


def test_character_vote_can_build_a_text_no_frame_read() -> None:
    # Each frame has one different error; the per-character vote recovers the plate.
    v = PlateVoter(SyntaxBook.load())
    for seq, text in enumerate(["01A123BX", "01X123BC", "01A1X3BC"]):
        v.add(_read(text, 0.8, seq))
    best = v.best()
    assert best is not None
    read, _, frames = best
    assert read.text == "01A123BC"
    assert read.display == "01 A 123 BC" and read.syntax == "uz-private"
    assert frames == 3


def test_the_plate_seen_most_wins_over_a_stray_text() -> None:
    v = PlateVoter()
    v.add(_read("77ZZ999", 0.99, 0))
    for seq in range(1, 5):
        v.add(_read("01A123BC", 0.7, seq))
    best = v.best()
    assert best is not None and best[0].text == "01A123BC" and best[2] == 4


def test_a_word_seen_in_every_frame_is_the_plate_only_if_nothing_else_was_read() -> None:
    # A truck's livery is read in every frame of the crossing; its plate, in the few frames it is
    # near enough. Letters alone are a US personalised plate's format, at a low confidence.
    v = PlateVoter()
    for seq in range(30):
        v.add(_read("SCANIA", 0.3, seq))
    v.add(_read("01A123BC", 0.8, 30))
    v.add(_read("01A123BC", 0.9, 31))
    best = v.best()
    assert best is not None and best[0].text == "01A123BC" and best[2] == 2
    words = PlateVoter()
    for seq in range(3):
        words.add(_read("FZRULZ", 0.3, seq))
    best = words.best()
    assert best is not None and best[0].text == "FZRULZ" and best[2] == 3


def test_kinds_are_voted_apart_and_empty_voter_gives_none() -> None:
    v = PlateVoter()
    assert v.best() is None
    v.add(_read("CSQU3054383", 0.9, 0, kind="container"))
    assert v.best() is None
    c = v.best("container")
    assert c is not None and c[0].text == "CSQU3054383"


def test_more_agreeing_frames_raise_the_confidence() -> None:
    one = PlateVoter()
    one.add(_read("01A123BC", 0.7, 0))
    many = PlateVoter()
    for seq in range(4):
        many.add(_read("01A123BC", 0.7, seq))
    a, b = one.best(), many.best()
    assert a is not None and b is not None
    assert b[1] > a[1]


def test_each_track_of_a_kind_is_voted_on_by_itself() -> None:
    v = PlateVoter()
    for seq, (text, conf) in enumerate([("CSQU3054383", 0.9), ("MSKU1234565", 0.7), ("CSQU3054383", 0.8),
                                        ("CSQU3O54383", 0.5), ("MSKU1234565", 0.75)]):
        v.add(_read(text, conf, seq, kind="container"))
    v.add(_read("01A123BC", 0.9, 9))
    each = v.each("container")
    assert [(r.text, frames) for r, _, frames in each] == [("CSQU3054383", 3), ("MSKU1234565", 2)]
    assert v.each("adr") == []
    best = v.best("container")
    assert best is not None and best[0].text == "CSQU3054383"


def test_containers_come_in_the_order_they_passed_less_chance_misreads() -> None:
    v = PlateVoter()
    seen = [("MSKU1234565", 1.0), ("CSQU3054383", 2.0), ("CSQU3054383", 2.2), ("CSQU3054399", 2.4),
            ("CSQU3054383", 2.6), ("CSQU3054383", 2.8)]
    for seq, (code, t) in enumerate(seen):
        v.add(replace(_read(code, 0.8, seq, kind="container"), timestamp=t))
    assert [(r.text, frames) for r, _, frames in v.each("container")] == [("MSKU1234565", 1), ("CSQU3054383", 5)]


def test_a_frame_that_read_the_country_code_names_the_crossings_country() -> None:
    # A Polish truck approaching: its far frames read WA12345 surely but its band's PL too small,
    # so the format alone named it Danish; one near frame read the code.
    v = PlateVoter()
    for seq in range(4):
        v.add(replace(_read("WA12345", 0.99, seq), country="DK", display="WA 12345", syntax="dk"))
    v.add(replace(_read("WA12345", 0.95, 4), country="PL", syntax="pl-2", country_read=True))
    best = v.best()
    assert best is not None
    read, conf, frames = best
    assert (read.country, read.syntax, read.frame_seq, frames) == ("PL", "pl-2", 4, 5)
    assert conf >= 0.99  # the surest frame still says how sure the text is
    # Where no frame read a code, the surest frame's guess stands.
    v = PlateVoter()
    v.add(replace(_read("WA12345", 0.9, 0), country="NO"))
    v.add(replace(_read("WA12345", 0.99, 1), country="DK"))
    best = v.best()
    assert best is not None and best[0].country == "DK"


def test_a_voted_text_keeps_the_script_and_country_its_frames_were_read_in() -> None:
    # Frames of an Iranian truck, each with one character wrong: the voted text 12E34567 fits a
    # Turkish format too (12 E 34567), but the frames were read as an Iranian national plate.
    v = PlateVoter()
    for seq, text in enumerate(["12E34561", "12E34867", "72E34567"]):
        v.add(replace(_read(text, 0.8, seq), country="IR", syntax="ir-national"))
    best = v.best()
    assert best is not None
    read = best[0]
    assert (read.text, read.country, read.display, read.syntax) == ("12E34567", "IR", "12 E 345 67", "ir-national")
