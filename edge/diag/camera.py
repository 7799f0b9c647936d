"""Camera diagnostics: does the stream deliver, at what rate, how sharp and lit, how large are plates.

Built on the lane's own frame sources (:func:`drivers.camera.open_source`), so a probe that passes
means the lane's camera will work; unlike :func:`drivers.camera.probe.probe` it also tells a camera
that froze after its first frames (connection up, nothing new) from one that streams.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2

from drivers.camera import open_source
from drivers.camera.base import Frame
from drivers.camera.capture import CaptureSource
from drivers.camera.probe import image_quality, list_usb_cameras
from edge.config import CameraSection, PostConfig, redact_url
from edge.diag.result import CheckResult, Status, worst
from edge.errors import CameraError, ConfigError

if TYPE_CHECKING:
    from edge.recognition.reader import PlateReader

log = logging.getLogger(__name__)

MIN_SHARPNESS = 40.0
"""Variance of the Laplacian below this: out of focus, a dirty or fogged lens, or heavy motion blur."""
MIN_PLATE_PX = 20
"""Plate text lines smaller than this many pixels are read unreliably."""

__all__ = ["find_camera", "list_usb_cameras", "probe_camera"]


def find_camera(cfg: PostConfig, name: str) -> tuple[str, CameraSection]:
    """``lane/camera`` (or a camera name unique across lanes) -> (``lane/camera``, its section)."""
    lane_id, _, cam = name.rpartition("/")
    found = [(f"{lane.id}/{c.name}", c) for lane in cfg.lanes for c in lane.cameras
             if c.name == cam and (not lane_id or lane.id == lane_id)]
    if len(found) == 1:
        return found[0]
    known = ", ".join(f"{lane.id}/{c.name}" for lane in cfg.lanes for c in lane.cameras)
    if not found:
        raise ConfigError("camera", [("", f"no camera {name!r} in the config (cameras: {known})")])
    raise ConfigError("camera", [("", f"camera name {name!r} is in several lanes: say which ({known})")])


def probe_camera(
    url: str,
    *,
    name: str = "probe",
    seconds: float = 3.0,
    snapshot: Path | None = None,
    open_timeout_s: float = 10.0,
    stall_after_s: float | None = None,
    expect_fps: float | None = None,
    reader: PlateReader | None = None,
    roi: tuple[float, float, float, float] | None = None,
) -> dict[str, Any]:
    """Read ``url`` for ``seconds`` and judge it; raises :class:`CameraError` when no frame ever comes.

    ``stall_after_s``: no new frame for this long after the first is a frozen camera (default: half
    the window, at least 1 s). ``reader``: read plates on a few frames and report their size.
    """
    stall = stall_after_s if stall_after_s is not None else max(1.0, seconds / 2)
    src = open_source(url, name, stall_timeout_s=max(stall, 1.0), open_timeout_s=open_timeout_s)
    assert isinstance(src, CaptureSource)
    src.start()
    kept: list[Frame] = []
    try:
        first = src.wait_frame(timeout=open_timeout_s + 2.0, fail_fast=True)
        kept.append(first)
        state = "streaming"
        stamps: list[float] = []
        last = first
        last_new = kept_at = time.monotonic()
        warm_until = time.monotonic() + min(1.0, seconds / 3)  # an opening stream bursts its buffer
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            f = src.latest(after_seq=last.seq, timeout=min(left, 0.25))
            now = time.monotonic()
            if f is None:
                if src.ended:
                    state = "ended"
                    break
                if now - last_new >= stall:
                    state = "stalled"
                    break
                continue
            last, last_new = f, now
            if now >= warm_until:
                stamps.append(now)
            if now - kept_at >= 0.3:  # a few frames apart, for the plate read
                kept, kept_at = [*kept[-2:], f], now
        health = src.health()
    finally:
        src.close()
    fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) >= 2 and stamps[-1] > stamps[0] else 0.0
    h, w = last.image.shape[:2]
    out: dict[str, Any] = {
        "name": name,
        "url": redact_url(url),
        "state": state,
        "codec": str(health.extra.get("codec", "")),
        "backend": str(health.extra.get("backend", "")),
        "width": int(w),
        "height": int(h),
        "fps": round(fps, 2),
        "nominal_fps": health.extra.get("nominal_fps"),
        "frames": len(stamps) + 1,
        "seconds": seconds,
        "dropped": health.dropped,
        **image_quality(last.image),
        "plate": None,
        "snapshot": None,
    }
    if reader is not None:
        out["plate"] = _largest_plate(reader, [k.image for k in kept], roi)
    if snapshot is not None:
        snapshot = Path(snapshot)
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(snapshot), last.image, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise CameraError(f"cannot write snapshot {snapshot} (is the extension .jpg?)")
        out["snapshot"] = str(snapshot)
    out["findings"] = judge(out, expect_fps=expect_fps, stall_after_s=stall)
    out["status"] = worst([f["status"] for f in out["findings"]])
    return out


def _largest_plate(reader: PlateReader, images: list[Any], roi: tuple[float, float, float, float] | None
                   ) -> dict[str, Any] | None:
    best: dict[str, Any] | None = None
    for img in images:
        box = None
        if roi is not None:
            ih, iw = img.shape[:2]
            box = (int(roi[0] * iw), int(roi[1] * ih), int(roi[2] * iw), int(roi[3] * ih))
        for r in reader.read(img, box):
            if r.kind != "plate":
                continue
            if best is None or r.box[3] > best["height_px"]:
                best = {"text": r.text, "display": r.display, "country": r.country,
                        "confidence": round(r.confidence, 3), "width_px": int(r.box[2]), "height_px": int(r.box[3])}
    return best


def judge(p: dict[str, Any], *, expect_fps: float | None, stall_after_s: float) -> list[dict[str, Any]]:
    """The findings on a probe, worst first: each with a status, what was seen and what to try."""
    found: list[dict[str, Any]] = []

    def add(status: Status, reason: str, fix: str = "") -> None:
        found.append({"status": status, "reason": reason, "fix": fix})

    if p["state"] == "stalled":
        add("fail", f"stalled: no new frame for {stall_after_s:g} s after {p['frames']} frame(s) (stream frozen)",
            "the camera keeps the connection but sends nothing: power-cycle it, check its encoder load "
            "and the network (PoE budget, switch port errors)")
    elif p["state"] == "ended":
        add("fail", f"the stream ended after {p['frames']} frame(s)",
            "a file source needs ?loop=1 to serve a lane; a network camera that closes its stream needs a reboot")
    if expect_fps and p["state"] == "streaming" and p["fps"] < 0.8 * expect_fps:
        add("warn", f"delivers {p['fps']:.1f} fps, the lane reads {expect_fps:g} fps",
            "raise the camera's frame rate or lower read_fps; check the network bandwidth")
    if p["sharpness"] < MIN_SHARPNESS:
        add("warn", f"image is soft (sharpness {p['sharpness']:.1f} < {MIN_SHARPNESS:g})",
            "focus the lens, clean it, or shorten the shutter time against motion blur")
    if p["exposure_mean"] < 40 or p["clipped_dark"] > 0.5:
        add("warn", f"image is dark (mean {p['exposure_mean']:.0f}/255)",
            "add IR/white light or raise exposure; check the day/night switch")
    elif p["exposure_mean"] > 215 or p["clipped_bright"] > 0.25:
        add("warn", f"image is overexposed (mean {p['exposure_mean']:.0f}/255)",
            "lower exposure or gain; shade the lens from sun and headlights")
    plate = p.get("plate")
    if plate is not None and plate["height_px"] < MIN_PLATE_PX:
        add("warn", f"plates are {plate['height_px']} px tall (want at least {MIN_PLATE_PX})",
            "zoom in or mount the camera closer to where vehicles stop")
    if not found:
        add("pass", "streaming")
    order = {"fail": 0, "warn": 1, "pass": 2, "skip": 3}
    found.sort(key=lambda f: order[f["status"]])
    return found


def describe(p: dict[str, Any]) -> str:
    """One line: the figures a technician looks at first."""
    text = f"{p['width']}x{p['height']} {p['codec'] or '?'} at {p['fps']:.1f} fps, sharpness {p['sharpness']:.1f}"
    if p.get("plate"):
        text += f", plate {p['plate']['display'] or p['plate']['text']} {p['plate']['height_px']} px tall"
    return text


def no_picture_fix(url: str) -> str:
    if url.startswith("file:"):
        return "fix the file path in the camera's url"
    if url.startswith("synthetic:"):
        return "check the synthetic:// options in the camera's url"
    if url.startswith(("usb:", "/dev/video")) or url.isdigit():
        return "check the USB cable and `edgectl camera list`; only one program may read a USB camera"
    return "check the URL, the camera's power and network, and its user/password"


def camera_check(name: str, cam: CameraSection, *, seconds: float = 2.0,
                 live: dict[str, Any] | None = None) -> CheckResult:
    """Doctor's check of one camera: from the controller's live health when it runs, else a probe.

    Opening a camera the controller already reads would compete with it (USB cameras allow one
    reader), so while the controller runs its own view is the truth.
    """
    if live is not None:
        state = str(live.get("state"))
        figures = f"{live.get('width')}x{live.get('height')} at {float(live.get('fps') or 0):.1f} fps"
        if state == "streaming":
            return CheckResult(name, "pass", f"streaming (controller): {figures}", details={"live": live})
        return CheckResult(
            name, "fail", f"{state} (controller): {live.get('last_error') or 'no frames'}",
            "run `edgectl camera probe " + name + "` with the service stopped to see the cause",
            details={"live": live},
        )
    try:
        p = probe_camera(cam.url, name=name, seconds=seconds, open_timeout_s=min(cam.open_timeout_s, 8.0),
                         stall_after_s=min(cam.stall_timeout_s, max(1.0, seconds / 2)), expect_fps=cam.read_fps)
    except CameraError as err:
        return CheckResult(name, "fail", f"no picture: {err}", no_picture_fix(cam.url))
    top = p["findings"][0]
    if top["status"] == "pass":
        return CheckResult(name, "pass", describe(p), details=p)
    return CheckResult(name, top["status"], f"{top['reason']}; {describe(p)}", top["fix"], details=p)
