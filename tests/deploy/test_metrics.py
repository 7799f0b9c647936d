"""The metrics endpoint, scraped over real HTTP and parsed as Prometheus text format."""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from drivers.camera.base import CameraHealth, CameraState
from drivers.scale.base import ScaleHealth
from edge.errors import ConfigError
from edge.service.metrics import CONTENT_TYPE, MetricsServer, figures_from_status, render

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$')


def parse(text: str) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    """A strict reader of the exposition format: any malformed line fails the test."""
    assert text.endswith("\n")
    out: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    typed: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("gauge", "counter")
            assert name not in typed, f"{name} typed twice"
            typed[name] = kind
            continue
        m = _SAMPLE.match(line)
        assert m, f"malformed line: {line!r}"
        name, labels, value = m.group(1), m.group(2), m.group(3)
        assert name in typed, f"{name} has no TYPE line before it"
        pairs = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or ""))
        out.setdefault(name, {})[pairs] = float(value)
    return out


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


def lanes() -> Mapping[str, Any]:
    return {
        "lane_fps": [({"lane": "1", "camera": "front"}, 4.9), ({"lane": "1", "camera": "rear"}, 0.0)],
        "camera_up": [({"lane": "1", "camera": "front"}, True), ({"lane": "1", "camera": "rear"}, False)],
        "lane_read_rate": [({"lane": "1"}, 0.93)],
        "backlog_events": 12,
        "events_total": [({"lane": "1"}, 1042)],
        "broker_connected": None,
        "weird name!": [({"note": 'quote " and \\ and\nnewline'}, 1)],
    }


def test_scrape_over_http(tmp_path: Path) -> None:
    with MetricsServer(0, lanes, disk_paths=[tmp_path]) as srv:
        assert srv.port > 0
        code, ctype, body = get(srv.url)
        assert (code, ctype) == (200, CONTENT_TYPE)
        m = parse(body)
        assert m["customs_edge_lane_fps"][frozenset({("lane", "1"), ("camera", "front")})] == 4.9
        assert m["customs_edge_camera_up"][frozenset({("lane", "1"), ("camera", "rear")})] == 0
        assert m["customs_edge_camera_up"][frozenset({("lane", "1"), ("camera", "front")})] == 1
        assert m["customs_edge_backlog_events"][frozenset()] == 12
        assert m["customs_edge_events_total"][frozenset({("lane", "1")})] == 1042
        assert "# TYPE customs_edge_events_total counter" in body
        assert "customs_edge_broker_connected" not in m  # None: not known, not exported as 0
        assert m["customs_edge_provider_up"][frozenset()] == 1
        assert m["customs_edge_cpu_count"][frozenset()] >= 1
        assert m["customs_edge_process_cpu_seconds_total"][frozenset()] > 0
        free = m["customs_edge_disk_free_bytes"][frozenset({("path", str(tmp_path))})]
        total = m["customs_edge_disk_total_bytes"][frozenset({("path", str(tmp_path))})]
        assert 0 < free <= total
        assert 'note="quote \\" and \\\\ and\\nnewline"' in body
        assert "customs_edge_weird_name_" in m

        assert get(f"http://127.0.0.1:{srv.port}/nope")[0] == 404
        assert get(f"http://127.0.0.1:{srv.port}/")[0] == 200
        assert srv.scrapes == 1
    # Stopped: the port is closed again.
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", srv.port), timeout=2):
        pass


def test_failing_provider_still_serves_process_figures(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Mapping[str, Any]:
        raise RuntimeError("controller state torn")

    with MetricsServer(0, broken) as srv:
        code, _, body = get(srv.url)
    assert code == 200
    m = parse(body)
    assert m["customs_edge_provider_up"][frozenset()] == 0
    assert "customs_edge_cpu_load1" in m
    assert "metrics provider failed" in caplog.text


@pytest.mark.parametrize("host", ["0.0.0.0", "10.20.30.40", "::", "192.168.1.1"])
def test_non_loopback_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="loopback only"):
        MetricsServer(0, lanes, host=host)


