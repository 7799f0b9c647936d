"""The broker harness, the MQTT 3.1.1 fallback (amqtt), and PUBACK refusals from a real Mosquitto."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from edge.broker import BrokerHandle, ensure_broker, find_mosquitto, port_open, speaks_mqtt5, start_private_broker
from tests.conftest import WaitFor
from tests.delivery.harness import make_hq, make_post


def test_ensure_broker_uses_the_listening_one(mqtt_broker: BrokerHandle) -> None:
    again = ensure_broker(mqtt_broker.host, mqtt_broker.port)
    assert not again.owned and again.running
    again.stop()  # not ours: a no-op
    assert port_open(mqtt_broker.host, mqtt_broker.port)


def test_private_broker_stops_and_restarts_on_its_port(private_broker: BrokerHandle) -> None:
    assert private_broker.owned and private_broker.running and private_broker.mqtt5 == (
        private_broker.kind == "mosquitto"
    )
    port = private_broker.port
    private_broker.stop()
    assert not port_open(private_broker.host, port)
    private_broker.start()
    assert private_broker.port == port and port_open(private_broker.host, port)


def test_ensure_broker_starts_one_where_none_listens(tmp_path: Path) -> None:
    from edge.broker import free_port

    port = free_port()
    handle = ensure_broker("127.0.0.1", port, data_dir=tmp_path / "b")
    try:
        assert handle.owned and handle.port == port and port_open("127.0.0.1", port)
    finally:
        handle.close()
    assert not port_open("127.0.0.1", port)


def test_delivery_over_embedded_mqtt311_broker(
    tmp_path: Path, unique_id: Callable[[str], str], wait_for: WaitFor
) -> None:
    """A fresh machine without mosquitto: amqtt speaks 3.1.1 only; uplink and HQ negotiate down."""
    pytest.importorskip("amqtt")
    broker = start_private_broker(kind="amqtt", data_dir=tmp_path / "amqtt")
    post_id = unique_id("post")
    hq = make_hq(tmp_path, broker.host, broker.port, unique_id("g"), watch=post_id)
    post = make_post(tmp_path, post_id, broker.host, broker.port)
    try:
        assert not speaks_mqtt5(broker.host, broker.port)
        hq.sub.start()
        assert hq.sub.wait_subscribed(10) and not hq.sub.subscription.startswith("$share")
        post.uplink.start()
        for i in range(10):
            post.append("lane1", i)
        wait_for(lambda: post.journal.last_ack() == 10, what="ack of 10 events over MQTT 3.1.1")
        assert [p["seq"] for p in hq.seen] == list(range(1, 11))
        assert post.uplink.status()["mqtt5"] is False
    finally:
        post.close()
        hq.close()
        broker.close()


@pytest.mark.skipif(find_mosquitto() is None, reason="needs the mosquitto binary for an ACL")
def test_puback_refusal_keeps_the_event_and_alerts(
    tmp_path: Path, unique_id: Callable[[str], str], wait_for: WaitFor, caplog: pytest.LogCaptureFixture
) -> None:
    acl = tmp_path / "acl"
    acl.write_text(
        "topic read customs/v1/#\n"
        "topic write customs/v1/+/events/lane1\n"
        "topic write customs/v1/+/status\n"
        "topic write customs/v1/+/ack\n"
        "topic write customs/v1/+/cmd/result\n"
    )
    broker = start_private_broker(data_dir=tmp_path / "b", kind="mosquitto", extra_conf=f"acl_file {acl}")
    post_id = unique_id("post")
    hq = make_hq(tmp_path, broker.host, broker.port, unique_id("g"), watch=post_id)
    post = make_post(tmp_path, post_id, broker.host, broker.port)
    try:
        hq.sub.start()
        post.uplink.start()
        post.append("lane1", 1)
        post.append("lane2", 2)  # the broker's ACL refuses this lane
        post.append("lane1", 3)
        wait_for(lambda: post.uplink.status()["refusals"] >= 1, what="a PUBACK refusal")
        wait_for(lambda: post.journal.last_ack() == 1, what="ack of seq 1")
        st = post.uplink.status()
        assert st["last_refusal"].startswith("seq 2:") and "authori" in st["last_refusal"].lower()
        assert st["backlog"] == 2 and post.journal.get(2) is not None  # kept, not dropped
        assert any("ALERT" in r.message and "seq 2" in r.getMessage() for r in caplog.records)
        assert hq.store.contiguous_seq(post_id) == 1  # never acknowledged past the refused event
    finally:
        post.close()
        hq.close()
        broker.close()
