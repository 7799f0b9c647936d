"""An HTTP MJPEG camera: frames with Basic auth from the URL, a freeze noticed, refusals explained."""

from __future__ import annotations

import logging

import pytest

from drivers.camera import CameraState, open_source
from drivers.camera.capture import CaptureSource
from drivers.camera.probe import probe
from edge.errors import CameraError
from tests.camera.conftest import MJPEGCamera, frame_index


def _start(url: str, sources: list, **kw: object) -> CaptureSource:
    kw.setdefault("backoff_max_s", 0.5)
    src = open_source(url, "mjpeg-cam", **kw)  # type: ignore[arg-type]
    assert isinstance(src, CaptureSource)
    sources.append(src)
    src.start()
    return src


@pytest.mark.parametrize("with_length", [True, False])
def test_frames_arrive_in_order(with_length: bool, sources: list) -> None:
    cam = MJPEGCamera(with_length=with_length)
    src = _start(cam.url(), sources)
    try:
        f = src.wait_frame(timeout=5)
        assert f.image.shape == (240, 320, 3)
        got = [f]
        while len(got) < 8:
            nxt = src.latest(after_seq=got[-1].seq, timeout=2)
            assert nxt is not None
            got.append(nxt)
        idx = [frame_index(x.image) for x in got]
        assert idx == sorted(idx) and len(set(idx)) == len(idx)
        assert src.health().extra["codec"] == "MJPG"
    finally:
        src.close()
        cam.close()


def test_frozen_mjpeg_is_stalled_then_recovers(mjpeg_camera: MJPEGCamera, sources: list, wait_for,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="drivers.camera")
    src = _start(mjpeg_camera.url(), sources, stall_timeout_s=1.0)
    src.wait_frame(timeout=5)
    mjpeg_camera.paused.set()
    wait_for(lambda: src.health().state is CameraState.STALLED, timeout=10, what="stalled state")
    wait_for(lambda: "no new frame for 1 s" in (src.health().last_error or ""), timeout=10,
             what="the frozen connection to be dropped and reopened")
    assert src.health().state is CameraState.STALLED
    frozen_at = src.health().frames
    mjpeg_camera.paused.clear()
    after = src.latest(after_seq=frozen_at - 1, timeout=10)
    assert after is not None, "no fresh frame after the camera resumed"
    wait_for(lambda: src.health().state is CameraState.STREAMING, timeout=5, what="streaming again")
    assert mjpeg_camera.password not in caplog.text


def test_wrong_password_says_401(mjpeg_camera: MJPEGCamera, sources: list) -> None:
    src = _start(mjpeg_camera.url(password="wrong"), sources)
    with pytest.raises(CameraError, match=r"HTTP 401.*check the credentials") as err:
        src.wait_frame(timeout=5, fail_fast=True)
    assert "wrong" not in str(err.value)


def test_probe_mjpeg(mjpeg_camera: MJPEGCamera, tmp_path) -> None:
    r = probe(mjpeg_camera.url(), seconds=1.5, snapshot=tmp_path / "s.jpg")
    assert (r["codec"], r["width"], r["height"]) == ("MJPG", 320, 240)
    assert 5 < r["fps"] < 30  # the camera sends 20
    assert mjpeg_camera.password not in r["url"]
    assert (tmp_path / "s.jpg").stat().st_size > 0
