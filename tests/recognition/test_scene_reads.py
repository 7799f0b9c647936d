"""The demo's own trucks: every simulated plate, parked on the scale, is read exactly.

A regression net for whole-pipeline mistakes that single-plate tests miss, such as the flag beside a
Kyrgyz plate read as "R" and "BR" then cut off as a Brazilian country code.
"""

from __future__ import annotations

import pytest

from drivers.camera.synthetic import SceneRenderer
from drivers.sim.traffic import Traffic
from edge.config import RecognitionSection
from edge.recognition.reader import PlateReader

ROI = (128, 180, 1024, 540)  # the demo's region of interest on a 1280x720 frame


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return PlateReader(RecognitionSection.model_validate({}))


@pytest.mark.parametrize("seed", [1, 2])
def test_parked_simulated_plates_read_exactly(reader: PlateReader, seed: int) -> None:
    traffic = Traffic(seed, 1000.0, period_s=12.0)
    renderer = SceneRenderer(traffic, 1280, 720, seed=seed)
    wrong = []
    for i in range(8):
        vehicle = traffic.vehicle(i)
        image, _truth = renderer.render(vehicle.loaded + 1.0)
        texts = [r.text for r in reader.read(image, roi=ROI) if r.kind == "plate"]
        if texts[:1] != [vehicle.plate]:
            wrong.append((vehicle.display, vehicle.country, texts))
    assert wrong == []
