"""Journal -> uplink -> real broker -> HQ subscriber -> store -> ack -> journal marked delivered."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.broker import BrokerHandle
from edge.errors import ConfigError
from edge.outbox.journal import Journal
from edge.outbox.signing import PostKey
from edge.outbox.uplink import Uplink
from tests.conftest import WaitFor
from tests.delivery.harness import HQ, broker_section, make_hq, make_post


def test_events_reach_hq_in_order_and_are_acked(
    tmp_path: Path, mqtt_broker: BrokerHandle, unique_id: Callable[[str], str], wait_for: WaitFor
) -> None:
    post_id, group = unique_id("post"), unique_id("g")
    hq = make_hq(tmp_path, mqtt_broker.host, mqtt_broker.port, group, watch=post_id)
    post = make_post(tmp_path, post_id, mqtt_broker.host, mqtt_broker.port)
    try:
        hq.sub.start()
        post.uplink.start()
        for i in range(30):
            post.append("lane1" if i % 2 else "lane2", i)
        wait_for(lambda: post.journal.last_ack() == 30, what="HQ ack of all 30 events")
        assert [e["seq"] for e in hq.store.events_in_order(post_id)] == list(range(1, 31))
        assert hq.store.contiguous_seq(post_id) == 30
        assert post.journal.backlog() == (0, None)
        st = post.uplink.status()
        assert st["connected"] and st["last_ack"] == 30 and st["backlog"] == 0 and st["refusals"] == 0
        assert [p["seq"] for p in hq.seen] == list(range(1, 31))
        assert hq.sub.wait_idle(5.0)
        wait_for(lambda: _status(hq, post_id) == "online", what="post online at HQ")
        post.uplink.stop()
        wait_for(lambda: _status(hq, post_id) == "offline", what="post offline at HQ")
    finally:
        post.close()
        hq.close()


def _status(hq: HQ, post_id: str) -> str | None:
    return next((p.status for p in hq.store.posts() if p.post_id == post_id), None)


def test_missing_credentials_fail_at_start_and_secrets_stay_out_of_logs(
    tmp_path: Path, mqtt_broker: BrokerHandle, unique_id: Callable[[str], str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, wait_for: WaitFor,
) -> None:
    post_id = unique_id("post")
    journal = Journal(tmp_path / "j.sqlite", PostKey.generate(), post_id)
    broker = broker_section(mqtt_broker.host, mqtt_broker.port, username={"env": "EDGE_TEST_MQTT_USER"},
                            password={"env": "EDGE_TEST_MQTT_PASS"}, session_expiry_s=60)
    monkeypatch.delenv("EDGE_TEST_MQTT_USER", raising=False)
    monkeypatch.delenv("EDGE_TEST_MQTT_PASS", raising=False)
    with pytest.raises(ConfigError, match=r"EDGE_TEST_MQTT_(USER|PASS) is not set"):
        Uplink(broker, post_id, journal).start()
    # With them set, the (anonymous-allowing) broker accepts; the password never reaches the log.
    monkeypatch.setenv("EDGE_TEST_MQTT_USER", "post-user")
    monkeypatch.setenv("EDGE_TEST_MQTT_PASS", "s3cret-value-123")
    caplog.set_level(logging.DEBUG)
    up = Uplink(broker, post_id, journal)
    try:
        up.start()
        wait_for(lambda: up.connected, what="connected with credentials")
        assert "s3cret-value-123" not in caplog.text and "s3cret-value-123" not in repr(broker)
    finally:
        up.stop()
        journal.close()


def test_stop_is_prompt_while_the_broker_is_unreachable(tmp_path: Path, unique_id: Callable[[str], str]) -> None:
    from edge.broker import free_port

    post_id = unique_id("post")
    post = make_post(tmp_path, post_id, "127.0.0.1", free_port())
    post.uplink.start()
    post.append("lane1")
    st = post.uplink.status()
    assert not st["connected"] and st["backlog"] == 1
    post.close()
    assert post.uplink._thread is None
