"""HTTP MJPEG cameras: ``multipart/x-mixed-replace`` streams of JPEG pictures, read with the stdlib.

Parsed here rather than through FFmpeg so that a freeze is a plain socket timeout, credentials in the
URL become a Basic ``Authorization`` header without ever reaching a log, and a refused request says
its HTTP status.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import cv2
import numpy as np

from drivers.camera.capture import Stream, Truth
from edge.config import redact_url
from edge.errors import CameraError

_MAX_PART = 16 * 1024 * 1024
"""A JPEG bigger than this is a broken stream, not a picture: don't let it fill memory."""


class MJPEGStream(Stream):
    def __init__(self, url: str, *, open_timeout_s: float, stall_timeout_s: float) -> None:
        self._what = redact_url(url)
        parts = urlsplit(url)
        host = parts.hostname or ""
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        conn: http.client.HTTPConnection
        if https:
            conn = http.client.HTTPSConnection(host, port, timeout=open_timeout_s,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=open_timeout_s)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        headers = {"User-Agent": "customs-post-edge", "Accept": "multipart/x-mixed-replace, image/jpeg"}
        if parts.username is not None:
            cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(cred).decode()
        sock: socket.socket | None = None
        try:
            conn.request("GET", target, headers=headers)
            # getresponse() hands the socket over to the response (conn.sock becomes None): keep it
            # to set the stall timeout and to interrupt a blocked read from close().
            sock = conn.sock
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            cause = getattr(err, "strerror", None) or str(err) or type(err).__name__
            raise CameraError(f"{self._what}: cannot connect to {host}:{port}: {cause}") from err
        if resp.status != 200:
            conn.close()
            hint = " (check the credentials)" if resp.status in (401, 403) else ""
            raise CameraError(f"{self._what}: HTTP {resp.status} {resp.reason}{hint}")
        ctype = resp.getheader("Content-Type", "")
        if not ctype.lower().startswith("multipart/"):
            conn.close()
            raise CameraError(
                f"{self._what}: content type {ctype!r} is not an MJPEG stream (multipart/x-mixed-replace); "
                "for other stream types use backend=opencv"
            )
        boundary = ""
        for param in ctype.split(";")[1:]:
            k, _, v = param.strip().partition("=")
            if k.lower() == "boundary":
                boundary = v.strip().strip('"')
        if not boundary:
            conn.close()
            raise CameraError(f"{self._what}: multipart stream without a boundary")
        self._boundary = boundary.removeprefix("--").encode()
        self._conn = conn
        self._resp = resp
        if sock is not None:
            sock.settimeout(stall_timeout_s)
        self._sock = sock

    def info(self) -> dict[str, Any]:
        return {"codec": "MJPG", "backend": "http-mjpeg"}

    def _readline(self) -> bytes:
        line = self._resp.readline(65537)
        if not line:
            raise CameraError(f"{self._what}: stream ended")
        return line

    def read(self) -> tuple[np.ndarray, float, Truth]:
        try:
            return self._read()
        except TimeoutError as err:
            raise CameraError(f"{self._what}: read timed out") from err
        except (OSError, http.client.HTTPException, ValueError) as err:
            raise CameraError(f"{self._what}: stream broken: {err or type(err).__name__}") from err

    def _read(self) -> tuple[np.ndarray, float, Truth]:
        # Skip to the boundary line, then the part's headers.
        while True:
            line = self._readline().strip()
            if line.startswith(b"--" + self._boundary) or line == self._boundary:
                if line.endswith(b"--") and len(line) > len(self._boundary) + 2:
                    raise CameraError(f"{self._what}: stream ended (closing boundary)")
                break
        length: int | None = None
        while True:
            line = self._readline()
            if line in (b"\r\n", b"\n"):
                break
            k, _, v = line.decode("latin-1").partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
        if length is not None:
            if length > _MAX_PART:
                raise CameraError(f"{self._what}: part of {length} bytes is not a plausible JPEG")
            data = self._resp.read(length)
            if len(data) < length:
                raise CameraError(f"{self._what}: stream ended inside a picture")
        else:  # no length: the picture runs to its JPEG end marker
            buf = bytearray()
            while not buf.endswith(b"\xff\xd9"):
                chunk = self._resp.read(1)
                if not chunk:
                    raise CameraError(f"{self._what}: stream ended inside a picture")
                buf += chunk
                if len(buf) > _MAX_PART:
                    raise CameraError(f"{self._what}: no JPEG end marker in {_MAX_PART} bytes")
            data = bytes(buf)
        ts = time.time()
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise CameraError(f"{self._what}: a part of {len(data)} bytes is not a decodable JPEG")
        return image, ts, ()

    def interrupt(self) -> None:
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._resp.close()
        self._conn.close()
        if self._sock is not None:
            self._sock.close()
