"""A whole post on real parts: synthetic camera frames and simulated scale bytes in, events out at HQ.

The scale simulator speaks the ``ascii`` indicator protocol on a real pseudo-terminal; the camera is
the synthetic scene drawing the same traffic; plates are read by the ONNX models; events go through
the journal and a real Mosquitto to the HQ subscriber (and a plain paho subscriber beside it).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from drivers.scale.simulator import ScaleSimulator
from drivers.sim.traffic import Traffic
from edge.broker import BrokerHandle
from edge.config import PostConfig, parse_config
from edge.controller import PostController
from edge.hq.store import SqliteEventStore
from edge.hq.subscriber import HQSubscriber
from edge.topics import Topics

pytestmark = pytest.mark.slow

TIMING = {"period_s": 9.0, "drive_in_s": 2.0, "dwell_s": 4.0, "drive_out_s": 1.5}


def post_config(post_id: str, data_dir: Path, broker: BrokerHandle, lanes: list[dict[str, Any]]) -> PostConfig:
    return parse_config({
        "post": {"id": post_id},
        "storage": {"data_dir": str(data_dir)},
        "broker": {"host": broker.host, "port": broker.port, "ack_timeout_s": 5},
        "recognition": {"threads": 2},
        "lanes": [
            {
                "id": lane["id"],
                "cameras": [{"name": "front", "url": lane["camera"], "read_fps": 3,
                             "roi": [0.1, 0.25, 0.8, 0.75]}],
                "scale": {"url": lane["scale"], "protocol": "ascii"},
                "crossing": {"pre_roll_s": 3, "post_roll_s": 0.5},
            }
            for lane in lanes
        ],
    })


@dataclass
class Post:
    controller: PostController
    traffic: Traffic
    store: SqliteEventStore
    hq: HQSubscriber
    raw: list[dict[str, Any]]


@pytest.fixture
def make_post(tmp_path: Path, unique_id: Any) -> Iterator[Any]:
    started: list[Any] = []

    def make(broker: BrokerHandle, count: int) -> Post:
        post_id = unique_id("post")
        epoch = time.time() + 4.0
        traffic = Traffic(11, epoch, count=count, **TIMING)
        sim = ScaleSimulator("ascii", traffic, transport="pty", seed=11)
        sim.start()
        started.append(sim.stop)
        camera = (f"synthetic://lane1?seed=11&epoch={epoch}&period={TIMING['period_s']}"
                  f"&drive_in={TIMING['drive_in_s']}&dwell={TIMING['dwell_s']}"
                  f"&drive_out={TIMING['drive_out_s']}&count={count}")
        cfg = post_config(post_id, tmp_path / "post", broker,
                          [{"id": "lane1", "camera": camera, "scale": sim.device_path}])

        raw: list[dict[str, Any]] = []
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{post_id}",
                             protocol=mqtt.MQTTv5)
        client.on_message = lambda _c, _u, msg: raw.append(json.loads(msg.payload))
        subscribed = threading.Event()
        client.on_subscribe = lambda *_a: subscribed.set()
        client.connect(broker.host, broker.port)
        client.subscribe(Topics(post_id).events_all, qos=1)
        client.loop_start()
        assert subscribed.wait(10)
        started.append(lambda: (client.disconnect(), client.loop_stop()))

        controller = PostController(cfg)
        store = SqliteEventStore(tmp_path / "hq.sqlite")
        hq = HQSubscriber(broker.host, broker.port, store, share_group=unique_id("hq"),
                          keys={post_id: controller.key.public})
        hq.start()
        started.append(lambda: (hq.stop(), store.close()))
        controller.start()
        started.append(controller.stop)
        return Post(controller, traffic, store, hq, raw)

    yield make
    for stop in reversed(started):
        try:
            stop()
        except Exception:  # teardown must stop everything it can
            pass


def events_in_store(post: Post) -> list[dict[str, Any]]:
    return post.store.recent(post.controller.post_id, limit=100)


def check_one_event_per_vehicle(events: list[dict[str, Any]], traffic: Traffic, count: int) -> None:
    expected = [traffic.vehicle(i) for i in range(count)]
    assert [e["plate"]["text"] if e["plate"] else None for e in events] == [v.plate for v in expected]
    for event, vehicle in zip(events, expected, strict=True):
        assert event["weighing"] is not None, event
        assert abs(event["weighing"]["gross"] - vehicle.gross_kg) <= 20
        assert event["flags"]["unreadable_plate"] is False
    assert [e["seq"] for e in events] == list(range(1, count + 1))


def sorted_by_seq(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: e["seq"])


def test_one_event_per_truck_reaches_hq(private_broker: BrokerHandle, make_post: Any, wait_for: Any) -> None:
    count = 3
    post = make_post(private_broker, count)
    wait_for(lambda: len(events_in_store(post)) >= count, timeout=count * 9 + 40, what="three events at HQ")
    wait_for(lambda: post.controller.journal.backlog()[0] == 0, timeout=15, what="HQ's ack at the post")
    time.sleep(1.0)  # nothing more may arrive: the lane is empty now
    events = sorted_by_seq(events_in_store(post))
    check_one_event_per_vehicle(events, post.traffic, count)
    # The plain MQTT subscriber saw exactly the same events, once each.
    assert sorted(e["event_id"] for e in post.raw) == sorted(e["event_id"] for e in events)


def test_broker_outage_loses_and_duplicates_nothing(private_broker: BrokerHandle, make_post: Any,
                                                    wait_for: Any) -> None:
    count = 4
    post = make_post(private_broker, count)
    wait_for(lambda: len(events_in_store(post)) >= 1, timeout=60, what="the first event at HQ")
    private_broker.stop()
    # Trucks keep crossing while the broker is away: their events wait in the journal.
    outage_started = time.time()
    wait_for(lambda: post.controller.journal.backlog()[0] >= 1, timeout=40, what="an event held during the outage")
    assert time.time() - outage_started < 40
    private_broker.start()
    wait_for(lambda: len(events_in_store(post)) >= count, timeout=count * 9 + 40, what="all events at HQ")
    wait_for(lambda: post.controller.journal.backlog()[0] == 0, timeout=20, what="the backlog drained")
    events = sorted_by_seq(events_in_store(post))
    check_one_event_per_vehicle(events, post.traffic, count)
    assert post.store.missing_seqs(post.controller.post_id) == []
