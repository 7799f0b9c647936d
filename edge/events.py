"""The vehicle event: what one crossing of one lane becomes, and the JSON HQ receives.

The payload is plain JSON so HQ can integrate in any language; ``schema`` names its version. Fields
that the journal fills at commit (``seq`` and ``integrity``) are absent until then: an event is not
an event until it is durable.

Payload ``customs.vehicle_event/2`` (version 1, which posts sent before 2026-11-29, lacks ``adr``)::

    {
      "schema": "customs.vehicle_event/2",
      "event_id": "<uuid4>",
      "post_id": "uz-demo-01", "lane_id": "lane1",
      "seq": 17,                              # per-post, assigned by the journal at commit
      "first_seen": "2026-11-28T21:30:01.120Z", "weighed_at": "...", "left_at": "...",
      "plate": {text, display, country, syntax, confidence, camera, frame_seq, seen_at, box, votes,
                crop_sha256, overview_sha256} | null,
      "reads": [{camera, role, text, display, country, syntax, confidence, frames}],  # per camera
      "trailer_plate": {...} | null,
      "containers": [{code, valid, confidence, camera}],   # valid: the ISO 6346 check digit matched
      "adr": [{hazard, un, confidence, camera}],           # orange dangerous-goods plates
      "weighing": {gross, tare, net, unit, stable_span_s, spread, readings, record_id, scale, axles} | null,
      "flags": {unreadable_plate, watchlist_hit, weight_mismatch, no_weighing},
      "declaration": {reference, declared_gross, unit} | null,
      "software": {"version": "0.1.0", "models": {"<name>": "<sha256 prefix>"}},
      "integrity": {"prev_hash", "hash", "signature", "key_id", "public_key"}   # added by the journal
    }

The JSON Schema in ``edge/contract_schemas/vehicle_event.v2.json`` is the contract; this is a map.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edge import __version__

SCHEMA = "customs.vehicle_event/2"


def iso_time(ts: float | None) -> str | None:
    """UTC, millisecond precision, 'Z' suffix: sortable as text and unambiguous across time zones."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class VehicleEvent:
    """One crossing, before it is committed to the journal."""

    post_id: str
    lane_id: str
    first_seen: float
    left_at: float
    weighed_at: float | None = None
    plate: dict[str, Any] | None = None
    reads: list[dict[str, Any]] = field(default_factory=list)
    trailer_plate: dict[str, Any] | None = None
    containers: list[dict[str, Any]] = field(default_factory=list)
    adr: list[dict[str, Any]] = field(default_factory=list)
    weighing: dict[str, Any] | None = None
    declaration: dict[str, Any] | None = None
    flags: dict[str, bool] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def payload(self) -> dict[str, Any]:
        flags = {
            "unreadable_plate": self.plate is None,
            "watchlist_hit": False,
            "weight_mismatch": False,
            "no_weighing": self.weighing is None,
        }
        flags.update(self.flags)
        return {
            "schema": SCHEMA,
            "event_id": self.event_id,
            "post_id": self.post_id,
            "lane_id": self.lane_id,
            "first_seen": iso_time(self.first_seen),
            "weighed_at": iso_time(self.weighed_at),
            "left_at": iso_time(self.left_at),
            "plate": self.plate,
            "reads": self.reads,
            "trailer_plate": self.trailer_plate,
            "containers": self.containers,
            "adr": self.adr,
            "weighing": self.weighing,
            "flags": flags,
            "declaration": self.declaration,
            "software": {"version": __version__, "models": self.models},
        }
