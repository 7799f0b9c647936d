"""Shared fixtures: real MQTT brokers for every test that needs one.

``mqtt_broker`` is the session's broker: the Mosquitto on 127.0.0.1:1883 when it answers (our CI
machines), else one started for the session. ``private_broker`` is a test's own Mosquitto on a free
port (amqtt where no mosquitto binary exists) that the test may stop, kill and start again: use it for
outage tests, never stop the shared one. On the shared broker use unique post ids and share groups
(``unique_id``) so concurrent test runs do not see each other's retained acks or split each other's
messages.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.broker import BrokerHandle, ensure_broker, find_mosquitto, port_open, start_private_broker
from edge.topics import Topics

WaitFor = Callable[..., None]


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[BrokerHandle]:
    handle = ensure_broker("127.0.0.1", 1883)
    yield handle
    handle.close()


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[BrokerHandle]:
    handle = start_private_broker(
        "127.0.0.1", data_dir=tmp_path / "broker", kind="mosquitto" if find_mosquitto() else "amqtt"
    )
    yield handle
    handle.close()


def clear_retained_posts(host: str, port: int, post_ids: list[str]) -> None:
    """Remove posts' retained status and ack messages (tests must not litter the shared broker)."""
    if not post_ids or not port_open(host, port):
        return
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"clear-{uuid.uuid4().hex[:8]}")
    try:
        c.connect(host, port)
        c.loop_start()
        for post_id in post_ids:
            topics = Topics(post_id)
            for t in (topics.status, topics.ack):
                c.publish(t, b"", qos=1, retain=True).wait_for_publish(5)
    except (OSError, RuntimeError, ValueError):
        pass
    finally:
        c.disconnect()
        c.loop_stop()


@pytest.fixture
def unique_id() -> Iterator[Callable[[str], str]]:
    """``unique_id("post")`` -> ``post-1a2b3c4d``: ids that cannot collide on a shared broker.

    At teardown the retained status and ack of every id made here are removed from 127.0.0.1:1883.
    """
    made: list[str] = []

    def make(prefix: str) -> str:
        made.append(f"{prefix}-{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield make
    clear_retained_posts("127.0.0.1", 1883, [m for m in made if m.startswith("post")])


def _wait_for(cond: Callable[[], object], timeout: float = 20.0, what: str = "condition",
              interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def wait_for() -> WaitFor:
    """``wait_for(lambda: cond, timeout=20, what="...")``: poll a condition instead of sleeping."""
    return _wait_for
