"""Plate cameras: one :class:`FrameSource` per camera, chosen by its URL.

============================================  ==========================================================
``rtsp://[user:pw@]host[:port]/path``          IP camera over RTSP through OpenCV/FFmpeg; TCP interleaved
                                               by default (``#transport=udp`` or ``transport="udp"``)
``http(s)://host/path``                        MJPEG over HTTP (multipart/x-mixed-replace); Basic auth
                                               from the URL; ``#backend=opencv`` for other HTTP streams
``/dev/videoN``, ``N``, ``usb://N``            USB camera (V4L2); ``usb://0?width=1920&height=1080&
                                               fourcc=MJPG&fps=25``
``file:///path/video.mp4?loop=1&pace=fast``    a video file, paced at its frame rate (``realtime``) or
                                               as fast as it decodes (``fast``); looped or not
``synthetic://LANE?seed=1&epoch=0&period=12``  the simulated lane (``width``, ``height``, ``fps``,
                                               ``noise``, ``pace``, ``drive_in``, ``dwell``, ``drive_out``,
                                               ``count``: that many trucks, then an empty lane)
============================================  ==========================================================

Options may also be passed as keyword arguments to :func:`open_source`; they override the URL's.
For network cameras the options go in the URL fragment (never sent to the camera) so that the
camera's own query string stays untouched.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from drivers.camera.base import CameraHealth, CameraState, Frame, FrameSource
from drivers.camera.capture import CaptureSource, EndOfStream, Opener, Stream
from drivers.camera.synthetic import SceneRenderer, SyntheticStream, render_plate
from edge.config import CameraSection, redact_url
from edge.errors import CameraError

__all__ = [
    "CameraHealth",
    "CameraState",
    "CaptureSource",
    "EndOfStream",
    "Frame",
    "FrameSource",
    "Stream",
    "open_camera",
    "open_source",
    "render_plate",
]

_COMMON = {"backoff_initial_s", "backoff_max_s"}
_ALLOWED = {
    "rtsp": {"transport"},
    "http": {"backend"},
    "usb": {"width", "height", "fps", "fourcc"},
    "file": {"loop", "pace"},
    "synthetic": {"seed", "epoch", "period", "width", "height", "fps", "noise", "pace", "drive_in", "dwell",
                  "drive_out", "t0", "count"},
}


def _flag(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true/false, got {v!r}")


def _num(v: Any, kind: type[float] | type[int], what: str, lo: float | None = None) -> Any:
    try:
        x = kind(v)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be a number, got {v!r}") from err
    if lo is not None and x < lo:
        raise ValueError(f"{what} must be at least {lo}, got {v!r}")
    return x


def _classify(url: str) -> tuple[str, str]:
    """(kind, target) where kind is rtsp/http/usb/file/synthetic."""
    u = url.strip()
    if re.fullmatch(r"\d+", u):
        return "usb", u
    if re.fullmatch(r"/dev/video\d+", u):
        return "usb", u
    parts = urlsplit(u)
    scheme = parts.scheme.lower()
    if scheme in ("rtsp", "rtsps"):
        return "rtsp", u
    if scheme in ("http", "https"):
        return "http", u
    if scheme == "usb":
        return "usb", (parts.netloc + parts.path) or "0"
    if scheme == "file":
        return "file", unquote(parts.netloc + parts.path)
    if scheme == "synthetic":
        return "synthetic", parts.netloc
    if not scheme and u.startswith("/"):
        raise CameraError(f"camera URL {u!r}: a local video needs file://{u}; USB cameras are /dev/videoN")
    raise CameraError(
        f"camera URL {redact_url(u)!r}: unsupported scheme {scheme!r} "
        "(use rtsp://, http(s)://, file://, synthetic://, usb://, /dev/videoN or a USB index)"
    )


def open_source(url: str | int, name: str, *, stall_timeout_s: float = 5.0, open_timeout_s: float = 10.0,
                **opts: Any) -> FrameSource:
    """The camera at ``url`` as a :class:`FrameSource` (not started: call ``start()``).

    Raises :class:`CameraError` at once for what can never work (unknown scheme, unknown option, a
    file that does not exist); a camera that is merely unreachable opens, reports ``failed`` in its
    health with the cause, and keeps retrying.
    """
    url = str(url)  # a bare USB index may come as an int
    kind, target = _classify(url)
    parts = urlsplit(url) if kind != "usb" or url.startswith("usb:") else None
    given: dict[str, Any] = {}
    if parts is not None:
        if kind in ("rtsp", "http"):
            given.update(parse_qsl(parts.fragment))
        elif kind in ("file", "synthetic", "usb"):
            given.update(parse_qsl(parts.query))
    given.update(opts)
    allowed = _ALLOWED[kind] | _COMMON
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise CameraError(
            f"camera {name} ({redact_url(url)}): unknown option(s) {', '.join(unknown)} for {kind} "
            f"sources (known: {', '.join(sorted(allowed))})"
        )
    try:
        common: dict[str, Any] = {
            k: _num(given.pop(k), float, k, 0.01) for k in list(given) if k in _COMMON
        }
        opener = _opener(kind, target, url, given, stall_timeout_s, open_timeout_s)
    except ValueError as err:
        raise CameraError(f"camera {name} ({redact_url(url)}): {err}") from err
    return CaptureSource(url, name, opener, stall_timeout_s=stall_timeout_s, open_timeout_s=open_timeout_s,
                         retry=kind != "file", **common)


def _opener(kind: str, target: str, url: str, o: dict[str, Any], stall: float, open_t: float) -> Opener:
    if kind == "rtsp":
        from drivers.camera.opencv import open_rtsp

        transport = str(o.get("transport", "tcp")).lower()
        if transport not in ("tcp", "udp", "http"):
            raise ValueError(f"transport must be tcp, udp or http, got {transport!r}")
        clean = url.split("#", 1)[0]
        return lambda: open_rtsp(clean, transport=transport, open_timeout_s=open_t, stall_timeout_s=stall)
    if kind == "http":
        clean = url.split("#", 1)[0]
        backend = str(o.get("backend", "mjpeg")).lower()
        if backend == "opencv":
            from drivers.camera.opencv import open_ffmpeg_url

            return lambda: open_ffmpeg_url(clean, open_timeout_s=open_t, stall_timeout_s=stall)
        if backend != "mjpeg":
            raise ValueError(f"backend must be mjpeg or opencv, got {backend!r}")
        from drivers.camera.mjpeg import MJPEGStream

        return lambda: MJPEGStream(clean, open_timeout_s=open_t, stall_timeout_s=stall)
    if kind == "usb":
        from drivers.camera.opencv import open_usb

        device: int | str = int(target) if re.fullmatch(r"\d+", target) else target
        if isinstance(device, str) and not re.fullmatch(r"/dev/video\d+", device):
            raise ValueError(f"USB camera must be an index or /dev/videoN, got {device!r}")
        width = _num(o["width"], int, "width", 1) if "width" in o else None
        height = _num(o["height"], int, "height", 1) if "height" in o else None
        fps = _num(o["fps"], float, "fps", 0.1) if "fps" in o else None
        fourcc = str(o["fourcc"]) if "fourcc" in o else None
        return lambda: open_usb(device, width=width, height=height, fps=fps, fourcc=fourcc)
    if kind == "file":
        from drivers.camera.opencv import open_file

        path = Path(target).expanduser()
        if not path.is_file():
            raise ValueError(f"no such video file: {path}")
        loop = _flag(o.get("loop", False))
        pace = str(o.get("pace", "realtime")).lower()
        if pace not in ("realtime", "fast"):
            raise ValueError(f"pace must be realtime or fast, got {pace!r}")
        return lambda: open_file(path, loop=loop, pace=pace)
    return _synthetic_opener(o)


def _synthetic_opener(o: dict[str, Any]) -> Opener:
    from drivers.sim.traffic import Traffic

    seed = _num(o.get("seed", 1), int, "seed")
    epoch = _num(o.get("epoch", 0.0), float, "epoch")
    period = _num(o.get("period", 12.0), float, "period", 1.0)
    width = _num(o.get("width", 1280), int, "width", 160)
    height = _num(o.get("height", 720), int, "height", 120)
    fps = _num(o.get("fps", 10.0), float, "fps", 0.1)
    noise = _num(o.get("noise", 1.0), float, "noise", 0.0)
    pace = str(o.get("pace", "realtime")).lower()
    if pace not in ("realtime", "fast"):
        raise ValueError(f"pace must be realtime or fast, got {pace!r}")
    t0 = _num(o["t0"], float, "t0") if "t0" in o else None
    timing = {k: _num(o[q], float, q, 0.1) for k, q in
              (("drive_in_s", "drive_in"), ("dwell_s", "dwell"), ("drive_out_s", "drive_out")) if q in o}
    count = _num(o["count"], int, "count", 0) if "count" in o else None
    traffic = Traffic(seed, epoch, period, count=count, **timing)  # ValueError for impossible timings
    renderer = SceneRenderer(traffic, width, height, noise=noise, seed=seed)
    return lambda: SyntheticStream(renderer, fps, pace=pace, t0=t0)


def open_camera(cfg: CameraSection, **opts: Any) -> FrameSource:
    """The camera a lane's config describes, with its stall and open timeouts."""
    return open_source(cfg.url, cfg.name, stall_timeout_s=cfg.stall_timeout_s,
                       open_timeout_s=cfg.open_timeout_s, **opts)
