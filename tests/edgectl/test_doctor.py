"""``edgectl doctor`` and :func:`edge.diag.run_diagnostics` on a healthy lane and on a broken post."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.scale.simulator import ScaleSimulator
from edge.broker import BrokerHandle, free_port
from edge.config import load_config
from edge.diag import check_names, diag_command_handler, run_diagnostics
from edge.diag.schema import validate
from edge.errors import CommandError, ConfigError
from tests.camera.conftest import MJPEGCamera
from tests.edgectl.conftest import RunCli, check_snapshot, make_journal, wait_until, write_config


@pytest.fixture
def freezing_camera() -> Iterator[MJPEGCamera]:
    """An MJPEG camera that sends a few frames to its first client, then freezes (connection kept)."""
    cam = MJPEGCamera(fps=20.0)
    stop = threading.Event()

    def freeze() -> None:
        if wait_until(lambda: cam.sent >= 5 or stop.is_set(), timeout=60):
            cam.paused.set()

    t = threading.Thread(target=freeze, daemon=True)
    t.start()
    yield cam
    stop.set()
    t.join(5)
    cam.close()


def test_healthy_lane_passes(tmp_path: Path, run_cli: RunCli, scale_sim: Callable[..., ScaleSimulator],
                             mqtt_broker: BrokerHandle, unique_id: Callable[[str], str]) -> None:
    sim = scale_sim("ascii", weight=0.0)
    cfg_path = write_config(tmp_path / "post.toml", post_id=unique_id("post"), data_dir=tmp_path / "data",
                            broker=(mqtt_broker.host, mqtt_broker.port),
                            lanes=[{"id": "lane1", "cameras": [("front", "synthetic://lane1?seed=1&fps=10")],
                                    "scale": (sim.url, "ascii")}])
    make_journal(load_config(cfg_path), 2).close()
    r = run_cli("doctor", "--json", "--config", cfg_path)
    assert r.rc == 0, r.out
    rep = json.loads(r.out)
    validate("doctor", rep)
    by = {c["name"]: c for c in rep["checks"]}
    assert list(by) == ["config", "storage", "controller", "camera:lane1/front", "scale:lane1", "models", "mqtt",
                        "journal"]
    for name in ("config", "camera:lane1/front", "scale:lane1", "models", "mqtt", "journal"):
        assert by[name]["status"] == "pass", by[name]
    assert by["controller"]["status"] == "warn" and "not running" in by["controller"]["reason"]
    assert "ascii" in by["scale:lane1"]["reason"] and "0 kg" in by["scale:lane1"]["reason"]
    assert "2 events" in by["journal"]["reason"]
    assert by["mqtt"]["details"]["rtt_ms"] is not None
    assert rep["summary"]["fail"] == 0 and rep["ok"] is True
    assert "pass camera:lane1/front" in r.err  # progress on stderr, data on stdout


def test_broken_post_names_every_cause(tmp_path: Path, run_cli: RunCli, scale_sim: Callable[..., ScaleSimulator],
                                       password_broker: tuple[BrokerHandle, str, str], freezing_camera: MJPEGCamera,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A stalled camera, a wrong protocol, a dead scale port and a wrong broker password, in one run."""
    broker, user, _password = password_broker
    monkeypatch.setenv("EDGECTL_TEST_MQTT_USER", user)
    (tmp_path / "mqtt-password").write_text("not-the-password\n")
    sim = scale_sim("ascii", weight=0.0)
    dead = f"socket://127.0.0.1:{free_port()}"
    cfg_path = write_config(
        tmp_path / "post.toml", post_id="post-broken", data_dir=tmp_path / "data",
        broker=(broker.host, broker.port),
        broker_extra='username = { env = "EDGECTL_TEST_MQTT_USER" }\n'
                     f'password = {{ file = "{tmp_path / "mqtt-password"}" }}\n',
        lanes=[{"id": "lane1", "cameras": [("front", freezing_camera.url())], "scale": (sim.url, "mettler-continuous")},
               {"id": "lane2", "cameras": [("front", "synthetic://lane2?seed=2&fps=10")], "scale": (dead, "ascii")}])
    r = run_cli("doctor", "--json", "--config", cfg_path, "--check", "config", "--check", "camera",
                "--check", "scale", "--check", "mqtt")
    assert r.rc == 1
    rep = json.loads(r.out)
    validate("doctor", rep)
    by = {c["name"]: c for c in rep["checks"]}
    assert by["camera:lane1/front"]["status"] == "fail"
    assert "stalled" in by["camera:lane1/front"]["reason"]
    assert "s3cret" not in r.out  # the camera's password never reaches the report
    assert by["camera:lane2/front"]["status"] == "pass"
    wrong = by["scale:lane1"]
    assert wrong["status"] == "fail" and "no valid mettler-continuous frame" in wrong["reason"]
    assert "parse as ascii" in wrong["reason"] and 'protocol = "ascii"' in wrong["fix"]
    gone = by["scale:lane2"]
    assert gone["status"] == "fail" and "Connection refused" in gone["reason"] and dead in gone["reason"]
    auth = by["mqtt"]
    assert auth["status"] == "fail" and "wrong user name or password" in auth["reason"]
    assert "EDGECTL_TEST_MQTT_USER" in auth["fix"] and "not-the-password" not in r.out
    assert rep["summary"] == {"pass": 2, "warn": 0, "fail": 4, "skip": 0}