def test_localhost_name_is_allowed() -> None:
    with MetricsServer(0, lanes, host="localhost") as srv:
        assert get(f"http://127.0.0.1:{srv.port}/metrics")[0] == 200


def test_port_in_use_is_a_clear_error() -> None:
    with MetricsServer(0, lanes) as first:
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{first.port}"):
            MetricsServer(first.port, lanes).start()


def test_render_drops_unusable_values() -> None:
    text = render({"a": "string", "b": [("not a pair",)], "c": [({"x": "1"}, float("nan"))], "d": 2.5})
    assert "customs_edge_a" not in text and "customs_edge_b" not in text
    assert 'customs_edge_c{x="1"} NaN' in text
    assert "customs_edge_d 2.5" in text


def controller_status() -> dict[str, Any]:
    """The shape of PostController.status(), built from the drivers' own health types."""
    front = CameraHealth("front", "rtsp://***@10.0.0.5/1", CameraState.STREAMING, fps=4.8, frames=900, dropped=3)
    rear = CameraHealth("rear", "rtsp://10.0.0.6/1", CameraState.STALLED, fps=0.0, frames=10, reconnects=2)
    scale = ScaleHealth("/dev/scale-lane1", "ascii", True, readings=5000, faults=2)
    return {
        "post_id": "uz-test-01",
        "uptime_s": 3600.5,
        "lanes": [
            {
                "lane": "lane1",
                "cameras": [front.as_dict(), rear.as_dict()],
                "scale": scale.as_dict(),
                "stats": {
                    "frames_read": 800,
                    "frames_skipped": 5,
                    "plates": 200,
                    "events": 40,
                    "weighings": 41,
                    "alarms": 1,
                    "read_ms_last": 85.5,
                },
                "alarms": [],
                "alive": True,
            },
            {"lane": "lane2", "cameras": [], "scale": None, "stats": {"frames_read": 0, "plates": 0}, "alive": False},
        ],
        "backlog": {"events": 12, "oldest_age_s": None, "unsaved": 0},
        "uplink": {"connected": False, "refusals": 1, "resends": 0, "reconnects": 4},
    }


def test_controller_status_becomes_metrics() -> None:
    with MetricsServer(0, lambda: figures_from_status(controller_status())) as srv:
        code, _, body = get(srv.url)
    assert code == 200
    m = parse(body)
    front = frozenset({("lane", "lane1"), ("camera", "front")})
    rear = frozenset({("lane", "lane1"), ("camera", "rear")})
    lane1, lane2 = frozenset({("lane", "lane1")}), frozenset({("lane", "lane2")})
    assert m["customs_edge_lane_fps"] == {front: 4.8, rear: 0.0}
    assert m["customs_edge_camera_up"] == {front: 1, rear: 0}
    assert m["customs_edge_camera_reconnects_total"][rear] == 2
    assert m["customs_edge_lane_up"] == {lane1: 1, lane2: 0}
    assert m["customs_edge_lane_read_rate"] == {lane1: 0.25}  # lane2 read nothing: no rate, not 0/0
    assert m["customs_edge_scale_up"] == {lane1: 1}
    assert m["customs_edge_scale_faults_total"][lane1] == 2
    assert m["customs_edge_backlog_events"][frozenset()] == 12
    assert "customs_edge_oldest_unacked_age_seconds" not in m  # None: nothing unacked
    assert m["customs_edge_broker_connected"][frozenset()] == 0
    assert m["customs_edge_uplink_refusals_total"][frozenset()] == 1
    assert m["customs_edge_uptime_seconds"][frozenset()] == 3600.5
    assert "# TYPE customs_edge_lane_events_total counter" in body


def test_status_with_missing_parts_is_fine() -> None:
    assert figures_from_status({}) == {}
    assert figures_from_status({"lanes": ["junk", {"lane": "x"}], "uplink": None}) == {}
