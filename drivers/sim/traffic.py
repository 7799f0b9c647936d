"""A deterministic schedule of vehicles crossing one lane.

The synthetic camera and the scale simulator may run in different threads or processes; both derive
what they show from the same ``(seed, epoch)``, so the truck the camera draws is the truck the scale
weighs, without any channel between them. Times are wall-clock seconds (``time.time()``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# Plate layouts the simulator draws: (country, syntax name, pattern). 'D' digit, 'L' Latin letter
# valid on that country's plates, anything else literal. Region codes are drawn from real ranges.
_UZ_REGIONS = ["01", "10", "20", "25", "30", "40", "50", "60", "70", "75", "80", "85", "90", "95"]
_LAYOUTS: list[tuple[str, str, str, float]] = [
    # country, syntax, pattern, weight
    ("UZ", "UZ-private", "RR L DDD LL", 4.0),
    ("UZ", "UZ-legal", "RR DDD LLL", 3.0),
    ("KZ", "KZ-2012", "DDD LLL RR", 1.5),
    ("KG", "KG-2016", "RR DDD LLL", 1.0),
    ("TJ", "TJ-2018", "DDDD LL RR", 0.7),
    ("RU", "RU-private", "L DDD LL RR", 1.0),
    ("TR", "TR", "RR L DDDD", 0.7),
]
_LETTERS = "ABCDEFHKLMNPRSTUXYZ"
_RU_LETTERS = "ABEKMHOPCTYX"
# Trucks from Europe: the share of vehicles, and their layouts (district codes from real lists).
# German plates carry their seals and every one of them the EU band (drivers.camera.synthetic).
FOREIGN_SHARE = 0.15
_DE_DISTRICTS = ["B", "M", "HH", "K", "F", "S", "KA", "DO", "HB", "MS"]
_PL_DISTRICTS = ["WA", "KR", "PO", "GD", "WR", "LU"]
_FOREIGN: list[tuple[str, str, float]] = [("DE", "DE", 1.0), ("PL", "PL", 0.8), ("LT", "LT", 0.6)]
# Iranian trucks, which reach Uzbekistan through Turkmenistan, with their national plates in Persian
# (drivers.camera.iranian): mostly the yellow public-transport series ع (code E).
IRAN_SHARE = 0.08
# Afghan trucks (drivers.camera.afghan: a two-line plate, Persian over Latin), which cross at
# Termez-Hairatan: lorries of the northern provinces mostly.
AFGHAN_SHARE = 0.08
_AF_PROVINCES = {"BLK": 4.0, "KBL": 3.0, "KDZ": 2.0, "JZJ": 1.5, "SMG": 1.0, "HRT": 1.0, "KDR": 0.5, "NGR": 0.5}


@dataclass(frozen=True)
class SimVehicle:
    index: int
    plate: str
    """Normalised plate text (no spaces)."""
    display: str
    country: str
    syntax: str
    gross_kg: float
    arrive: float
    """Front enters the camera's view."""
    loaded: float
    """Fully on the platform: the scale has all axles from here."""
    depart: float
    """Starts to drive off."""
    gone: float
    """Off the platform and out of view."""
    color: tuple[int, int, int]

    def progress(self, t: float) -> float | None:
        """Position along the lane: 0 entering view, 0.5 parked on the scale, 1 leaving; None outside."""
        if t < self.arrive or t >= self.gone:
            return None
        if t < self.loaded:
            return 0.5 * (t - self.arrive) / (self.loaded - self.arrive)
        if t < self.depart:
            return 0.5
        return 0.5 + 0.5 * (t - self.depart) / (self.gone - self.depart)


def make_plate(rng: random.Random) -> tuple[str, str, str, str]:
    """(text, display, country, syntax) of a random plate in one of the simulated layouts."""
    country, syntax, pattern, _ = rng.choices(_LAYOUTS, weights=[w for *_, w in _LAYOUTS])[0]
    letters = _RU_LETTERS if country == "RU" else _LETTERS
    if country == "UZ":
        region = rng.choice(_UZ_REGIONS)
    elif country == "KG":
        region = f"{rng.randint(1, 9):02d}"  # Kyrgyz region codes run 01-09
    else:
        region = f"{rng.randint(1, 20):02d}"
    out = []
    region_used = False
    for ch in pattern:
        if ch == "D":
            out.append(str(rng.randint(0, 9)))
        elif ch == "L":
            out.append(rng.choice(letters))
        elif ch == "R":
            if not region_used:
                out.append(region)
                region_used = True
        else:
            out.append(ch)
    display = "".join(out)
    return display.replace(" ", ""), display, country, syntax


def make_foreign_plate(rng: random.Random) -> tuple[str, str, str, str]:
    """(text, display, country, syntax) of a random European truck's plate."""
    country, syntax, _ = rng.choices(_FOREIGN, weights=[w for *_, w in _FOREIGN])[0]
    if country == "DE":
        district = rng.choice(_DE_DISTRICTS)
        letters = "".join(rng.choice(_LETTERS) for _ in range(rng.randint(1, 2)))
        digits = str(rng.randint(1, 10 ** min(4, 8 - len(district) - len(letters)) - 1))
        display = f"{district} {letters} {digits}"
    elif country == "PL":
        display = f"{rng.choice(_PL_DISTRICTS)} {rng.randint(10000, 99999)}"
    else:
        display = "".join(rng.choice(_LETTERS) for _ in range(3)) + f" {rng.randint(100, 999)}"
    return display.replace(" ", ""), display, country, syntax


