"""Probe figures on a known picture, and the USB camera listing against this machine's devices."""

from __future__ import annotations

import glob
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera.probe import image_quality, list_usb_cameras, probe
from edge.errors import CameraError


def test_image_quality_tells_sharp_from_blurred_and_dark_from_bright() -> None:
    rng = np.random.default_rng(0)
    sharp = (rng.random((240, 320, 3)) * 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 4)
    assert image_quality(sharp)["sharpness"] > 20 * image_quality(blurred)["sharpness"]
    dark = np.zeros((240, 320, 3), np.uint8)
    bright = np.full((240, 320, 3), 255, np.uint8)
    assert image_quality(dark)["clipped_dark"] == 1.0 and image_quality(dark)["exposure_mean"] == 0
    assert image_quality(bright)["clipped_bright"] == 1.0


def test_probe_synthetic_camera(tmp_path: Path) -> None:
    snap = tmp_path / "snap.jpg"
    r = probe("synthetic://lane?fps=10&width=640&height=360", seconds=1.5, snapshot=snap)
    assert (r["width"], r["height"], r["codec"]) == (640, 360, "synthetic")
    assert 6 < r["fps"] < 14
    img = cv2.imread(str(snap))
    assert img is not None and img.shape == (360, 640, 3)


def test_probe_unreachable_camera_names_the_cause() -> None:
    with pytest.raises(CameraError, match=r"cannot connect to 127\.0\.0\.1:9: Connection refused"):
        probe("rtsp://127.0.0.1:9/stream", seconds=1.0, open_timeout_s=2.0)


def test_list_usb_cameras_matches_the_devices_present() -> None:
    found = list_usb_cameras()
    expected = sorted(d for d in glob.glob("/dev/video*") if re.fullmatch(r"/dev/video\d+", d))
    assert sorted(c["device"] for c in found) == expected
    for c in found:
        assert c["device"] == f"/dev/video{c['index']}" and isinstance(c["name"], str)
