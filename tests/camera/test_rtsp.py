"""An RTSP camera on loopback: frames arrive, a killed server is survived, a frozen stream is noticed."""

from __future__ import annotations

import logging

import pytest

from drivers.camera import CameraState, open_source
from drivers.camera.capture import CaptureSource
from drivers.camera.probe import probe
from edge.errors import CameraError
from tests.camera.conftest import RTSPCamera, free_port

pytestmark = pytest.mark.slow

SECRET = "pa55-Word"


def _open(url: str, sources: list, **kw: object) -> CaptureSource:
    kw.setdefault("backoff_max_s", 1.0)
    src = open_source(url, "front", **kw)  # type: ignore[arg-type]
    assert isinstance(src, CaptureSource)
    sources.append(src)
    src.start()
    return src


def test_frames_arrive_newest_first_with_health(rtsp_camera: RTSPCamera, sources: list, wait_for) -> None:
    src = _open(rtsp_camera.url(), sources, stall_timeout_s=5.0)
    first = src.wait_frame(timeout=20)
    assert first.image.shape == (360, 640, 3)
    assert first.camera == "front"
    seqs = [first.seq]
    for _ in range(10):
        f = src.latest(after_seq=seqs[-1], timeout=5)
        assert f is not None, "the stream stopped delivering frames"
        seqs.append(f.seq)
    assert seqs == sorted(set(seqs)), "sequence numbers must increase"
    # Opening delivers FFmpeg's probe buffer in a burst; the measured rate must settle on the real one.
    wait_for(lambda: 5 < src.health().fps < 30, timeout=15, what="the measured fps to settle near 15")
    h = src.health()
    assert h.state is CameraState.STREAMING
    assert (h.width, h.height) == (640, 360)
    assert h.extra["codec"].lower() == "h264"
    assert h.last_error is None and h.reconnects == 0


def test_server_killed_and_restarted_source_recovers(rtsp_camera: RTSPCamera, sources: list, wait_for,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="drivers.camera")
    src = _open(rtsp_camera.url(f"operator:{SECRET}@"), sources, stall_timeout_s=3.0, open_timeout_s=4.0)
    before = src.wait_frame(timeout=20)

    rtsp_camera.kill()
    wait_for(lambda: src.health().state in (CameraState.FAILED, CameraState.CONNECTING, CameraState.STALLED)
             and src.health().last_error is not None, timeout=15, what="the loss to be noticed")
    wait_for(lambda: "Connection refused" in (src.health().last_error or ""), timeout=15,
             what="reopen attempts to find nothing listening")
    assert src.health().state is CameraState.FAILED

    lost_at = src.health().frames - 1  # the last frame before the kill
    rtsp_camera.start()
    after = src.latest(after_seq=lost_at, timeout=30)
    assert after is not None, f"no frame after the server came back: {src.health()}"
    wait_for(lambda: src.health().state is CameraState.STREAMING, timeout=5, what="streaming again")
    h = src.health()
    assert h.reconnects >= 1
    assert after.seq > before.seq and after.timestamp > before.timestamp

    mine = [r for r in caplog.records if r.name.startswith("drivers.camera") and r.levelno >= logging.INFO]
    lost = [r for r in mine if r.levelno == logging.WARNING]
    recovered = [r for r in mine if "recovered" in r.getMessage()]
    assert len(lost) == 1, [r.getMessage() for r in lost]  # once on loss, not once per retry
    assert len(recovered) == 1
    everything = caplog.text + repr(h.as_dict())
    assert SECRET not in everything, "credentials leaked into logs or health"
    assert "***@127.0.0.1" in h.url


def test_frozen_stream_is_stalled_then_recovers(rtsp_camera: RTSPCamera, sources: list, wait_for) -> None:
    src = _open(rtsp_camera.url(), sources, stall_timeout_s=1.5, open_timeout_s=3.0)
    src.wait_frame(timeout=20)
    rtsp_camera.freeze()
    try:
        wait_for(lambda: src.health().state is CameraState.STALLED, timeout=10, what="stalled state")
        h = src.health()
        assert h.last_frame_age_s is not None and h.last_frame_age_s >= 1.5
        assert h.fps == 0.0
        frozen_at = src.health().frames
    finally:
        rtsp_camera.thaw()
    f = src.latest(after_seq=frozen_at - 1, timeout=30)
    assert f is not None, f"no frame after the stream thawed: {src.health()}"
    wait_for(lambda: src.health().state is CameraState.STREAMING, timeout=5, what="streaming again")
    assert src.health().reconnects >= 1


def test_unpublished_path_names_the_cause(rtsp_camera: RTSPCamera, sources: list) -> None:
    url = f"rtsp://127.0.0.1:{rtsp_camera.port}/no-such-stream"
    src = _open(url, sources, open_timeout_s=3.0)
    with pytest.raises(CameraError, match=r"RTSP server answered but no stream at this path \(DESCRIBE: 404"):
        src.wait_frame(timeout=8, fail_fast=True)
    assert src.health().state is CameraState.FAILED


def test_nothing_listening_names_the_cause(sources: list) -> None:
    port = free_port()
    src = _open(f"rtsp://admin:{SECRET}@127.0.0.1:{port}/stream", sources, open_timeout_s=2.0)
    with pytest.raises(CameraError, match=f"cannot connect to 127.0.0.1:{port}: Connection refused") as err:
        src.wait_frame(timeout=5, fail_fast=True)
    assert SECRET not in str(err.value)
    assert src.health().state is CameraState.FAILED


def test_probe_reports_codec_resolution_fps_and_snapshot(rtsp_camera: RTSPCamera, tmp_path) -> None:
    import cv2

    snap = tmp_path / "snap.jpg"
    r = probe(rtsp_camera.url(), seconds=2.0, snapshot=snap)
    assert r["codec"].lower() == "h264"
    assert (r["width"], r["height"]) == (640, 360)
    assert 8 < r["fps"] < 25, r
    assert r["sharpness"] > 10  # testsrc2 is full of hard edges
    assert 0 < r["exposure_mean"] < 255
    img = cv2.imread(str(snap))
    assert img is not None and img.shape == (360, 640, 3)
