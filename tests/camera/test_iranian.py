"""Iranian national plates as the synthetic camera draws them, and the Iranian trucks of the
simulated traffic."""

from __future__ import annotations

import random

import numpy as np
import pytest

from drivers.camera.iranian import DIGITS_FA, SERIES, atlas_glyphs, draw_iranian_plate, is_national, persian
from drivers.camera.synthetic import render_plate
from drivers.sim.traffic import IRAN_SHARE, Traffic, make_iranian_plate
from edge.recognition.syntax import SyntaxBook


def test_a_plates_latin_codes_stand_for_its_persian_glyphs() -> None:
    assert persian("12B34567") == ["۱", "۲", "ب", "۳", "۴", "۵", "۶", "۷"]
    assert persian("90E10876")[2] == "ع"
    # One code per series letter, and every glyph the plates need is in the camera's atlas.
    assert len(set(SERIES.values())) == len(SERIES)
    for glyph in [*DIGITS_FA, *SERIES.values(), "ایران"]:
        mask = atlas_glyphs(glyph)
        assert mask.ndim == 2 and mask.shape[1] > 0 and mask.max() > 200, glyph


@pytest.mark.parametrize("text", ["12B3456", "12B345678", "1BB34567", "12I34567", "12b34567", "IR12345"])
def test_only_national_plates_are_drawn_in_persian(text: str) -> None:
    assert not is_national(text)
    with pytest.raises(ValueError, match="not an Iranian national plate"):
        draw_iranian_plate(text)


def test_a_trucks_plate_is_yellow_and_a_private_cars_white_both_with_the_blue_band() -> None:
    truck, car = draw_iranian_plate("45E67823", 60), draw_iranian_plate("12B34567", 60)
    assert truck.shape == car.shape == (60, round(60 * 520 / 110), 3)
    def ground(plate: np.ndarray) -> np.ndarray:  # the median colour of the light pixels between the characters
        px = plate[20:40, 120:200].reshape(-1, 3).astype(int)
        return np.median(px[px.max(axis=1) > 150], axis=0)

    b, g, r = ground(truck)
    assert r > 200 and g > 150 and b < 80  # yellow
    assert ground(car).min() > 200  # white
    band = car[5:55, 4:18].reshape(-1, 3).astype(int)
    assert (band[:, 0] > band[:, 2] + 60).mean() > 0.5  # blue, at the left, under the flag and I.R. IRAN
    # Dark ink where the characters are: a quarter or more of the text rows.
    assert (car[15:45, 40:220].mean(axis=2) < 100).mean() > 0.2


def test_the_synthetic_camera_draws_an_iranian_plate_in_persian_and_a_transit_plate_in_latin() -> None:
    national = render_plate("12 E 345 67", "IR", 48)
    assert np.array_equal(national, draw_iranian_plate("12E34567", 48))
    transit = render_plate("IR 12345", "IR", 48)
    assert transit.shape[0] == 48
    assert not np.array_equal(transit, national)


def test_variations_change_the_drawing_but_not_its_size() -> None:
    a = draw_iranian_plate("12B34567", 56, rng=random.Random(1))
    b = draw_iranian_plate("12B34567", 56, rng=random.Random(2))
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_iranian_trucks_come_at_their_share_with_valid_national_plates() -> None:
    book = SyntaxBook.load(script="persian")
    traffic = Traffic(seed=4, epoch=0.0)
    vehicles = [traffic.vehicle(i) for i in range(600)]
    iranian = [v for v in vehicles if v.country == "IR"]
    assert abs(len(iranian) / len(vehicles) - IRAN_SHARE * 0.85) < 0.04  # drawn where no European truck is
    assert sum(v.plate[2] == "E" for v in iranian) > len(iranian) / 2  # trucks: the public-transport series
    for v in iranian:
        m = book.best(v.plate)
        assert m is not None and m.country == "IR" and m.display == v.display, v.display
    rng = random.Random(0)
    assert all(is_national(make_iranian_plate(rng)[0]) for _ in range(200))