def test_doctor_table_snapshot(tmp_path: Path, run_cli: RunCli) -> None:
    """The human table, for checks whose findings do not depend on timing."""
    cfg_path = write_config(
        tmp_path / "post.toml", post_id="post-snap", data_dir=tmp_path / "data",
        broker=("127.0.0.1", free_port()),
        lanes=[{"id": "lane1", "cameras": [("front", f"file://{tmp_path}/missing.mp4")],
                "scale": (f"socket://127.0.0.1:{free_port()}", "ascii")}])
    r = run_cli("doctor", "--config", cfg_path, "--check", "config", "--check", "camera", "--check", "scale",
                "--check", "mqtt", "--check", "journal")
    assert r.rc == 1
    check_snapshot("doctor_broken.txt", r.out, tmp_path)


def test_invalid_or_missing_config(tmp_path: Path, run_cli: RunCli) -> None:
    r = run_cli("doctor", "--config", tmp_path / "nope.toml")
    assert r.rc == 2 and "no config at" in r.err
    bad = tmp_path / "bad.toml"
    bad.write_text('[post]\nid = "x"\n[storage]\ndata_dir = "d"\n[[lanes]]\nid = "l"\ncameras = []\n')
    r = run_cli("doctor", "--json", "--config", bad)
    assert r.rc == 1
    rep = json.loads(r.out)
    validate("doctor", rep)
    assert rep["checks"][0]["name"] == "config" and "lanes[0].cameras" in rep["checks"][0]["reason"]
    r = run_cli("doctor", "--config", bad.with_name("x.toml"), "--check", "nonsense")
    assert r.rc == 2


def test_run_diagnostics_is_the_diag_run_answer(tmp_path: Path) -> None:
    """The function HQ's ``diag.run`` calls: selected checks only, JSON-serialisable, schema-valid."""
    cfg_path = write_config(tmp_path / "post.toml", post_id="post-api", data_dir=tmp_path / "data",
                            broker=("127.0.0.1", free_port()),
                            lanes=[{"id": "lane1", "cameras": [("front", "synthetic://lane1")], "scale": None}])
    cfg = load_config(cfg_path)
    assert check_names(cfg) == ["config", "storage", "controller", "camera:lane1/front", "models", "mqtt", "journal"]
    rep = run_diagnostics(cfg, ["config", "storage", "journal", "mqtt"])
    validate("doctor", json.loads(json.dumps(rep)))
    assert [c["name"] for c in rep["checks"]] == ["config", "storage", "mqtt", "journal"]
    assert "nothing listens" in rep["checks"][2]["reason"]
    with pytest.raises(ConfigError, match="unknown check"):
        run_diagnostics(cfg, ["scale"])


def test_diag_run_command_handler(tmp_path: Path) -> None:
    cfg_path = write_config(tmp_path / "post.toml", post_id="post-cmd", data_dir=tmp_path / "data",
                            broker=("127.0.0.1", free_port()),
                            lanes=[{"id": "lane1", "cameras": [("front", "synthetic://lane1")], "scale": None}])
    live = {"lanes": [{"lane": "lane1", "cameras": [{"name": "front", "state": "stalled", "width": 1280,
                                                     "height": 720, "fps": 0.0, "last_error": "no new frame"}]}]}
    handle = diag_command_handler(load_config(cfg_path), live_status=lambda: live)
    rep = handle({"checks": ["camera", "config"]})
    validate("doctor", rep)
    cam = rep["checks"][1]
    assert cam["name"] == "camera:lane1/front" and cam["status"] == "fail"
    assert cam["reason"] == "stalled (controller): no new frame"
    with pytest.raises(CommandError, match="checks must be a list"):
        handle({"checks": "camera"})
    with pytest.raises(CommandError, match="unknown check"):
        handle({"checks": ["scale"]})
