"""The published JSON Schemas accept what the code sends and refuse what it must not."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from edge import contract
from edge.contract import ContractError
from edge.events import VehicleEvent
from edge.outbox.signing import GENESIS_HASH, PostKey, verify_event
from tests.contract.payloads import committed, full_event

SCHEMA_DIR = Path(contract.__file__).parent / contract.SCHEMA_DIR
KINDS = ["vehicle_event", "key_rotation", "status", "telemetry", "ack", "command", "command_result", "diag_test"]


# Every published version: a post in the field may still send an older one.
VERSIONS = [(kind, 1) for kind in KINDS] + [("vehicle_event", 2)]


@pytest.mark.parametrize(("kind", "version"), VERSIONS)
def test_schema_files_are_valid_draft_2020_12_with_valid_examples(kind: str, version: int) -> None:
    doc = json.loads((SCHEMA_DIR / f"{kind}.v{version}.json").read_text())
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["title"] == f"customs.{kind}/{version}"
    assert doc["examples"], "every schema carries at least one example for integrators"
    for example in doc["examples"]:
        contract.validate(kind, example)
        assert example["schema"] == f"customs.{kind}/{version}"


def test_every_shipped_schema_is_listed() -> None:
    assert sorted(contract.kinds()) == sorted(KINDS)
    assert {k: v for k, v in contract.kinds().items() if v != [1]} == {"vehicle_event": [1, 2]}


@pytest.mark.parametrize("version", [1, 2])
def test_vehicle_event_examples_are_really_signed_and_chained(version: int) -> None:
    ex = contract.schema("vehicle_event", version)["examples"]
    first, second = ex[0], ex[1]
    h1 = verify_event(first, first["integrity"]["public_key"])
    verify_event(second, second["integrity"]["public_key"])
    assert second["integrity"]["prev_hash"] == h1


def test_version_2_adds_the_adr_plates_and_version_1_stays_as_it_was() -> None:
    p = committed(full_event().payload())
    assert p["schema"] == "customs.vehicle_event/2"
    assert p["adr"] == [{"hazard": "33", "un": "1203", "confidence": 0.9, "camera": "rear"}]
    contract.validate("vehicle_event", p)
    # What a post installed before version 2 sends is still valid, by its own tag.
    old = {k: v for k, v in full_event().payload().items() if k != "adr"}
    contract.validate("vehicle_event", committed({**old, "schema": "customs.vehicle_event/1"}))
    with pytest.raises(ContractError, match="Additional properties"):
        contract.validate("vehicle_event", committed({**old, "schema": "customs.vehicle_event/1", "adr": []}))
    with pytest.raises(ContractError, match=r"'adr' is a required property"):
        contract.validate("vehicle_event", committed(old))
    bad = committed(full_event(adr=[{"hazard": "33", "un": "12034"}]).payload())
    with pytest.raises(ContractError) as info:
        contract.validate("vehicle_event", bad)
    assert info.value.path == "$.adr[0].un"


def test_code_payload_committed_by_the_journal_form_validates() -> None:
    payload = full_event().payload()
    contract.validate("vehicle_event", committed(payload, seq=17))


def test_minimal_payload_unread_no_scale_validates() -> None:
    t0 = time.time()
    payload = VehicleEvent(post_id="uz-demo-01", lane_id="lane-2", first_seen=t0, left_at=t0 + 3).payload()
    assert payload["flags"]["unreadable_plate"] and payload["flags"]["no_weighing"]
    contract.validate("vehicle_event", committed(payload))


def test_uncommitted_payload_is_not_a_publishable_event() -> None:
    with pytest.raises(ContractError) as info:
        contract.validate("vehicle_event", full_event().payload())
    assert "'seq' is a required property" in str(info.value)
    assert "'integrity' is a required property" in str(info.value)


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (lambda p: p["plate"].__setitem__("text", "01 a-123"), "$.plate.text", "does not match"),
        (lambda p: p["reads"][0].__setitem__("confidence", 1.5), "$.reads[0].confidence", "maximum"),
        (lambda p: p["weighing"].__setitem__("unit", "kilo"), "$.weighing.unit", "is not one of"),
        (lambda p: p.__setitem__("seq", 0), "$.seq", "minimum"),
        (lambda p: p.__setitem__("left_at", "2026-11-28 21:30"), "$.left_at", "does not match"),
        (lambda p: p.__setitem__("event_id", "not-a-uuid"), "$.event_id", "does not match"),
        (lambda p: p["integrity"].__setitem__("hash", "XYZ"), "$.integrity.hash", "does not match"),
        (lambda p: p["flags"].__setitem__("watchlist_hit", "yes"), "$.flags.watchlist_hit", "is not of type"),
        (lambda p: p.__setitem__("plate_text", "01A123BC"), "$", "Additional properties"),
        (lambda p: p.__setitem__("schema", "customs.vehicle_event/3"), "$", "no schema version 3"),
    ],
)
def test_violations_name_the_json_path(mutate: Any, path: str, words: str) -> None:
    p = committed(full_event().payload())
    mutate(p)
    with pytest.raises(ContractError) as info:
        contract.validate("vehicle_event", p)
    assert info.value.path == path
    assert words in str(info.value)
    assert str(info.value).startswith("vehicle_event/v")


def test_validate_tagged_picks_the_kind_from_the_payload() -> None:
    ack = {"schema": "customs.ack/1", "post_id": "uz-demo-01", "seq": 4}
    assert contract.validate_tagged(ack) == "ack"
    with pytest.raises(ContractError, match=r"\$\.schema"):
        contract.validate_tagged({"post_id": "x"})
    with pytest.raises(ContractError, match="unknown payload kind"):
        contract.validate("nonsense", {})


def test_not_an_object_is_refused_clearly() -> None:
    with pytest.raises(ContractError, match=r"\$: .* is not of type 'object'"):
        contract.validate("ack", [1, 2])


def test_payload_is_not_modified_by_validation() -> None:
    p = committed(full_event().payload())
    before = copy.deepcopy(p)
    contract.validate("vehicle_event", p)
    assert p == before


def test_events_committed_by_the_real_journal_validate(tmp_path: Path) -> None:
    from edge.outbox.journal import Journal

    journal = Journal(tmp_path / "journal.sqlite", PostKey.generate(), "uz-demo-01")
    try:
        stored = [journal.append(full_event().payload()), journal.append(full_event(plate=None).payload())]
        for ev in stored:
            contract.validate("vehicle_event", ev.payload)
            contract.validate("vehicle_event", json.loads(ev.raw))  # the bytes that go on the wire
        assert stored[0].payload["integrity"]["prev_hash"] == GENESIS_HASH
        assert stored[1].payload["integrity"]["prev_hash"] == stored[0].payload["integrity"]["hash"]
    finally:
        journal.close()


def test_events_assembled_by_lane_fusion_validate(tmp_path: Path) -> None:
    """The real fusion path (reads + weighing -> VehicleEvent), committed by the real journal."""
    import numpy as np

    from drivers.scale.weighing import Weighing
    from edge.config import CrossingSection
    from edge.evidence import EvidenceStore
    from edge.lane.fusion import CrossingAssembler
    from edge.outbox.journal import Journal
    from edge.recognition.types import PlateRead
    from edge.recognition.voting import PlateVoter

    evidence = EvidenceStore(tmp_path / "evidence", quota_bytes=10_000_000, retention_s=3600)
    lane = CrossingAssembler(
        "uz-demo-01", "lane1", CrossingSection.model_validate({}), has_scale=True, voter_factory=PlateVoter,
        camera_roles={"front": "front", "rear": "trailer"}, models={"plate_detector": "9f2c1d0a7b3e"},
        evidence=evidence.put_image,
    )
    t0 = 1_800_000_000.0
    lane.vehicle_on(t0)
    crop = np.full((40, 160, 3), 200, np.uint8)
    for i in range(5):
        lane.add_read(PlateRead("01A123BC", 0.9, (10, 20, 160, 40), display="01 A 123 BC", country="UZ",
                                syntax="uz_private", camera="front", frame_seq=i, timestamp=t0 + 0.2 * i), crop=crop)
        lane.add_read(PlateRead("01XA1234", 0.8, (5, 5, 150, 40), camera="rear", frame_seq=i,
                                timestamp=t0 + 0.2 * i))
        lane.add_read(PlateRead("MSCU1234565", 0.7, (0, 0, 300, 60), camera="rear", frame_seq=i,
                                timestamp=t0 + 0.2 * i, kind="container"))
    lane.weighed(Weighing(gross=38240.0, tare=0.0, net=38240.0, unit="kg", taken_at=t0 + 2, stable_span_s=1.6,
                          spread=20.0, readings=(b"ST,GS,+0038240kg\r\n",) * 16, scale_id="uz-demo-01/lane1/scale",
                          protocol="ascii"), "w-1")
    lane.vehicle_off(t0 + 5)
    events = lane.tick(t0 + 60)
    lane.vehicle_on(t0 + 101)  # a vehicle the scale felt but no camera read, and no stable weight
    lane.vehicle_off(t0 + 103)
    events += lane.tick(t0 + 200)
    assert len(events) == 2
    journal = Journal(tmp_path / "journal.sqlite", PostKey.generate(), "uz-demo-01")
    try:
        for ev in events:
            contract.validate("vehicle_event", journal.append(ev.payload()).payload)
    finally:
        journal.close()
    first, second = events[0].payload(), events[1].payload()
    assert first["plate"]["crop_sha256"] and first["trailer_plate"] and first["containers"]
    assert second["plate"] is None and second["weighing"] is None and second["flags"]["unreadable_plate"]
