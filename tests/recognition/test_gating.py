"""The motion gate on real rendered lane frames, and when a lane camera looks for far plates."""

from __future__ import annotations

import numpy as np
import pytest

from edge.recognition.gating import FarLook, MotionGate

from .conftest import lane_frame


def test_static_scene_is_read_once_then_on_change_or_idle_timeout() -> None:
    gate = MotionGate(max_idle_s=5.0)
    empty = np.full((720, 1280, 3), 105, np.uint8)
    noisy = np.clip(empty + np.random.default_rng(1).normal(0, 3, empty.shape), 0, 255).astype(np.uint8)
    assert gate.should_read(empty, now=0.0)
    assert not gate.should_read(noisy, now=0.5)  # sensor noise is not motion
    assert not gate.should_read(empty, now=1.0)
    truck, _ = lane_frame("01 A 123 BC", "UZ", plate_h=44)
    assert gate.motion(truck) > 0.01
    assert gate.should_read(truck, now=1.5)
    assert not gate.should_read(truck, now=2.0)  # parked: nothing new
    assert gate.should_read(truck, now=7.0)  # but looked at again after max_idle_s


def test_motion_outside_the_roi_is_ignored() -> None:
    gate = MotionGate(roi=(0, 0, 300, 200))
    empty = np.full((720, 1280, 3), 105, np.uint8)
    assert gate.should_read(empty, now=0.0)
    truck, _ = lane_frame("01 A 123 BC", "UZ", plate_h=44)  # drawn in the lower middle
    assert not gate.should_read(truck, now=0.5)


def test_bad_roi() -> None:
    with pytest.raises(ValueError, match="ROI"):
        MotionGate(roi=(5000, 5000, 10, 10)).should_read(np.zeros((720, 1280, 3), np.uint8))


def test_the_far_look_rests_after_it_read_nothing_and_wakes_on_a_read() -> None:
    far = FarLook(rest=2)
    assert far.allowed()
    far.seen(False)  # a far look that read nothing: the next two frames go without
    assert not far.allowed()
    far.seen(False)  # the first frame without it
    assert not far.allowed()
    far.seen(False)  # the second
    assert far.allowed()  # rested two frames: look far again
    far.seen(False)
    assert not far.allowed()
    far.seen(True)  # a plate read (by the coarse pass) ends the rest
    assert far.allowed()
    far.seen(True)
    assert far.allowed()


def test_a_far_look_without_rest_looks_on_every_frame() -> None:
    far = FarLook(rest=0)
    for read in (False, False, True, False):
        far.seen(read)
        assert far.allowed()
    with pytest.raises(ValueError, match="rest must be >= 0"):
        FarLook(rest=-1)
