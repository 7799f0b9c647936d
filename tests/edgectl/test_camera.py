"""``edgectl camera probe`` / ``camera list`` against real streams: the synthetic lane, an MJPEG camera
that freezes, a video file that ends."""

from __future__ import annotations

import glob
import json
import re
from pathlib import Path

import cv2

from edge.broker import free_port
from edge.diag.schema import validate
from tests.camera.conftest import MJPEGCamera, write_video
from tests.edgectl.conftest import RunCli, wait_until, write_config


def test_probe_synthetic_camera_by_name(tmp_path: Path, run_cli: RunCli) -> None:
    cfg = write_config(tmp_path / "post.toml", post_id="post-cam", data_dir=tmp_path / "data",
                       broker=("127.0.0.1", free_port()),
                       lanes=[{"id": "lane1", "cameras": [("front", "synthetic://lane1?seed=3&fps=10")]}])
    snap = tmp_path / "snap.jpg"
    r = run_cli("camera", "probe", "lane1/front", "--config", cfg, "--seconds", "2", "--snapshot", snap, "--json")
    assert r.rc == 0, r.out + r.err
    p = json.loads(r.out)
    validate("camera_probe", p)
    assert (p["name"], p["state"], p["width"], p["height"], p["status"]) == ("lane1/front", "streaming", 1280, 720,
                                                                              "pass")
    assert 6 < p["fps"] < 14
    img = cv2.imread(str(snap))
    assert img is not None and img.shape == (720, 1280, 3)
    # Human form of the same probe by the camera's bare name.
    r = run_cli("camera", "probe", "front", "--config", cfg, "--seconds", "1", "--no-snapshot", "--no-read")
    assert r.rc == 0
    assert re.search(r"^resolution:\s+1280x720$", r.out, re.M) and "PASS  streaming" in r.out
    assert "not read (--no-read)" in r.out


def test_probe_frozen_mjpeg_camera_fails_as_stalled(run_cli: RunCli) -> None:
    cam = MJPEGCamera(fps=20.0)
    try:
        import threading

        def freeze() -> None:
            if wait_until(lambda: cam.sent >= 5, timeout=30):
                cam.paused.set()

        threading.Thread(target=freeze, daemon=True).start()
        r = run_cli("camera", "probe", cam.url(), "--seconds", "2", "--no-snapshot", "--no-read", "--json")
    finally:
        cam.close()
    assert r.rc == 1
    p = json.loads(r.out)
    validate("camera_probe", p)
    assert p["state"] == "stalled" and p["status"] == "fail"
    assert "stalled: no new frame" in p["findings"][0]["reason"]
    assert cam.password not in r.out and p["url"].startswith("http://***@127.0.0.1:")


def test_probe_wrong_password_and_unreachable_name_the_cause(run_cli: RunCli) -> None:
    cam = MJPEGCamera()
    try:
        r = run_cli("camera", "probe", cam.url(password="wrong"), "--seconds", "1", "--no-snapshot", "--no-read",
                    "--open-timeout", "3")
    finally:
        cam.close()
    assert r.rc == 1 and "401" in r.out and "wrong" not in r.out
    r = run_cli("camera", "probe", f"rtsp://127.0.0.1:{free_port()}/x", "--seconds", "1", "--no-snapshot",
                "--no-read", "--open-timeout", "2", "--json")
    assert r.rc == 1
    p = json.loads(r.out)
    validate("camera_probe", p)
    assert "Connection refused" in p["reason"]


def test_probe_video_file_that_ends(tmp_path: Path, run_cli: RunCli) -> None:
    video = write_video(tmp_path / "short.avi", frames=8, fps=25.0)
    r = run_cli("camera", "probe", f"file://{video}", "--seconds", "2", "--no-snapshot", "--no-read")
    assert r.rc == 1
    assert "FAIL  the stream ended after" in r.out and "loop=1" in r.out


def test_probe_bad_usage_cannot_run(tmp_path: Path, run_cli: RunCli) -> None:
    assert run_cli("camera", "probe", "ftp://x/y", "--no-read").rc == 2
    cfg = write_config(tmp_path / "post.toml", post_id="post-cam", data_dir=tmp_path / "data",
                       lanes=[{"id": "lane1", "cameras": [("front", "synthetic://lane1")]}])
    r = run_cli("camera", "probe", "lane9/rear", "--config", cfg, "--no-read")
    assert r.rc == 2 and "no camera 'lane9/rear'" in r.err and "lane1/front" in r.err


def test_camera_list_matches_the_devices(run_cli: RunCli) -> None:
    r = run_cli("camera", "list", "--json")
    assert r.rc == 0
    data = json.loads(r.out)
    validate("camera_list", data)
    expected = sorted(d for d in glob.glob("/dev/video*") if re.fullmatch(r"/dev/video\d+", d))
    assert sorted(c["device"] for c in data["cameras"]) == expected
