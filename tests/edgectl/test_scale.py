"""``edgectl scale ...`` against the indicator simulator on real pseudo-terminals and TCP sockets."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from drivers.scale.simulator import ScaleSimulator
from edge.broker import free_port
from edge.diag.schema import validate
from tests.edgectl.conftest import RunCli, write_config


def _cfg(tmp_path: Path, url: str, protocol: str) -> Path:
    return write_config(tmp_path / "post.toml", post_id="post-scale", data_dir=tmp_path / "data",
                        lanes=[{"id": "lane1", "cameras": [("front", "synthetic://lane1")], "scale": (url, protocol)}])


def test_detect_finds_the_protocol_on_a_pty(run_cli: RunCli, scale_sim: Callable[..., ScaleSimulator]) -> None:
    sim = scale_sim("mettler-continuous", transport="pty", weight=12340.0)
    r = run_cli("scale", "detect", sim.device_path, "--json")
    assert r.rc == 0, r.out
    d = json.loads(r.out)
    validate("scale_detect", d)
    assert d["detected"]["protocol"] in ("mettler-continuous", "mettler-continuous-checksum")
    assert d["baud_applies"] is False  # a pty has no baud rate
    assert {m["protocol"] for m in d["matches"]} <= {"mettler-continuous", "mettler-continuous-checksum"}
    sim2 = scale_sim("ascii", weight=500.0)
    r = run_cli("scale", "detect", sim2.url)
    assert r.rc == 0 and f"{sim2.url} speaks ascii" in r.out and '[scale] protocol = "ascii"' in r.out


def test_detect_polled_indicator(run_cli: RunCli, scale_sim: Callable[..., ScaleSimulator]) -> None:
    sim = scale_sim("mt-sics", weight=800.0)
    r = run_cli("scale", "detect", sim.url, "--json")
    assert r.rc == 0, r.out
    assert json.loads(r.out)["detected"]["protocol"] in ("mt-sics", "mt-sics-stream")


def test_detect_silent_line(run_cli: RunCli, scale_sim: Callable[..., ScaleSimulator]) -> None:
    sim = scale_sim("ascii", transport="pty", weight=100.0)
    sim.disconnect(60.0, "silent")  # the pty stays, the indicator says nothing
    r = run_cli("scale", "detect", sim.device_path, "--listen", "0.5")
    assert r.rc == 1 and "stayed silent" in r.out


def test_detect_dead_port(tmp_path: Path, run_cli: RunCli) -> None:
    r = run_cli("scale", "detect", str(tmp_path / "ttyUSB9"))
    assert r.rc == 1 and "cannot open" in r.out and "no such device" in r.out
    r = run_cli("scale", "detect", f"socket://127.0.0.1:{free_port()}", "--json")
    assert r.rc == 1
    d = json.loads(r.out)
    validate("scale_detect", d)
    assert "Connection refused" in d["error"]


def test_watch_prints_readings_with_flags(tmp_path: Path, run_cli: RunCli,
                                          scale_sim: Callable[..., ScaleSimulator]) -> None:
    sim = scale_sim("ascii", weight=23450.0)
    cfg = _cfg(tmp_path, sim.url, "ascii")
    r = run_cli("scale", "watch", "--config", cfg, "--count", "4", "--json")
    assert r.rc == 0, r.err
    lines = [json.loads(x) for x in r.out.splitlines()]
    for line in lines:
        validate("scale_watch_line", line)
    readings = [x for x in lines if x["type"] == "reading"]
    assert len(readings) == 4 and {x["weight"] for x in readings} == {23450.0}
    assert all(x["flags"].startswith("ST") for x in readings[1:])
    r = run_cli("scale", "watch", "--config", cfg, "--count", "2")
    assert r.rc == 0 and "23450 kg  ST" in r.out


def test_watch_wrong_protocol_names_the_right_one(tmp_path: Path, run_cli: RunCli,
                                                  scale_sim: Callable[..., ScaleSimulator]) -> None:
    sim = scale_sim("ascii", weight=23450.0)
    cfg = _cfg(tmp_path, sim.url, "mettler-continuous")
    r = run_cli("scale", "watch", "--config", cfg, "--seconds", "1", "--json")
    assert r.rc == 1
    lines = [json.loads(x) for x in r.out.splitlines()]
    for line in lines:
        validate("scale_watch_line", line)
    assert lines[-1]["type"] == "error" and "no valid mettler-continuous frame" in lines[-1]["reason"]
    assert "the bytes parse as ascii" in r.err
    assert any(x["type"] == "faults" for x in lines)


def test_check_empty_platform_passes_and_bad_zero_fails(tmp_path: Path, run_cli: RunCli,
                                                        scale_sim: Callable[..., ScaleSimulator]) -> None:
    sim = scale_sim("ascii", weight=0.0)
    cfg = _cfg(tmp_path, sim.url, "ascii")
    r = run_cli("scale", "check", "--config", cfg, "--seconds", "1.5", "--json")
    assert r.rc == 0, r.out
    c = json.loads(r.out)
    validate("scale_check", c)
    assert c["status"] == "pass" and c["zero"] == 0 and c["valid"] >= 10 and c["drift_per_min"] == 0
    assert "[########################################]" in r.err  # the progress bar, on stderr
    sim.set_zero_offset(200.0)
    time.sleep(2 * sim.filter_s)  # the indicator's filter settles on the new zero, as a real one does
    r = run_cli("scale", "check", "--config", cfg, "--seconds", "1.5")
    assert r.rc == 1
    assert "FAIL  zero is off by +200 kg (tolerance 40)" in r.out
    assert "zero the indicator" in r.out


def test_check_dead_port_fails(tmp_path: Path, run_cli: RunCli) -> None:
    cfg = _cfg(tmp_path, f"socket://127.0.0.1:{free_port()}", "ascii")
    r = run_cli("scale", "check", "--config", cfg, "--seconds", "1", "--json")
    assert r.rc == 1
    c = json.loads(r.out)
    validate("scale_check", c)
    assert "Connection refused" in c["findings"][0]["reason"]


def test_list_ports(run_cli: RunCli) -> None:
    import serial.tools.list_ports

    r = run_cli("scale", "list", "--json")
    assert r.rc == 0
    data = json.loads(r.out)
    validate("scale_list", data)
    assert sorted(p["device"] for p in data["ports"]) == sorted(p.device for p in serial.tools.list_ports.comports())


def test_simulate_serves_what_watch_reads(tmp_path: Path, run_cli: RunCli) -> None:
    """``edgectl scale simulate`` (the console script) prints its URL; ``scale watch --url`` reads it."""
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli.edgectl", "scale", "simulate", "--protocol", "ascii",
                             "--tcp", "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("socket://127.0.0.1:")
        proc.stdin.write("weight 4200\n")
        proc.stdin.flush()
        r = run_cli("scale", "watch", "--url", url, "--protocol", "ascii", "--count", "30", "--json")
        assert r.rc == 0
        weights = [json.loads(x)["weight"] for x in r.out.splitlines()]
        assert weights[-1] == 4200.0
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
