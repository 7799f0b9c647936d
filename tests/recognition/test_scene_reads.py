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
FOREIGN = {"DE", "PL", "LT", "IR", "AF"}  # drivers.sim.traffic: make_foreign_plate, make_iranian_plate...


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return PlateReader(RecognitionSection.model_validate({}))


# Seeds 1-3 and 7 hold foreign trucks among the first 8: a Polish (seed 1), a Lithuanian and a Polish
# (seed 2), an Iranian one with its plate in Persian and a German one, seals and all (seed 3), two
# Afghan lorries with their two-line plates, Persian over Latin (seed 7).
@pytest.mark.parametrize("seed", [1, 2, 3, 7])
def test_parked_simulated_plates_read_exactly(reader: PlateReader, seed: int) -> None:
    traffic = Traffic(seed, 1000.0, period_s=12.0)
    renderer = SceneRenderer(traffic, 1280, 720, seed=seed)
    wrong = []
    for i in range(8):
        vehicle = traffic.vehicle(i)
        image, _truth = renderer.render(vehicle.loaded + 1.0)
        reads = [r for r in reader.read(image, roi=ROI) if r.kind == "plate"]
        if [r.text for r in reads[:1]] != [vehicle.plate]:
            wrong.append((vehicle.display, vehicle.country, [r.text for r in reads]))
        elif vehicle.country in FOREIGN and reads[0].country != vehicle.country:
            # A European plate's band names its country; an Iranian plate's script does.
            wrong.append((vehicle.display, vehicle.country, reads[0].country))
    assert wrong == []
