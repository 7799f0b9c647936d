"""Afghan plates as the synthetic camera draws them (two lines, Persian over Latin), and the Afghan
trucks of the simulated traffic."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from drivers.camera.afghan import CLASSES, PROVINCES, SIZE_MM, draw_afghan_plate
from drivers.camera.iranian import atlas_glyphs
from drivers.camera.synthetic import SceneRenderer, plate_mm, render_plate
from drivers.sim.traffic import AFGHAN_SHARE, IRAN_SHARE, Traffic, make_afghan_plate
from edge.recognition.syntax import SyntaxBook


def _ink_rows(img: np.ndarray) -> np.ndarray:
    """Share of dark pixels per row, inside the plate's border."""
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    w = g.shape[1]
    return (g[:, int(w * 0.15) : int(w * 0.85)] < 90).mean(axis=1)


def test_a_plate_is_390_by_160_mm_with_a_persian_line_over_a_latin_one() -> None:
    img = render_plate("KBL 12345 PRV", "AF", 96)
    h, w = img.shape[:2]
    assert h == 96 and abs(w / h - SIZE_MM[0] / SIZE_MM[1]) < 0.02
    assert plate_mm("AF") == SIZE_MM and plate_mm("UZ") == (520, 112)
    rows = _ink_rows(img)
    top, bottom = rows[int(h * 0.08) : int(h * 0.42)], rows[int(h * 0.55) : int(h * 0.9)]
    assert top.max() > 0.15 and bottom.max() > 0.15  # two lines of ink...
    assert rows[int(h * 0.44) : int(h * 0.54)].min() < 0.05  # ...with an empty row between them
    # The Latin line is the caller's: the Afghan module leaves its box empty.
    bare, (_, ly, _, lh) = draw_afghan_plate("KBL 12345 PRV", 96)
    assert bare.shape == img.shape
    assert _ink_rows(bare)[int(ly) : int(ly + lh)].max() < 0.05 < _ink_rows(bare)[: int(h * 0.4)].max()


def test_buses_and_taxis_are_yellow_lorries_and_cars_white() -> None:
    def ground(display: str) -> np.ndarray:
        img = render_plate(display, "AF", 80)
        return np.asarray(np.median(img[int(80 * 0.45), int(img.shape[1] * 0.3) : int(img.shape[1] * 0.7)], axis=0))

    for display in ("BLK 777 B", "KBL 55 T"):
        b, g, r = ground(display)
        assert r > 200 and g > 150 and b < 80, display
    for display in ("HRT 4521 L", "KBL 12345 PRV"):
        assert ground(display).min() > 200, display


@pytest.mark.parametrize("display", ["XYZ 123 L", "KBL 123 Q", "KBL 12A45 L", "KBL 123", "KBL123L"])
def test_a_plate_the_camera_cannot_draw_is_refused_naming_why(display: str) -> None:
    with pytest.raises(ValueError, match="not an Afghan plate this camera draws"):
        render_plate(display, "AF", 60)


def test_every_province_and_class_letter_is_in_the_glyph_atlas() -> None:
    for text in [*PROVINCES.values(), *CLASSES.values()]:
        mask = atlas_glyphs(text)
        assert mask.ndim == 2 and mask.shape[1] > 0 and mask.max() > 200, text


def test_afghan_trucks_come_at_their_share_with_plates_the_syntax_table_reads() -> None:
    book = SyntaxBook.load()
    traffic = Traffic(seed=4, epoch=0.0)
    vehicles = [traffic.vehicle(i) for i in range(800)]
    afghan = [v for v in vehicles if v.country == "AF"]
    # Drawn where no European and no Iranian truck is.
    assert abs(len(afghan) / len(vehicles) - AFGHAN_SHARE * 0.85 * (1 - IRAN_SHARE)) < 0.03
    assert sum(v.plate.endswith("L") for v in afghan) > len(afghan) / 2  # lorries mostly
    for v in afghan:
        m = book.best(v.plate)
        assert m is not None and (m.country, m.display, m.syntax) == ("AF", v.display, v.syntax), v.display
    rng = random.Random(0)
    assert all(make_afghan_plate(rng)[1].split()[0] in PROVINCES for _ in range(200))


def test_the_scene_draws_an_afghan_plate_to_scale() -> None:
    # Seed 7's vehicles 0 and 1: a Kazakh or Uzbek plate of 520 x 112 mm, then an Afghan lorry's.
    traffic = Traffic(seed=7, epoch=1000.0, period_s=12.0)
    renderer = SceneRenderer(traffic, 1280, 720, seed=7)
    boxes = {}
    for i in (0, 1):
        v = traffic.vehicle(i)
        _, truth = renderer.render((v.loaded + v.depart) / 2)
        boxes[v.country] = truth[0]["box"]
    assert "AF" in boxes and len(boxes) == 2
    (_, _, aw, ah), (_, _, ow, oh) = boxes["AF"], next(b for c, b in boxes.items() if c != "AF")
    assert 1.9 < aw / ah < 3.0 and ow / oh > 3.5
    assert abs(aw / ow - SIZE_MM[0] / 520) < 0.12  # the same truck's plate, narrower
