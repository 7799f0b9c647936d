"""Evidence images (plate crops, overview frames), stored content-addressed.

An image's file name is its sha256, and the event carries that hash: whoever holds the event can
prove an image is the one the post saw, and a swapped file no longer matches its name. The store
keeps a quota and a retention; the oldest images go first, and only images older than the retention
may be evicted for room (the quota alarm fires well before that matters).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import StorageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvidenceUsage:
    files: int
    bytes: int
    quota_bytes: int
    alarm: bool


class EvidenceStore:
    def __init__(self, root: Path, *, quota_bytes: int, retention_s: float, alarm_fraction: float = 0.8) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.quota_bytes = quota_bytes
        self.retention_s = retention_s
        self.alarm_fraction = alarm_fraction
        self._lock = threading.Lock()
        self._alarmed = False

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.jpg"

    def put_image(self, image: np.ndarray, quality: int = 90) -> str:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise StorageError("could not encode evidence image as JPEG")
        return self.put_bytes(buf.tobytes())

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` durably under its hash; storing the same bytes twice is free."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_of(digest)
        if path.exists():
            return digest
        with self._lock:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except OSError as err:
                raise StorageError(f"evidence store {self.root}: {err.strerror or err}") from err
        return digest

    def get(self, sha256: str) -> bytes:
        """The image's bytes, checked against its name: a changed file is an integrity failure."""
        from edge.errors import IntegrityError

        data = self.path_of(sha256).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(f"evidence image {sha256} does not match its hash")
        return data

    def usage(self) -> EvidenceUsage:
        files = total = 0
        for p in self.root.glob("*/*.jpg"):
            files += 1
            total += p.stat().st_size
        return EvidenceUsage(files, total, self.quota_bytes, total >= self.alarm_fraction * self.quota_bytes)

    def enforce(self, now: float | None = None) -> int:
        """Remove images past retention; returns how many.

        Images younger than the retention are evidence for crossings HQ may still ask about, so they
        are never evicted to make room: when they alone pass the alarm level the alarm stays raised
        (logged once, and in ``usage()``) for a person to act on.
        """
        now = time.time() if now is None else now
        entries = sorted(((p.stat().st_mtime, p.stat().st_size, p) for p in self.root.glob("*/*.jpg")),
                         key=lambda e: e[0])
        total = sum(size for _, size, _ in entries)
        removed = 0
        for mtime, size, path in entries:
            expired = now - mtime >= self.retention_s
            if not expired:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        alarm = total >= self.alarm_fraction * self.quota_bytes
        if alarm and not self._alarmed:
            log.warning("evidence store %s at %.0f%% of its quota", self.root, 100 * total / self.quota_bytes)
        elif not alarm and self._alarmed:
            log.info("evidence store %s back under its alarm level", self.root)
        self._alarmed = alarm
        return removed
