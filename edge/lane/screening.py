"""Screening a crossing against what HQ told the post: the watchlist and the expected arrivals.

Both lists arrive as signed commands (see :mod:`edge.commands`) and are kept on disk, so a post that
is offline for days still flags a watched plate or a truck heavier than its declaration, at the lane,
when it matters. Matching uses the normalised plate and folds the classic OCR confusions (O/0, I/1,
B/8, S/5, Z/2), so one misread character does not hide a watched truck.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from edge.errors import CommandError, StorageError
from edge.events import VehicleEvent
from edge.plates import plate_key

log = logging.getLogger(__name__)

class _JsonFile:
    """A small JSON document replaced atomically (write, fsync, rename): never half-written."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, default: Any) -> Any:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return default
        except (OSError, ValueError) as err:
            raise StorageError(f"{self.path}: unreadable ({err}); fix or remove it") from err

    def save(self, data: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def _plates(payload: dict[str, Any]) -> list[str]:
    plates = payload.get("plates")
    if not isinstance(plates, list) or not all(isinstance(p, str) and p.strip() for p in plates):
        raise CommandError("payload.plates must be a list of plate texts")
    return [p.strip().upper() for p in plates]


class Watchlist:
    def __init__(self, path: Path) -> None:
        self._file = _JsonFile(path)
        self._lock = threading.Lock()
        self._plates: dict[str, str] = {plate_key(p): p for p in self._file.load([])}

    def __len__(self) -> int:
        return len(self._plates)

    def set(self, payload: dict[str, Any]) -> dict[str, Any]:
        plates = _plates(payload)
        with self._lock:
            self._plates = {plate_key(p): p for p in plates}
            self._file.save(sorted(self._plates.values()))
        return {"watchlist": len(self._plates)}

    def add(self, payload: dict[str, Any]) -> dict[str, Any]:
        plates = _plates(payload)
        with self._lock:
            self._plates.update({plate_key(p): p for p in plates})
            self._file.save(sorted(self._plates.values()))
        return {"watchlist": len(self._plates)}

    def hit(self, text: str) -> str | None:
        return self._plates.get(plate_key(text))

    def screen(self, ev: VehicleEvent) -> None:
        for plate in (ev.plate, ev.trailer_plate):
            if plate and self.hit(plate["text"]):
                ev.flags["watchlist_hit"] = True
                log.warning("lane %s: watchlist hit %s", ev.lane_id, plate["text"])


class Declarations:
    """Expected arrivals (pre-arrival declarations): plate, declared gross weight, reference."""

    def __init__(self, path: Path, *, tolerance_pct: float, tolerance_kg: float) -> None:
        self._file = _JsonFile(path)
        self._lock = threading.Lock()
        self.tolerance_pct = tolerance_pct
        self.tolerance_kg = tolerance_kg
        self._items: dict[str, dict[str, Any]] = self._file.load({})

    def __len__(self) -> int:
        return len(self._items)

    def add(self, payload: dict[str, Any]) -> dict[str, Any]:
        items = payload.get("declarations")
        if not isinstance(items, list):
            raise CommandError("payload.declarations must be a list")
        parsed = []
        for i, d in enumerate(items):
            try:
                plate = str(d["plate"]).strip().upper()
                gross = float(d["declared_gross"])
                unit = str(d.get("unit", "kg"))
                reference = str(d["reference"])
                valid_until = float(d.get("valid_until", time.time() + 7 * 86400))
            except (KeyError, TypeError, ValueError) as err:
                raise CommandError(f"declarations[{i}]: needs plate, declared_gross, reference ({err})") from err
            if unit != "kg" or gross <= 0 or not plate:
                raise CommandError(f"declarations[{i}]: declared_gross must be a positive weight in kg")
            parsed.append((plate_key(plate), {"plate": plate, "declared_gross": gross, "unit": unit,
                                              "reference": reference, "valid_until": valid_until}))
        with self._lock:
            self._items.update(parsed)
            self._drop_expired(time.time())
            self._file.save(self._items)
        return {"declarations": len(self._items)}

    def _drop_expired(self, now: float) -> None:
        for key in [k for k, d in self._items.items() if d["valid_until"] < now]:
            del self._items[key]

    def screen(self, ev: VehicleEvent) -> None:
        if ev.plate is None:
            return
        with self._lock:
            decl = self._items.get(plate_key(ev.plate["text"]))
        if decl is None or decl["valid_until"] < ev.first_seen:
            return
        ev.declaration = {"reference": decl["reference"], "declared_gross": decl["declared_gross"],
                          "unit": decl["unit"]}
        if ev.weighing is None or ev.weighing.get("unit") != "kg":
            return
        allowed = max(self.tolerance_kg, decl["declared_gross"] * self.tolerance_pct / 100.0)
        if abs(ev.weighing["gross"] - decl["declared_gross"]) > allowed:
            ev.flags["weight_mismatch"] = True
            log.warning("lane %s: %s weighs %.0f kg, declared %.0f kg (%s)", ev.lane_id, ev.plate["text"],
                        ev.weighing["gross"], decl["declared_gross"], decl["reference"])
