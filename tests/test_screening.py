"""Watchlist and expected arrivals: set by signed HQ commands, kept on disk, applied to every crossing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.commands import CommandSigner, send_command
from edge.config import parse_config
from edge.contract import validate
from edge.controller import PostController
from edge.errors import CommandError
from edge.events import VehicleEvent
from edge.lane.screening import Declarations, Watchlist
from edge.outbox.signing import PostKey
from edge.plates import plate_key
from edge.topics import Topics


def event(text: str | None, gross: float | None = None) -> VehicleEvent:
    plate = None if text is None else {"text": text, "display": text}
    weighing = None if gross is None else {"gross": gross, "unit": "kg"}
    return VehicleEvent(post_id="uz-01", lane_id="lane1", first_seen=1000.0, left_at=1010.0,
                        plate=plate, weighing=weighing)


def test_plate_key_folds_only_the_classic_confusions() -> None:
    assert plate_key("01 A 123 BC") == plate_key("O1A123BC") == plate_key("01-a-l23-bc".replace("l", "1"))
    assert plate_key("01A123BC") != plate_key("01A123BD")


def test_watchlist_flags_a_hit_and_survives_a_restart(tmp_path: Path) -> None:
    wl = Watchlist(tmp_path / "watchlist.json")
    assert wl.add({"plates": ["01 A 123 BC"]}) == {"watchlist": 1}
    ev = event("O1A123BC")  # read with the letter O: still the watched truck
    wl.screen(ev)
    assert ev.payload()["flags"]["watchlist_hit"] is True
    again = Watchlist(tmp_path / "watchlist.json")
    other = event("10B456CD")
    again.screen(other)
    assert len(again) == 1 and other.payload()["flags"]["watchlist_hit"] is False
    with pytest.raises(CommandError, match="plates"):
        wl.set({"plates": "01A123BC"})


def test_declared_weight_mismatch_is_flagged_within_tolerance_rules(tmp_path: Path) -> None:
    decl = Declarations(tmp_path / "d.json", tolerance_pct=5.0, tolerance_kg=300.0)
    decl.add({"declarations": [{"plate": "01A123BC", "declared_gross": 20000, "reference": "UZ-2026-1"}]})
    near, far, unknown = event("01A123BC", 20900), event("01A123BC", 23000), event("10B456CD", 5000)
    for ev in (near, far, unknown):
        decl.screen(ev)
    assert near.payload()["flags"]["weight_mismatch"] is False
    assert near.payload()["declaration"] == {"reference": "UZ-2026-1", "declared_gross": 20000.0, "unit": "kg"}
    assert far.payload()["flags"]["weight_mismatch"] is True
    assert unknown.payload()["declaration"] is None
    with pytest.raises(CommandError, match=r"declarations\[0\]"):
        decl.add({"declarations": [{"plate": "X", "reference": "r"}]})


def test_signed_commands_reach_the_lists_through_the_controller(tmp_path: Path) -> None:
    hq_key = PostKey.generate()
    cfg = parse_config({
        "post": {"id": "uz-cmd-01"},
        "storage": {"data_dir": str(tmp_path / "post")},
        "commands": {"hq_public_key": hq_key.public_b64},
        "lanes": [{"id": "lane1", "cameras": [{"name": "front", "url": "synthetic://lane1"}]}],
    })
    controller = PostController(cfg, connect=False)
    try:
        assert controller.commands is not None
        signer = CommandSigner(hq_key)
        cmd = signer.sign("uz-cmd-01", "watchlist.add", {"plates": ["01A123BC"]})
        result = controller.commands.handle(json.dumps(cmd).encode())
        assert result["status"] == "done", result
        assert controller.watchlist.hit("01A123BC")
        forged = signer.sign("uz-cmd-01", "watchlist.set", {"plates": []})
        forged["payload"] = {"plates": ["99Z999ZZ"]}
        refused = controller.commands.handle(json.dumps(forged).encode())
        assert refused["status"] == "refused" and "signature" in json.dumps(refused)
        assert len(controller.watchlist) == 1
        decl = signer.sign("uz-cmd-01", "declarations.add",
                           {"declarations": [{"plate": "01A123BC", "declared_gross": 1000, "reference": "R1"}]})
        assert controller.commands.handle(json.dumps(decl).encode())["status"] == "done"
        assert len(controller.declarations) == 1
        validate("telemetry", controller.telemetry())
    finally:
        controller.stop()


def test_diagnostics_requested_by_hq_are_answered_over_mqtt(tmp_path: Path, mqtt_broker: Any, unique_id: Any,
                                                           wait_for: Any) -> None:
    hq_key = PostKey.generate()
    post_id = unique_id("post")
    cfg = parse_config({
        "post": {"id": post_id},
        "storage": {"data_dir": str(tmp_path / "post")},
        "broker": {"host": mqtt_broker.host, "port": mqtt_broker.port},
        "commands": {"hq_public_key": hq_key.public_b64},
        "lanes": [{"id": "lane1", "cameras": [{"name": "front", "url": "synthetic://lane1"}]}],
    })
    results: list[dict[str, Any]] = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"w-{post_id}", protocol=mqtt.MQTTv5)
    watcher.on_message = lambda _c, _u, msg: results.append(json.loads(msg.payload))
    watcher.connect(mqtt_broker.host, mqtt_broker.port)
    watcher.subscribe(Topics(post_id).cmd_result, qos=1)
    watcher.loop_start()
    controller = PostController(cfg)
    assert controller.uplink is not None
    controller.uplink.start()
    try:
        wait_for(lambda: controller.uplink is not None and controller.uplink.status()["subscribed"], timeout=15,
                 what="the uplink subscribed to its commands")
        cmd = CommandSigner(hq_key).sign(post_id, "diag.run", {"checks": ["config", "storage"]})
        send_command(mqtt_broker.host, mqtt_broker.port, cmd)
        wait_for(lambda: len(results) >= 2, timeout=30, what="the acceptance and the report")
        accepted, answer = results[0], results[1]
        assert accepted["id"] == answer["id"] == cmd["id"]
        assert accepted["status"] == "done" and accepted["result"]["accepted"] is True
        report = answer["result"]["report"]
        assert report["schema"] == "customs.diag_report/1" and report["post_id"] == post_id
        assert {c["name"] for c in report["checks"]} == {"config", "storage"}
        validate("command_result", answer)
    finally:
        controller.stop()
        watcher.disconnect()
        watcher.loop_stop()
