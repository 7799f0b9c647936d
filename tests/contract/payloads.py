"""Payloads built by the project's own code, for checking them against the published contract."""

from __future__ import annotations

import time
from typing import Any

from edge.events import VehicleEvent
from edge.outbox.signing import GENESIS_HASH, PostKey, seal


def full_event(**over: Any) -> VehicleEvent:
    t0 = time.time()
    kw: dict[str, Any] = dict(
        post_id="uz-demo-01",
        lane_id="lane1",
        first_seen=t0,
        weighed_at=t0 + 4.2,
        left_at=t0 + 9.0,
        plate={"text": "01A123BC", "display": "01 A 123 BC", "country": "UZ", "syntax": "uz_private",
               "confidence": 0.93, "camera": "front", "frame_seq": 40, "seen_at": "2026-11-28T21:30:02.300Z",
               "box": [10, 20, 200, 50], "votes": 5, "crop_sha256": "ab" * 32},
        reads=[{"camera": "front", "role": "front", "text": "01A123BC", "display": "01 A 123 BC",
                "country": "UZ", "syntax": "uz_private", "confidence": 0.93, "frames": 7}],
        containers=[{"code": "MSCU1234565", "valid": True, "confidence": 0.8, "camera": "rear"}],
        adr=[{"hazard": "33", "un": "1203", "confidence": 0.9, "camera": "rear"}],
        weighing={"gross": 38240.0, "tare": None, "net": None, "unit": "kg", "stable_span_s": 1.6,
                  "spread": 20.0, "readings": 16, "record_id": "w-1", "scale": "sim://lane1"},
        declaration={"reference": "UZ-2026-1", "declared_gross": 30000.0, "unit": "kg"},
        flags={"weight_mismatch": True},
        models={"plate_detector": "9f2c1d0a7b3e"},
    )
    kw.update(over)
    return VehicleEvent(**kw)


def committed(payload: dict[str, Any], seq: int = 1, prev: str = GENESIS_HASH) -> dict[str, Any]:
    """What the journal does at commit (edge.outbox.journal.Journal.append), without the disk."""
    return seal({**payload, "seq": seq}, PostKey.generate(), prev)