def make_iranian_plate(rng: random.Random) -> tuple[str, str, str, str]:
    """(text, display, country, syntax) of a random Iranian national plate, in Latin codes."""
    letter = "E" if rng.random() < 0.85 else rng.choice("BJDSCQLMNVHY")
    text = f"{rng.randint(10, 99)}{letter}{rng.randint(100, 999)}{rng.randint(10, 99)}"
    return text, f"{text[:2]} {letter} {text[3:6]} {text[6:]}", "IR", "ir-national"


def make_afghan_plate(rng: random.Random) -> tuple[str, str, str, str]:
    """(text, display, country, syntax) of a random Afghan plate: a lorry's mostly, some private
    cars' and buses'."""
    province = rng.choices(list(_AF_PROVINCES), weights=list(_AF_PROVINCES.values()))[0]
    cls, syntax = rng.choices([("L", "af-class"), ("PRV", "af-private"), ("B", "af-class")], weights=[8, 2, 1])[0]
    display = f"{province} {rng.randint(1, 10 ** rng.randint(3, 5) - 1)} {cls}"
    return display.replace(" ", ""), display, "AF", syntax


class Traffic:
    """Vehicles arriving every ``period_s`` seconds from ``epoch``; vehicle ``i`` is fixed by the seed."""

    def __init__(
        self,
        seed: int,
        epoch: float,
        period_s: float = 12.0,
        drive_in_s: float = 3.0,
        dwell_s: float = 4.0,
        drive_out_s: float = 2.5,
        settle_s: float = 1.0,
        noise_kg: float = 2.0,
        count: int | None = None,
    ) -> None:
        if drive_in_s + dwell_s + drive_out_s >= period_s:
            raise ValueError("a vehicle must be gone before the next arrives: period_s too short")
        self.seed = seed
        self.epoch = epoch
        self.period_s = period_s
        self.drive_in_s = drive_in_s
        self.dwell_s = dwell_s
        self.drive_out_s = drive_out_s
        self.settle_s = settle_s
        self.noise_kg = noise_kg
        self.count = count
        """Vehicles 0..count-1 come, then the lane stays empty (tests, benchmarks); None: no end."""

    def vehicle(self, index: int) -> SimVehicle:
        rng = random.Random(f"{self.seed}:{index}")
        text, display, country, syntax = make_plate(rng)
        # Drawn apart, so that the region's vehicles of a seed stay as they were.
        foreign = random.Random(f"{self.seed}:{index}:foreign")
        if foreign.random() < FOREIGN_SHARE:
            text, display, country, syntax = make_foreign_plate(foreign)
        else:
            iran = random.Random(f"{self.seed}:{index}:iran")
            if iran.random() < IRAN_SHARE:
                text, display, country, syntax = make_iranian_plate(iran)
            else:
                afghan = random.Random(f"{self.seed}:{index}:afghan")
                if afghan.random() < AFGHAN_SHARE:
                    text, display, country, syntax = make_afghan_plate(afghan)
        gross = round(rng.uniform(8000, 42000) / 10) * 10
        arrive = self.epoch + index * self.period_s
        loaded = arrive + self.drive_in_s
        depart = loaded + self.dwell_s
        gone = depart + self.drive_out_s
        color = (rng.randint(40, 200), rng.randint(40, 200), rng.randint(40, 200))
        return SimVehicle(index, text, display, country, syntax, gross, arrive, loaded, depart, gone, color)

    def index_at(self, t: float) -> int:
        return math.floor((t - self.epoch) / self.period_s)

    def vehicle_at(self, t: float) -> SimVehicle | None:
        """The vehicle in the lane at ``t``, if any."""
        i = self.index_at(t)
        if i < 0 or (self.count is not None and i >= self.count):
            return None
        v = self.vehicle(i)
        return v if v.arrive <= t < v.gone else None

    def vehicles_between(self, t0: float, t1: float) -> list[SimVehicle]:
        """Vehicles that were fully weighed (departed) in [t0, t1)."""
        first = max(0, self.index_at(t0) - 1)
        last = self.index_at(t1) + 1
        if self.count is not None:
            last = min(last, self.count - 1)
        return [v for i in range(first, last + 1) if t0 <= (v := self.vehicle(i)).depart < t1]

    def weight_at(self, t: float) -> float:
        """Platform load at ``t`` in kg, noise-free: ramps as axles roll on, settles with a damped swing."""
        v = self.vehicle_at(t)
        if v is None:
            return 0.0
        if t < v.arrive + self.drive_in_s * 0.4:
            return 0.0  # still before the platform
        if t < v.loaded:
            frac = (t - v.arrive - self.drive_in_s * 0.4) / (self.drive_in_s * 0.6)
            axles = math.ceil(frac * 3) / 3  # steps as each axle group rolls on
            return v.gross_kg * axles
        if t < v.depart:
            dt = t - v.loaded
            swing = 0.03 * v.gross_kg * math.exp(-dt * 5.0 / self.settle_s) * math.cos(dt * 12.0)
            return v.gross_kg + swing
        frac = (t - v.depart) / (self.drive_out_s * 0.6)
        if frac >= 1:
            return 0.0
        return v.gross_kg * (1 - math.ceil(frac * 3) / 3)
