"""Every message that crosses the wire validates against its channel's schema.

A real post (journal, uplink, command processor) and a real HQ (subscriber, SQLite store) talk over the
real broker; a sniffer subscribed to the post's whole topic tree checks each message it sees.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge import contract
from edge.broker import BrokerHandle
from edge.commands import CommandProcessor, CommandSigner
from edge.config import BrokerSection
from edge.hq.store import SqliteEventStore
from edge.hq.subscriber import HQSubscriber
from edge.outbox.journal import Journal
from edge.outbox.signing import PostKey
from edge.outbox.uplink import Uplink
from edge.topics import Topics
from tests.conftest import WaitFor
from tests.contract.payloads import full_event

pytestmark = pytest.mark.broker


def kind_of(topics: Topics, topic: str) -> str:
    if topic.startswith(topics.base + "/events/"):
        return "vehicle_event"
    return {topics.status: "status", topics.telemetry: "telemetry", topics.ack: "ack", topics.cmd: "command",
            topics.cmd_result: "command_result", topics.diag_test: "diag_test"}[topic]


class Sniffer:
    def __init__(self, broker: BrokerHandle, topics: Topics) -> None:
        self.seen: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sniff-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = lambda c, u, m: self.seen.append((m.topic, bytes(m.payload)))
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(f"{topics.base}/#", qos=1)
        self.client.loop_start()

    def kinds(self, topics: Topics) -> list[str]:
        return [kind_of(topics, t) for t, p in self.seen if p]


@pytest.fixture
def wire(tmp_path: Path, mqtt_broker: BrokerHandle) -> Iterator[dict[str, Any]]:
    prefix = f"ct{uuid.uuid4().hex[:8]}/v1"
    post_id = "uz-demo-01"
    topics = Topics(post_id, prefix)
    hq_key = PostKey.generate()
    key = PostKey.generate()
    journal = Journal(tmp_path / "journal.sqlite", key, post_id)
    processor = CommandProcessor(journal, hq_key.public_b64, post_id, {"diag.run": lambda p: {"lanes": 1}})
    broker = BrokerSection.model_validate({"host": mqtt_broker.host, "port": mqtt_broker.port, "topic_prefix": prefix,
                                           "client_id": f"post-{prefix}", "session_expiry_s": 60})
    sniffer = Sniffer(mqtt_broker, topics)
    store = SqliteEventStore(tmp_path / "hq.sqlite")
    hq = HQSubscriber(mqtt_broker.host, mqtt_broker.port, store, share_group=None, prefix=prefix,
                      keys={post_id: key.public_b64}, client_id=f"hq-{prefix}", session_expiry_s=60)
    uplink = Uplink(broker, post_id, journal, on_command=processor)
    try:
        yield {"topics": topics, "journal": journal, "uplink": uplink, "hq": hq, "sniffer": sniffer,
               "signer": CommandSigner(hq_key), "store": store}
    finally:
        uplink.stop()
        hq.stop()
        for t in (topics.status, topics.ack):  # no retained leftovers on the shared broker
            sniffer.client.publish(t, b"", qos=1, retain=True).wait_for_publish(5)
        sniffer.client.loop_stop()
        sniffer.client.disconnect()
        store.close()
        journal.close()


def test_everything_on_the_wire_matches_the_contract(wire: dict[str, Any], wait_for: WaitFor) -> None:
    topics: Topics = wire["topics"]
    sniffer: Sniffer = wire["sniffer"]
    hq: HQSubscriber = wire["hq"]
    hq.start(wait_s=10)
    assert hq.wait_subscribed(10)
    for ev in (full_event(post_id="uz-demo-01"), full_event(post_id="uz-demo-01", plate=None, weighing=None)):
        wire["journal"].append(ev.payload())
    wire["uplink"].start()
    wait_for(lambda: wire["journal"].last_ack() == 2, timeout=20, what="HQ to acknowledge both events")

    signer: CommandSigner = wire["signer"]
    good = signer.sign("uz-demo-01", "diag.run", {})
    expired = signer.sign("uz-demo-01", "diag.run", {}, issued_at=time.time() - 7200, ttl_s=60)
    for cmd in (good, expired, good):  # done, refused (expired), refused (replayed)
        sniffer.client.publish(topics.cmd, json.dumps(cmd), qos=1).wait_for_publish(5)
    wait_for(lambda: sniffer.kinds(topics).count("command_result") >= 3, timeout=20, what="three command results")
    wire["uplink"].stop()
    wait_for(lambda: any(t == topics.status and b'"offline"' in p for t, p in sniffer.seen), timeout=10,
             what="the offline status")

    kinds = sniffer.kinds(topics)
    assert {"vehicle_event", "status", "ack", "command", "command_result"} <= set(kinds), kinds
    failures = []
    for t, data in sniffer.seen:
        if not data:
            continue
        try:
            contract.validate(kind_of(topics, t), json.loads(data))
        except contract.ContractError as err:
            failures.append(f"{t}: {err}")
    assert not failures, "\n".join(failures)
    results = [json.loads(p) for t, p in sniffer.seen if t == topics.cmd_result]
    assert [(r["status"], r["reason"]) for r in results] == [("done", None), ("refused", "expired"),
                                                              ("refused", "replayed")]
