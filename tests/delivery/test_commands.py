"""Signed commands from HQ: forged, tampered, unsigned, expired, replayed and misaddressed ones are
refused and reported; a valid one runs exactly once, also across a restart and over the real broker."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.broker import BrokerHandle
from edge.commands import CommandProcessor, CommandSigner, main, send_command
from edge.errors import CommandError
from edge.outbox.journal import Journal
from edge.outbox.signing import PostKey, canonical_json
from edge.outbox.uplink import Uplink
from edge.topics import Topics
from tests.conftest import WaitFor
from tests.delivery.harness import broker_section


@pytest.fixture
def setup(tmp_path: Path) -> tuple[CommandSigner, Journal, list[dict[str, Any]], Callable[[], CommandProcessor]]:
    hq_key = PostKey.load_or_create(tmp_path / "hq.key")
    post_key = PostKey.load_or_create(tmp_path / "post.key")
    journal = Journal(tmp_path / "journal.sqlite", post_key, "p1")
    ran: list[dict[str, Any]] = []

    def add(p: dict[str, Any]) -> dict[str, Any]:
        ran.append(p)
        return {"added": len(p["plates"])}

    def make() -> CommandProcessor:
        return CommandProcessor(journal, hq_key.public_b64, "p1", {"watchlist.add": add})

    return CommandSigner(hq_key), journal, ran, make


def _raw(cmd: dict[str, Any]) -> bytes:
    return json.dumps(cmd).encode()


def test_valid_command_runs_once_and_replays_are_refused(tmp_path: Path, setup: Any) -> None:
    signer, journal, ran, make = setup
    proc = make()
    cmd = signer.sign("p1", "watchlist.add", {"plates": ["01A123BC"]})
    first = proc.handle(_raw(cmd))
    assert first["status"] == "done" and first["ok"] and first["result"] == {"added": 1}
    assert ran == [{"plates": ["01A123BC"]}]
    again = proc.handle(_raw(cmd))
    assert again["status"] == "refused" and again["reason"] == "replayed"
    # A restarted post (new processor, reopened journal) still refuses the replay.
    journal.close()
    reopened = Journal(journal.path, journal.key, "p1")
    proc2 = CommandProcessor(reopened, signer.key.public, "p1", {"watchlist.add": lambda p: {"ran": ran.append(p)}})
    assert proc2.handle(_raw(cmd))["reason"] == "replayed"
    assert len(ran) == 1
    assert reopened.command_state(cmd["id"]) == "done"
    # The result is signed by the post.
    body = {k: v for k, v in first.items() if k != "signature"}
    journal.key.public.verify(__import__("base64").b64decode(first["signature"]), canonical_json(body))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        ("forged", "bad_signature"),
        ("tampered", "bad_signature"),
        ("unsigned", "unsigned"),
        ("expired", "expired"),
        ("future", "not_yet_valid"),
        ("wrong_post", "wrong_post"),
        ("garbage", "malformed"),
        ("no_handler", "no_handler"),
    ],
)
def test_bad_commands_refused_with_reason(setup: Any, mutate: str, reason: str) -> None:
    signer, _journal, ran, make = setup
    proc = make()
    raw: bytes
    if mutate == "forged":
        raw = _raw(CommandSigner(PostKey.generate()).sign("p1", "watchlist.add", {"plates": ["X"]}))
    elif mutate == "tampered":
        cmd = signer.sign("p1", "watchlist.add", {"plates": ["01A123BC"]})
        cmd["payload"]["plates"] = ["99Z999ZZ"]
        raw = _raw(cmd)
    elif mutate == "unsigned":
        cmd = signer.sign("p1", "watchlist.add", {"plates": ["X"]})
        del cmd["signature"]
        raw = _raw(cmd)
    elif mutate == "expired":
        raw = _raw(signer.sign("p1", "watchlist.add", {"plates": ["X"]}, issued_at=time.time() - 7200, ttl_s=3600))
    elif mutate == "future":
        raw = _raw(signer.sign("p1", "watchlist.add", {"plates": ["X"]}, issued_at=time.time() + 3600))
    elif mutate == "wrong_post":
        raw = _raw(signer.sign("p2", "watchlist.add", {"plates": ["X"]}))
    elif mutate == "garbage":
        raw = b"\xff{not json"
    else:
        raw = _raw(signer.sign("p1", "diag.run", {}))
    out = proc.handle(raw)
    assert out["status"] == "refused" and out["reason"] == reason, out
    assert ran == []
    assert proc.counts["refused"] == 1


def test_failing_handler_is_reported_not_raised(setup: Any) -> None:
    signer, journal, _ran, make = setup
    proc = make()

    def boom(payload: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("declaration without a plate")

    proc.register("declarations.add", boom)
    cmd = signer.sign("p1", "declarations.add", {"reference": "D1"})
    out = proc.handle(_raw(cmd))
    assert out["status"] == "failed" and "declaration without a plate" in out["error"]
    assert journal.command_state(cmd["id"]) == "failed"
    with pytest.raises(CommandError, match="unknown command type"):
        signer.sign("p1", "rm.rf", {})


def test_commands_over_the_broker(
    tmp_path: Path, mqtt_broker: BrokerHandle, unique_id: Callable[[str], str], wait_for: WaitFor,
    capsys: pytest.CaptureFixture[str],
) -> None:
    post_id = unique_id("post")
    hq_key_path = tmp_path / "hq.key"
    assert main(["--key", str(hq_key_path), "pubkey"]) == 0
    hq_pub = capsys.readouterr().out.strip()
    journal = Journal(tmp_path / "journal.sqlite", PostKey.generate(), post_id)
    ran: list[dict[str, Any]] = []
    def diag(p: dict[str, Any]) -> dict[str, Any]:
        ran.append(p)
        return {"uptime_s": 1}

    proc = CommandProcessor(journal, hq_pub, post_id, {"diag.run": diag})
    uplink = Uplink(broker_section(mqtt_broker.host, mqtt_broker.port, client_id=f"post-{post_id}",
                                   session_expiry_s=60), post_id,
                    journal, on_command=proc)
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_id("listen"), protocol=mqtt.MQTTv5)
    subscribed = threading.Event()

    def on_message(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        with lock:
            results.append(json.loads(m.payload))

    listener.on_message = on_message
    listener.on_subscribe = lambda *a: subscribed.set()
    try:
        listener.connect(mqtt_broker.host, mqtt_broker.port)
        listener.loop_start()
        listener.subscribe(Topics(post_id).cmd_result, qos=1)
        assert subscribed.wait(10)
        uplink.start()
        wait_for(lambda: uplink.status()["subscribed"], what="uplink subscribed to its cmd topic")
        assert main(["--key", str(hq_key_path), "send", "--post", post_id, "--type", "diag.run",
                     "--host", mqtt_broker.host, "--port", str(mqtt_broker.port), "--payload", '{"what":"all"}']) == 0
        cmd = json.loads(capsys.readouterr().out)
        send_command(mqtt_broker.host, mqtt_broker.port, cmd)  # replay
        forged = CommandSigner(PostKey.generate()).sign(post_id, "diag.run", {})
        send_command(mqtt_broker.host, mqtt_broker.port, forged)
        wait_for(lambda: len(results) >= 3, what="three command results")
        by_status = sorted((r["status"], r["reason"]) for r in results)
        assert by_status == [("done", None), ("refused", "bad_signature"), ("refused", "replayed")]
        assert ran == [{"what": "all"}]
    finally:
        uplink.stop()
        listener.disconnect()
        listener.loop_stop()
        journal.close()


def test_a_result_finished_in_the_background_never_overtakes_the_first_answer(tmp_path: Path) -> None:
    # A diagnostics run answers "accepted" at once and its report later, from its own thread. A
    # report quicker than the handler's return had reached HQ first (seen once under load).
    journal = Journal(tmp_path / "journal.sqlite", PostKey.generate(), "p1")
    uplink = Uplink(broker_section("127.0.0.1", 1), "p1", journal)
    worker: list[threading.Thread] = []

    def handler(data: bytes) -> dict[str, Any]:
        t = threading.Thread(target=uplink.publish_command_result, args=({"report": "all well"},))
        t.start()
        worker.append(t)
        time.sleep(0.3)  # the background work is done before the handler returns
        return {"accepted": True}

    uplink.on_command = handler
    try:
        uplink._handle_command(b"{}")
        worker[0].join(5)
        assert [json.loads(data) for _topic, data, _qos, _retain in uplink._outbox] == [
            {"accepted": True}, {"report": "all well"}]
    finally:
        journal.close()
