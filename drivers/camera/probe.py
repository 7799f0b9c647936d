"""What a technician needs to know when mounting a camera: does it stream, how fast, how sharp, how lit.

Used by ``edgectl camera probe URL``: the same sources the lane uses, so a probe that works means the
lane will work.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from drivers.camera import open_source
from drivers.camera.capture import CaptureSource
from edge.config import redact_url
from edge.errors import CameraError

log = logging.getLogger(__name__)


def image_quality(image: np.ndarray) -> dict[str, float]:
    """Sharpness (variance of the Laplacian: low is out of focus or smeared) and exposure figures."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    lap = cv2.Laplacian(gray, cv2.CV_64F)
    n = float(gray.size)
    return {
        "sharpness": round(float(lap.var()), 2),
        "exposure_mean": round(float(gray.mean()), 2),
        "clipped_dark": round(float(np.count_nonzero(gray <= 5)) / n, 4),
        "clipped_bright": round(float(np.count_nonzero(gray >= 250)) / n, 4),
    }


def probe(url: str, seconds: float = 3.0, snapshot: Path | None = None, *,
          open_timeout_s: float = 10.0, **opts: Any) -> dict[str, Any]:
    """Open ``url``, read it for ``seconds``, and report codec, resolution, fps and image quality.

    Raises :class:`CameraError` naming the cause when no frame arrives. The fps is measured from the
    frames actually received, not the nominal rate the stream announces (also reported).
    """
    src = open_source(url, "probe", stall_timeout_s=max(2.0, min(seconds, 5.0)), open_timeout_s=open_timeout_s,
                      **opts)
    assert isinstance(src, CaptureSource)
    src.start()
    try:
        first = src.wait_frame(timeout=open_timeout_s + 2.0, fail_fast=True)
        # A stream that just opened hands over its probe buffer in a burst: leave it out of the rate.
        warmup_end = time.time() + min(1.0, seconds / 3)
        stamps: list[float] = []
        last = first
        t_end = time.monotonic() + seconds
        while (left := t_end - time.monotonic()) > 0:
            f = src.latest(after_seq=last.seq, timeout=min(left, 1.0))
            if f is None:
                if src.ended:
                    break
                continue
            if time.time() >= warmup_end:
                stamps.append(time.time())
            last = f
        health = src.health()
    finally:
        src.close()
    fps = 0.0
    if len(stamps) >= 2 and stamps[-1] > stamps[0]:
        fps = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    h, w = last.image.shape[:2]
    result: dict[str, Any] = {
        "url": redact_url(url),
        "codec": health.extra.get("codec", ""),
        "backend": health.extra.get("backend", ""),
        "width": w,
        "height": h,
        "fps": round(fps, 2),
        "nominal_fps": health.extra.get("nominal_fps"),
        "frames": len(stamps),
        "seconds": seconds,
        "dropped": health.dropped,
        **image_quality(last.image),
        "snapshot": None,
    }
    if snapshot is not None:
        snapshot = Path(snapshot)
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(snapshot), last.image, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise CameraError(f"cannot write snapshot {snapshot} (is the extension .jpg?)")
        result["snapshot"] = str(snapshot)
    return result


def list_usb_cameras() -> list[dict[str, Any]]:
    """The V4L2 devices on this machine with their driver names (several per camera are normal:
    the second is usually metadata, which V4L2 cannot stream)."""
    out: list[dict[str, Any]] = []
    for dev in sorted(glob.glob("/dev/video*"), key=lambda d: int(re.sub(r"\D", "", d) or 0)):
        m = re.fullmatch(r"/dev/video(\d+)", dev)
        if not m:
            continue
        base = os.path.basename(dev)
        name = ""
        try:
            name = Path(f"/sys/class/video4linux/{base}/name").read_text().strip()
        except OSError:
            pass
        out.append({
            "device": dev,
            "index": int(m.group(1)),
            "name": name,
            "accessible": os.access(dev, os.R_OK | os.W_OK),
        })
    return out
