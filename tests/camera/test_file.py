"""Video files: paced like the camera that recorded them, or as fast as they decode; a slow consumer."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from drivers.camera import CameraState, Frame, open_source
from drivers.camera.capture import CaptureSource
from edge.errors import CameraError
from tests.camera.conftest import frame_index, rss_bytes, write_video


def _start(url: str, sources: list, **kw: object) -> CaptureSource:
    src = open_source(url, "file-cam", **kw)  # type: ignore[arg-type]
    assert isinstance(src, CaptureSource)
    sources.append(src)
    src.start()
    return src


def _drain(src: CaptureSource, limit_s: float = 20.0) -> list[Frame]:
    """Take every frame the source hands out until it ends."""
    got: list[Frame] = []
    last = -1
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        f = src.latest(after_seq=last, timeout=0.5)
        if f is None:
            if src.ended:
                return got
            continue
        got.append(f)
        last = f.seq
    raise AssertionError("the file source did not end")


def test_realtime_pacing_follows_the_file_frame_rate(tmp_path: Path, sources: list) -> None:
    video = write_video(tmp_path / "clip.avi", frames=40, fps=25.0)
    src = _start(f"file://{video}", sources)
    frames = _drain(src)
    h = src.health()
    assert h.frames == 40 and h.state is CameraState.CLOSED and h.extra.get("ended")
    assert len(frames) >= 36, "a consumer as fast as the file must see (nearly) every frame"
    idx = [frame_index(f.image) for f in frames]
    assert idx == sorted(idx) and idx[-1] == 39
    span = frames[-1].timestamp - frames[0].timestamp
    rate = (len(frames) - 1) / span
    assert 15 < rate < 30, f"paced at {rate:.1f} fps, the file says 25"


def test_fast_pacing_decodes_as_fast_as_possible(tmp_path: Path, sources: list) -> None:
    video = write_video(tmp_path / "clip.avi", frames=40, fps=5.0)  # 8 s in real time
    t0 = time.monotonic()
    src = _start(f"file://{video}?pace=fast", sources)
    while not src.ended and time.monotonic() - t0 < 8.0:
        src.latest(timeout=0.2)
    took = time.monotonic() - t0
    assert src.ended, "40 frames at full speed must end long before their 8 s of real time"
    assert src.health().frames == 40
    assert took < 4.0


def test_loop_restarts_the_file(tmp_path: Path, sources: list, wait_for) -> None:
    video = write_video(tmp_path / "clip.avi", frames=10, fps=25.0)
    src = _start(f"file://{video}", sources, loop=True, pace="fast")
    wait_for(lambda: src.health().frames > 35, timeout=10, what="several passes through the file")
    assert not src.ended
    assert src.health().state is CameraState.STREAMING


def test_slow_consumer_gets_recent_frames_and_memory_stays_flat(tmp_path: Path, sources: list) -> None:
    video = write_video(tmp_path / "big.avi", frames=30, fps=25.0, size=(640, 480))
    src = _start(f"file://{video}?loop=1&pace=fast", sources)
    first = src.wait_frame(timeout=10)
    # Warm up, then watch memory while the source produces far more frames than the consumer takes.
    time.sleep(0.3)
    base = rss_bytes()
    taken = [first]
    for _ in range(15):
        time.sleep(0.1)  # a plate reader that needs 100 ms a frame
        f = src.latest(after_seq=taken[-1].seq, timeout=2)
        assert f is not None
        age = time.time() - f.timestamp
        assert age < 0.5, f"handed a frame {age:.2f} s old: a backlog, not the newest frame"
        taken.append(f)
    grown = rss_bytes() - base
    src.close()
    h = src.health()
    frame_bytes = 640 * 480 * 3
    assert h.frames > 150, "the source must outpace the consumer for this test to mean anything"
    assert grown < 30 * frame_bytes, f"memory grew by {grown / 1e6:.0f} MB with a slow consumer"
    gaps = [b.seq - a.seq for a, b in itertools.pairwise(taken)]
    assert sum(gaps) > 3 * len(gaps), "a slow consumer must skip frames, not work through them"
    distinct = len({f.seq for f in taken})
    assert h.frames - distinct - 1 <= h.dropped <= h.frames - distinct


def test_missing_and_garbage_files_name_the_cause(tmp_path: Path, sources: list) -> None:
    with pytest.raises(CameraError, match="no such video file"):
        open_source(f"file://{tmp_path}/nope.mp4", "c")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video\x00\x01" * 100)
    src = _start(f"file://{junk}", sources)
    with pytest.raises(CameraError, match=r"junk\.mp4.*(cannot open|cannot decode)"):
        src.wait_frame(timeout=5, fail_fast=True)
    assert src.health().state is CameraState.FAILED
    with pytest.raises(CameraError, match="pace must be realtime or fast"):
        open_source(f"file://{junk}?pace=slow", "c")
