"""Cameras OpenCV decodes: RTSP (FFmpeg backend), USB (V4L2) and video files.

OpenCV says only "not opened" when something fails; to give the technician a cause, the network is
checked first with a plain TCP connect (refused, unreachable, timed out, unknown host) and files are
checked for existence before OpenCV sees them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from drivers.camera.capture import EndOfStream, Stream, Truth
from edge.config import redact_url
from edge.errors import CameraError

log = logging.getLogger(__name__)

_ENV_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"


class _EnvOptions:
    """OpenCV reads FFmpeg's options from one process-wide variable when a capture opens.

    Opens that want the same options run together (an RTSP open can take seconds); one that wants
    different options waits until those finish, so no camera opens with another's transport.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._value: str | None = None
        self._users = 0

    @contextlib.contextmanager
    def use(self, value: str) -> Iterator[None]:
        with self._cond:
            while self._users and self._value != value:
                self._cond.wait()
            if self._value != value or os.environ.get(_ENV_OPTIONS) != value:
                os.environ[_ENV_OPTIONS] = value
                self._value = value
            self._users += 1
        try:
            yield
        finally:
            with self._cond:
                self._users -= 1
                self._cond.notify_all()


_env = _EnvOptions()


def fourcc_text(value: float) -> str:
    code = int(value)
    if code <= 0:
        return ""
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text.strip("\x00 ") if text.isprintable() else f"0x{code:08x}"


def check_tcp(host: str, port: int, timeout: float, what: str) -> None:
    """Fail fast, and say why, when nothing answers at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except socket.gaierror as err:
        raise CameraError(f"{what}: cannot resolve host {host!r}: {err.strerror}") from err
    except TimeoutError as err:
        raise CameraError(f"{what}: no answer from {host}:{port} within {timeout:g} s") from err
    except OSError as err:
        raise CameraError(f"{what}: cannot connect to {host}:{port}: {err.strerror or err}") from err


class OpenCVStream(Stream):
    """A ``cv2.VideoCapture``; for files optionally paced to the file's frame rate and looped."""

    def __init__(
        self,
        cap: cv2.VideoCapture,
        what: str,
        *,
        pace_fps: float | None = None,
        loop: bool = False,
        is_file: bool = False,
    ) -> None:
        self._cap = cap
        self._what = what
        self._pace_fps = pace_fps
        self._loop = loop
        self._is_file = is_file
        self.live = not is_file
        self._t0 = time.monotonic()
        self._n = 0
        self._info = {
            "codec": fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)),
            "nominal_fps": round(float(cap.get(cv2.CAP_PROP_FPS) or 0.0), 3),
            "backend": cap.getBackendName(),
        }

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def read(self) -> tuple[np.ndarray, float, Truth]:
        if self._pace_fps:
            due = self._t0 + self._n / self._pace_fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:  # fell far behind (slow disk, paused process): don't race to catch up
                self._t0 = time.monotonic() - self._n / self._pace_fps
        ok, image = self._cap.read()
        if not ok or image is None:
            if self._is_file and self._loop and self._n > 0:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, image = self._cap.read()
                if not ok or image is None:
                    raise CameraError(f"{self._what}: cannot rewind the file to loop it")
            elif self._is_file and self._n > 0:
                raise EndOfStream(f"{self._what}: end of file")
            elif self._is_file:
                raise CameraError(f"{self._what}: OpenCV cannot decode a frame (not a video, or codec unsupported)")
            else:
                raise CameraError(f"{self._what}: stream ended or read timed out")
        self._n += 1
        return image, time.time(), ()

    def close(self) -> None:
        self._cap.release()


def _ffmpeg_params(open_timeout_s: float, read_timeout_s: float) -> list[int]:
    return [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout_s * 1000),
    ]


def open_rtsp(url: str, *, transport: str, open_timeout_s: float, stall_timeout_s: float) -> OpenCVStream:
    """An RTSP camera through OpenCV's FFmpeg backend; TCP interleaved by default (no lost UDP packets)."""
    what = redact_url(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (322 if parts.scheme == "rtsps" else 554)
    check_tcp(host, port, min(open_timeout_s, 5.0), what)
    with _env.use(f"rtsp_transport;{transport}"):
        try:
            cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, _ffmpeg_params(open_timeout_s, stall_timeout_s))
        except cv2.error as err:
            raise CameraError(f"{what}: OpenCV refused the stream: {err}") from err
    if not cap.isOpened():
        cap.release()
        status = _describe_status(url, host, port, min(open_timeout_s, 3.0))
        if status.startswith("404"):
            cause = f"no stream at this path (DESCRIBE: {status})"
        elif status.startswith(("401", "403")):
            cause = f"credentials missing or refused (DESCRIBE: {status})"
        elif status.startswith("200"):
            cause = f"the stream exists but FFmpeg could not open or decode it within {open_timeout_s:g} s"
        else:
            cause = f"no stream could be opened within {open_timeout_s:g} s (DESCRIBE: {status or 'no answer'})"
        raise CameraError(f"{what}: the RTSP server answered but {cause}")
    return OpenCVStream(cap, what)


def _describe_status(url: str, host: str, port: int, timeout: float) -> str:
    """The status line a plain DESCRIBE gets (without credentials): why OpenCV's open failed."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    bare = parts._replace(netloc=netloc).geturl()
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(f"DESCRIBE {bare} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n".encode())
            line = s.recv(256).split(b"\r\n", 1)[0].decode("latin-1")
    except OSError:
        return ""
    return line.split(" ", 1)[1].strip() if line.startswith("RTSP/") and " " in line else ""


def open_file(path: Path, *, loop: bool, pace: str) -> OpenCVStream:
    what = f"file {path}"
    if not path.is_file():
        raise CameraError(f"{what}: no such file")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise CameraError(f"{what}: OpenCV cannot open it (not a video, or a codec it cannot decode)")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    pace_fps = None
    if pace == "realtime":
        pace_fps = fps if 0 < fps <= 240 else 25.0
    return OpenCVStream(cap, what, pace_fps=pace_fps, loop=loop, is_file=True)


def open_usb(device: int | str, *, width: int | None, height: int | None, fps: float | None,
             fourcc: str | None) -> OpenCVStream:
    """A V4L2 camera by index or ``/dev/videoN``; MJPG fourcc lets cheap cameras reach full resolution."""
    what = f"USB camera {device}"
    if isinstance(device, str):
        if not os.path.exists(device):
            raise CameraError(f"{what}: no such device (unplugged?)")
        if not os.access(device, os.R_OK | os.W_OK):
            raise CameraError(f"{what}: permission denied (add the service user to the 'video' group)")
    cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
    if not cap.isOpened():
        cap.release()
        raise CameraError(f"{what}: V4L2 cannot open it (no such camera, or busy in another program)")
    if fourcc:
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*fourcc[:4].ljust(4)))
    if width:
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    if height:
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    if fps:
        cap.set(cv2.CAP_PROP_FPS, fps)
    return OpenCVStream(cap, what)


def open_ffmpeg_url(url: str, *, open_timeout_s: float, stall_timeout_s: float) -> OpenCVStream:
    """Any other stream FFmpeg understands (HTTP-FLV, HLS) when asked for with ``backend=opencv``."""
    what = redact_url(url)
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, _ffmpeg_params(open_timeout_s, stall_timeout_s))
    if not cap.isOpened():
        cap.release()
        raise CameraError(f"{what}: FFmpeg cannot open the stream")
    return OpenCVStream(cap, what)
