"""The synthetic camera draws the Traffic schedule's vehicles, their plates where it says, in real time."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from drivers.camera import CameraState, Frame, open_camera, open_source, render_plate
from drivers.camera.capture import CaptureSource
from drivers.camera.synthetic import SceneRenderer
from drivers.sim.traffic import Traffic
from edge.config import CameraSection
from edge.errors import CameraError

COUNTRIES = [("01 A 123 BC", "UZ"), ("01 123 ABC", "UZ"), ("123 ABC 02", "KZ"), ("01 456 XYZ", "KG"),
             ("1234 AB 05", "TJ"), ("A 123 BC 07", "RU"), ("34 A 1234", "TR")]


def _plate_like(crop: np.ndarray) -> tuple[float, float]:
    """(bright fraction, dark fraction) of a crop: a plate is mostly white with bold dark characters."""
    g = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return float((g > 150).mean()), float((g < 80).mean())


@pytest.mark.parametrize(("display", "country"), COUNTRIES)
def test_render_plate_is_white_with_border_and_bold_dark_text(display: str, country: str) -> None:
    img = render_plate(display, country, height=60)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[0] == 60
    assert 4.3 < img.shape[1] / img.shape[0] < 4.9  # 520 x 112 mm
    bright, dark = _plate_like(img)
    assert bright > 0.45 and dark > 0.15
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    assert g[:2, :].mean() < 90 and g[-2:, :].mean() < 90  # the black border
    assert render_plate(display, country, 60).tobytes() == img.tobytes(), "rendering must be deterministic"


def test_render_plate_differs_by_text_and_scales() -> None:
    a = render_plate("01 A 123 BC", "UZ")
    b = render_plate("01 A 124 BC", "UZ")
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).sum() > 0
    assert render_plate("01 A 123 BC", "UZ", height=120).shape[0] == 120


def test_scene_draws_each_traffic_vehicle_where_the_truth_says() -> None:
    traffic = Traffic(seed=3, epoch=1000.0, period_s=12.0)
    r = SceneRenderer(traffic, 1280, 720, seed=3)
    seen_countries = set()
    for i in range(12):
        v = traffic.vehicle(i)
        parked = (v.loaded + v.depart) / 2
        img, truth = r.render(parked)
        assert img.shape == (720, 1280, 3)
        assert len(truth) == 1
        t = truth[0]
        assert (t["plate"], t["display"], t["country"], t["vehicle"]) == (v.plate, v.display, v.country, i)
        x, y, w, h = t["box"]
        assert 160 <= w <= 260, f"parked plate {w} px wide"
        assert 0 <= x and x + w <= 1280 and 0 <= y and y + h <= 720
        bright, dark = _plate_like(img[y: y + h, x: x + w])
        assert bright > 0.3 and dark > 0.08, f"no plate where the truth says, vehicle {i}"
        seen_countries.add(v.country)
        # Between vehicles the lane is empty and nothing is claimed.
        _, none = r.render(v.gone + 0.5)
        assert none == ()
    assert len(seen_countries) >= 3


def test_plate_visible_for_most_of_the_crossing() -> None:
    traffic = Traffic(seed=1, epoch=0.0, period_s=12.0)
    r = SceneRenderer(traffic, seed=1)
    v = traffic.vehicle(5)
    steps = np.linspace(v.arrive, v.gone, 40, endpoint=False)
    visible = sum(1 for t in steps if r.render(float(t))[1])
    assert visible / len(steps) > 0.7


def test_synthetic_source_paces_in_real_time_and_agrees_with_traffic(sources: list) -> None:
    epoch = time.time() - 1.0  # vehicle 0 is driving in
    url = f"synthetic://lane1?seed=5&epoch={epoch}&period=8&fps=10&drive_in=2&dwell=3&drive_out=1.5"
    src = open_source(url, "front")
    assert isinstance(src, CaptureSource)
    sources.append(src)
    src.start()
    traffic = Traffic(5, epoch, 8.0, drive_in_s=2.0, dwell_s=3.0, drive_out_s=1.5)
    frames: list[Frame] = []
    last = -1
    while len(frames) < 15:
        f = src.latest(after_seq=last, timeout=2)
        assert f is not None
        frames.append(f)
        last = f.seq
    for f in frames:
        ticks = f.timestamp * 10
        assert abs(ticks - round(ticks)) < 1e-6, "frames fall on the wall-clock grid of the fps"
        v = traffic.vehicle_at(f.timestamp)
        assert v is not None
        if f.truth:
            assert f.truth[0]["plate"] == v.plate and f.truth[0]["vehicle"] == v.index
    assert sum(1 for f in frames if f.truth) >= 10
    span = frames[-1].timestamp - frames[0].timestamp
    assert 1.0 <= span <= 3.0, "15 frames at 10 fps span about 1.4 s of scene time"
    h = src.health()
    assert h.state is CameraState.STREAMING and (h.width, h.height) == (1280, 720)


def test_open_camera_from_config(sources: list) -> None:
    cfg = CameraSection.model_validate(
        {"name": "rear", "url": "synthetic://lane2?fps=5&width=640&height=360", "stall_timeout_s": 2.0})
    src = open_camera(cfg)
    sources.append(src)
    src.start()
    assert isinstance(src, CaptureSource)
    f = src.wait_frame(timeout=5)
    assert f.camera == "rear" and f.image.shape == (360, 640, 3)
    assert src.stall_timeout_s == 2.0


@pytest.mark.parametrize(("url", "cause"), [
    ("synthetic://l?fps=abc", "fps must be a number"),
    ("synthetic://l?colour=red", r"unknown option\(s\) colour"),
    ("synthetic://l?period=5&drive_in=3&dwell=3", "period_s too short"),
    ("ftp://cam/stream", "unsupported scheme 'ftp'"),
    ("/var/video.mp4", "needs file://"),
    ("rtsp://cam/x#transport=carrier-pigeon", "transport must be tcp, udp or http"),
])
def test_bad_urls_name_the_cause(url: str, cause: str) -> None:
    with pytest.raises(CameraError, match=cause):
        open_source(url, "bad")
