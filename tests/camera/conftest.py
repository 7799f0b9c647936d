"""Real streams on loopback for the camera tests: an RTSP camera, an MJPEG camera, a video file.

The RTSP camera is ffmpeg encoding H.264 live and publishing into ``rtsp_relay.py`` (a small RTSP
server run as its own process), read by OpenCV's FFmpeg client over TCP interleaved transport: the
same bytes an IP camera sends. The test can kill both processes outright, start them again on the same
port, or freeze the encoder (SIGSTOP) so the connection stays up and no frame comes: a frozen camera.
"""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera.base import FrameSource

RELAY = Path(__file__).with_name("rtsp_relay.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.kill()  # SIGKILL also ends a SIGSTOPped process
    proc.wait(timeout=10)


class RTSPCamera:
    """ffmpeg (the camera's encoder) publishing H.264 to the relay (the camera's RTSP server)."""

    def __init__(self, ffmpeg: str, port: int, size: str = "640x360", fps: int = 15) -> None:
        self.ffmpeg = ffmpeg
        self.port = port
        self.size = size
        self.fps = fps
        self.path = "cam"
        self.server: subprocess.Popen[bytes] | None = None
        self.encoder: subprocess.Popen[bytes] | None = None

    def url(self, userinfo: str = "") -> str:
        return f"rtsp://{userinfo}127.0.0.1:{self.port}/{self.path}"

    def start(self) -> None:
        self.server = subprocess.Popen([sys.executable, str(RELAY), str(self.port)],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.server.stdout is not None
        line = self.server.stdout.readline()
        assert b"listening" in line, f"RTSP relay did not start: {line!r}"
        self.encoder = subprocess.Popen(
            [self.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
             "-f", "lavfi", "-i", f"testsrc2=size={self.size}:rate={self.fps}",
             "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(self.fps),
             "-pix_fmt", "yuv420p", "-f", "rtsp", "-rtsp_transport", "tcp", self.url()],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.encoder.poll() is not None:
                raise RuntimeError(f"ffmpeg publisher exited with {self.encoder.returncode}")
            if self.published():
                return
            time.sleep(0.05)
        raise RuntimeError("ffmpeg did not publish to the RTSP relay within 15 s")

    def published(self) -> bool:
        """Ask the server like a client would: DESCRIBE answers 200 once the encoder has announced."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(f"DESCRIBE {self.url()} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
                return s.recv(64).startswith(b"RTSP/1.0 200")
        except OSError:
            return False

    def kill(self) -> None:
        _stop(self.encoder)
        _stop(self.server)

    def freeze(self) -> None:
        assert self.encoder is not None
        self.encoder.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.encoder is not None
        self.encoder.send_signal(signal.SIGCONT)


@pytest.fixture(scope="session")
def ffmpeg_bin() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.skip("ffmpeg is not installed (apt-get install -y ffmpeg): no RTSP camera to test against")
    return path


@pytest.fixture
def rtsp_camera(ffmpeg_bin: str) -> Iterator[RTSPCamera]:
    cam = RTSPCamera(ffmpeg_bin, free_port())
    cam.start()
    try:
        yield cam
    finally:
        cam.kill()


@pytest.fixture
def sources() -> Iterator[list[FrameSource]]:
    """Sources a test opens; all closed at teardown even when the test fails."""
    opened: list[FrameSource] = []
    yield opened
    for s in opened:
        s.close()


def write_video(path: Path, frames: int = 40, fps: float = 25.0, size: tuple[int, int] = (320, 240)) -> Path:
    """A real MJPG .avi whose frame ``i`` is filled with grey level ``i * 6 % 256``: order is checkable."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write MJPG .avi files here"
    for i in range(frames):
        img = np.full((h, w, 3), (i * 6) % 256, np.uint8)
        cv2.putText(img, str(i), (10, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 2, (0, 0, 255), 3)
        writer.write(img)
    writer.release()
    return path


def frame_index(image: np.ndarray) -> int:
    """Inverse of :func:`write_video`'s grey level (read from a corner the number never covers)."""
    return round(float(image[-20:, -20:].mean()) / 6)


class MJPEGCamera:
    """A tiny HTTP MJPEG camera: multipart/x-mixed-replace JPEGs behind Basic auth.

    ``paused`` freezes it (connection kept, nothing sent); ``with_length=False`` leaves out the
    parts' Content-Length like some cheap cameras do.
    """

    def __init__(self, user: str = "op", password: str = "s3cret!", fps: float = 20.0,
                 with_length: bool = True) -> None:
        self.user, self.password, self.fps, self.with_length = user, password, fps, with_length
        self.paused = threading.Event()
        self.stopping = threading.Event()
        self.sent = 0
        cam = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                import base64

                want = "Basic " + base64.b64encode(f"{cam.user}:{cam.password}".encode()).decode()
                if self.headers.get("Authorization") != want:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="cam"')
                    self.end_headers()
                    return
                if self.path != "/video.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=--myboundary")
                self.end_headers()
                i = 0
                try:
                    while not cam.stopping.is_set():
                        if cam.paused.is_set():
                            time.sleep(0.02)
                            continue
                        img = np.full((240, 320, 3), (i * 6) % 256, np.uint8)
                        ok, jpg = cv2.imencode(".jpg", img)
                        assert ok
                        head = b"--myboundary\r\nContent-Type: image/jpeg\r\n"
                        if cam.with_length:
                            head += f"Content-Length: {len(jpg)}\r\n".encode()
                        self.wfile.write(head + b"\r\n" + jpg.tobytes() + b"\r\n")
                        self.wfile.flush()
                        cam.sent += 1
                        i += 1
                        time.sleep(1 / cam.fps)
                except OSError:
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, password: str | None = None) -> str:
        return f"http://{self.user}:{password or self.password}@127.0.0.1:{self.port}/video.mjpg"

    def close(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def mjpeg_camera() -> Iterator[MJPEGCamera]:
    cam = MJPEGCamera()
    yield cam
    cam.close()
