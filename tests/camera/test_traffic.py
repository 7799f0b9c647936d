"""The simulated traffic: the region's trucks and, among them, European ones whose plates are valid
plates of their country."""

from __future__ import annotations

from drivers.sim.traffic import FOREIGN_SHARE, Traffic, make_foreign_plate, make_plate
from edge.recognition.syntax import SyntaxBook


def test_european_trucks_come_at_their_share_with_valid_plates() -> None:
    book = SyntaxBook.load()
    traffic = Traffic(seed=4, epoch=0.0)
    vehicles = [traffic.vehicle(i) for i in range(400)]
    foreign = [v for v in vehicles if v.country in {"DE", "PL", "LT"}]
    assert {v.country for v in foreign} == {"DE", "PL", "LT"}
    assert abs(len(foreign) / len(vehicles) - FOREIGN_SHARE) < 0.06
    for v in foreign:
        assert v.plate == v.display.replace(" ", "")
        # The format the reader knows fits the plate as drawn (and its groups, but for a German
        # plate's, where the district's end is seen only on the plate: KA F 3784 or K AF 3784).
        fits = [m for m in book.match(v.plate) if m.country == v.country]
        assert fits, v.display
        assert v.country == "DE" or fits[0].display == v.display, v.display


def test_a_european_truck_replaces_a_plate_and_nothing_else() -> None:
    import random

    # The region's vehicles of a seed stay as they were: the European draw has a stream of its own.
    traffic = Traffic(seed=11, epoch=0.0)
    for i in range(40):
        v = traffic.vehicle(i)
        rng = random.Random(f"11:{i}")
        make_plate(rng)
        assert v.gross_kg == round(rng.uniform(8000, 42000) / 10) * 10
    # German plates never run past the 8 characters the format allows.
    rng = random.Random(0)
    plates = [make_foreign_plate(rng) for _ in range(500)]
    assert all(len(text) <= 8 for text, *_ in plates)
