"""Lane fusion replayed from timestamps: one event per crossing, the right reads in it, nothing lost."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from drivers.scale.weighing import Weighing
from edge.config import CrossingSection
from edge.evidence import EvidenceStore
from edge.lane.fusion import CrossingAssembler
from edge.recognition.types import PlateRead
from edge.recognition.voting import PlateVoter

CROSSING = CrossingSection(idle_gap_s=3.0, pre_roll_s=4.0, post_roll_s=1.0, max_duration_s=120.0)


def read(text: str, t: float, conf: float = 0.9, camera: str = "front", seq: int = 0,
         kind: str = "plate") -> PlateRead:
    return PlateRead(text=text, confidence=conf, box=(100, 200, 180, 40), display=text, country="UZ",
                     syntax="UZ-private", camera=camera, frame_seq=seq or int(t * 10), timestamp=t, kind=kind)


def weighing(t: float, gross: float = 21230.0) -> Weighing:
    frame = f"ST,GS,+{gross:08.0f}kg\r\n".encode()
    return Weighing(gross=gross, tare=0.0, net=gross, unit="kg", taken_at=t, stable_span_s=1.5, spread=10.0,
                    readings=(frame,) * 15, scale_id="p/lane1/scale", protocol="ascii")


def scale_lane(**kw: object) -> CrossingAssembler:
    return CrossingAssembler("uz-01", "lane1", CROSSING, has_scale=True, voter_factory=PlateVoter,
                             camera_roles={"front": "front", "rear": "trailer"}, **kw)  # type: ignore[arg-type]


def test_scale_lane_makes_one_event_with_pre_roll_reads_and_weight() -> None:
    lane = scale_lane()
    lane.add_read(read("01A123BC", 99.0))  # seen driving up, before the platform loads
    lane.vehicle_on(100.0)
    for i in range(5):
        lane.add_read(read("01A123BC" if i != 2 else "01A128BC", 100.5 + i * 0.3, conf=0.8))
    lane.weighed(weighing(103.0), "wr-1")
    lane.vehicle_off(106.0)
    assert lane.tick(106.5) == []  # still within the post-roll
    events = lane.tick(107.1)
    assert len(events) == 1
    p = events[0].payload()
    assert p["plate"]["text"] == "01A123BC"  # the single misread is outvoted
    assert p["plate"]["votes"] == 6
    assert p["weighing"]["gross"] == 21230.0 and p["weighing"]["record_id"] == "wr-1"
    assert p["first_seen"].endswith("Z") and p["flags"] == {
        "unreadable_plate": False, "watchlist_hit": False, "weight_mismatch": False, "no_weighing": False}
    assert lane.tick(200.0) == []


def test_reads_of_the_next_truck_are_not_in_this_crossing() -> None:
    lane = scale_lane()
    lane.vehicle_on(100.0)
    lane.add_read(read("01A123BC", 101.0))
    lane.weighed(weighing(102.0))
    lane.vehicle_off(104.0)
    first = lane.tick(105.5)
    lane.add_read(read("10B456CD", 108.0))  # the next truck drives up
    lane.add_read(read("01A123BC", 104.8))  # late frame of the first truck, before its post-roll ended
    lane.vehicle_on(110.0)
    lane.add_read(read("10B456CD", 110.5))
    lane.weighed(weighing(112.0, 30000.0))
    lane.vehicle_off(114.0)
    second = lane.tick(116.0)
    assert [e.payload()["plate"]["text"] for e in first + second] == ["01A123BC", "10B456CD"]
    assert second[0].payload()["plate"]["votes"] == 2


def test_a_truck_without_a_readable_plate_is_still_an_event() -> None:
    lane = scale_lane()
    lane.vehicle_on(100.0)
    lane.weighed(weighing(102.0))
    lane.vehicle_off(104.0)
    (event,) = lane.tick(106.0)
    p = event.payload()
    assert p["plate"] is None and p["flags"]["unreadable_plate"] is True
    assert p["weighing"]["gross"] == 21230.0


def test_camera_only_lane_closes_after_the_idle_gap() -> None:
    lane = CrossingAssembler("uz-01", "lane3", CROSSING, has_scale=False, voter_factory=PlateVoter)
    for i in range(4):
        lane.add_read(read("01123ABC", 50.0 + i * 0.5))
    assert lane.tick(53.0) == []
    (event,) = lane.tick(54.6)
    p = event.payload()
    assert p["plate"]["text"] == "01123ABC" and p["weighing"] is None and p["flags"]["no_weighing"]


def test_trailer_camera_reads_go_to_the_trailer_plate() -> None:
    lane = scale_lane()
    lane.vehicle_on(100.0)
    lane.add_read(read("01A123BC", 100.5))
    lane.add_read(read("01XA1234", 101.0, camera="rear"))
    lane.vehicle_off(104.0)
    (event,) = lane.tick(106.0)
    p = event.payload()
    assert p["plate"]["text"] == "01A123BC"
    assert p["trailer_plate"]["text"] == "01XA1234"
    assert {r["camera"]: r["role"] for r in p["reads"]} == {"front": "front", "rear": "trailer"}


def test_a_container_cameras_texts_never_vote_for_the_plate() -> None:
    lane = CrossingAssembler("uz-01", "lane1", CROSSING, has_scale=True, voter_factory=PlateVoter,
                             camera_roles={"front": "front", "side": "container"})
    lane.vehicle_on(100.0)
    lane.add_read(read("01A123BC", 100.5, conf=0.7))
    for i in range(6):  # the side of a container, read over and over, with a text that fits a syntax
        lane.add_read(read("01B222CD", 101.0 + i * 0.2, conf=0.95, camera="side"))
        lane.add_read(read("CSQU3054383", 101.1 + i * 0.2, conf=0.95, camera="side", kind="container"))
    lane.vehicle_off(104.0)
    (event,) = lane.tick(106.0)
    p = event.payload()
    assert p["plate"]["text"] == "01A123BC" and p["plate"]["votes"] == 1
    assert [r["camera"] for r in p["reads"]] == ["front"]
    assert [c["code"] for c in p["containers"]] == ["CSQU3054383"]


def test_a_tankers_adr_plates_reach_the_event_once_each() -> None:
    lane = CrossingAssembler("uz-01", "lane1", CROSSING, has_scale=True, voter_factory=PlateVoter,
                             camera_roles={"front": "front", "rear": "rear"})
    lane.vehicle_on(100.0)
    lane.add_read(read("01A123BC", 100.5))
    for i, conf in enumerate((0.7, 0.95, 0.8)):  # the front ADR plate, frame after frame
        lane.add_read(read("33/1203", 100.6 + i * 0.1, conf=conf, kind="adr"))
    lane.add_read(read("30/1202", 102.0, conf=0.9, camera="rear", kind="adr"))  # a second compartment
    lane.vehicle_off(104.0)
    (event,) = lane.tick(106.0)
    p = event.payload()
    assert p["schema"] == "customs.vehicle_event/2"
    assert p["plate"]["text"] == "01A123BC"
    assert p["adr"] == [{"hazard": "33", "un": "1203", "confidence": 0.95, "camera": "front"},
                        {"hazard": "30", "un": "1202", "confidence": 0.9, "camera": "rear"}]


def test_each_container_is_reported_once_from_its_best_frame() -> None:
    lane = CrossingAssembler("uz-01", "lane1", CROSSING, has_scale=True, voter_factory=PlateVoter,
                             camera_roles={"front": "front", "left": "container", "right": "container"})
    lane.vehicle_on(100.0)
    lane.add_read(read("01A123BC", 100.5))
    # Two containers on one chassis; the first seen best by the left camera, then worse by the right.
    lane.add_read(read("CSQU3054383", 101.0, conf=0.92, camera="left", kind="container"))
    lane.add_read(read("CSQU3054383", 101.4, conf=0.61, camera="right", kind="container"))
    lane.add_read(read("MSKU1234565", 101.2, conf=0.8, camera="right", kind="container"))
    lane.vehicle_off(104.0)
    (event,) = lane.tick(106.0)
    p = event.payload()
    assert p["containers"] == [
        {"code": "CSQU3054383", "valid": True, "confidence": 0.92, "camera": "left"},
        {"code": "MSKU1234565", "valid": True, "confidence": 0.8, "camera": "right"},
    ]


def test_a_codes_chance_verifying_misread_is_not_a_second_container() -> None:
    # CSQU3054399 verifies too (a check digit catches most misreads, not all): read once, in the
    # middle of CSQU3054383's reads, it is that container misread, not one more that HQ must look for.
    lane = CrossingAssembler("uz-01", "lane1", CROSSING, has_scale=True, voter_factory=PlateVoter,
                             camera_roles={"front": "front", "side": "container"})
    lane.vehicle_on(100.0)
    for i in range(5):
        lane.add_read(read("CSQU3054383" if i != 2 else "CSQU3054399", 101.0 + i * 0.2, conf=0.9,
                           camera="side", kind="container"))
    lane.vehicle_off(104.0)
    (event,) = lane.tick(106.0)
    (only,) = event.payload()["containers"]
    assert only["code"] == "CSQU3054383" and only["valid"] is True
    assert only["confidence"] == 0.72  # 0.9, less the misread frame's share of the crossing


def test_two_containers_with_neighbouring_serials_are_both_reported() -> None:
    # Serials 305438 and 305439 on one chassis: seen one after the other by one camera, in the same
    # frames by another, or by two cameras at once (the side and the doors), they are two
    # containers however alike their codes.
    for frames in (
        [("CSQU3054383", 101.0 + i * 0.2, "side") for i in range(4)]
        + [("CSQU3054399", 102.0 + i * 0.2, "side") for i in range(2)],
        [(code, 101.0 + i * 0.2, "side") for i in range(4) for code in ("CSQU3054383", "CSQU3054399")][:-1],
        [("CSQU3054383", 101.0 + i * 0.2, "side") for i in range(4)] + [("CSQU3054399", 101.3, "rear")],
    ):
        lane = CrossingAssembler("uz-01", "lane1", CROSSING, has_scale=True, voter_factory=PlateVoter,
                                 camera_roles={"front": "front", "side": "container", "rear": "container"})
        lane.vehicle_on(100.0)
        for code, t, camera in frames:
            lane.add_read(read(code, t, camera=camera, kind="container"))
        lane.vehicle_off(104.0)
        (event,) = lane.tick(106.0)
        assert [c["code"] for c in event.payload()["containers"]] == ["CSQU3054383", "CSQU3054399"]


def test_flush_on_shutdown_keeps_the_crossing_in_progress() -> None:
    lane = scale_lane()
    lane.vehicle_on(100.0)
    lane.add_read(read("01A123BC", 100.5))
    (event,) = lane.flush(101.0)
    assert event.payload()["plate"]["text"] == "01A123BC"
    assert event.payload()["flags"]["no_weighing"] is True


def test_best_reads_crop_is_kept_as_evidence(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path, quota_bytes=10_000_000, retention_s=3600)
    lane = scale_lane(evidence=store.put_image)
    lane.vehicle_on(100.0)
    crop = np.full((48, 200, 3), 230, np.uint8)
    scene = np.full((360, 640, 3), 120, np.uint8)
    lane.add_read(read("01A123BC", 100.5, seq=7), crop=crop, overview=scene)
    lane.add_read(read("01A123BC", 100.8, conf=0.5, seq=8), crop=np.zeros((48, 200, 3), np.uint8),
                  overview=np.zeros((360, 640, 3), np.uint8))
    lane.vehicle_off(104.0)
    (event,) = lane.tick(106.0)
    plate = event.payload()["plate"]
    assert plate["crop_sha256"] is not None and store.get(plate["crop_sha256"])  # matches its hash
    assert plate["frame_seq"] == 7
    overview = store.get(plate["overview_sha256"])
    assert float(cv2.imdecode(np.frombuffer(overview, np.uint8), cv2.IMREAD_GRAYSCALE).mean()) > 100
    assert store.usage().files == 2  # the best read's crop and overview, not the others


def test_screening_hook_failure_does_not_lose_the_event() -> None:
    def broken(_ev: object) -> None:
        raise RuntimeError("watchlist database gone")

    lane = scale_lane(screening=[broken])
    lane.vehicle_on(100.0)
    lane.vehicle_off(101.0)
    assert len(lane.tick(103.0)) == 1
