"""Evidence images: content-addressed, tamper-evident, pruned by retention only."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest

from edge.errors import IntegrityError
from edge.evidence import EvidenceStore


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path, quota_bytes=10_000_000, retention_s=3600)
    img = np.full((40, 120, 3), 200, np.uint8)
    a = store.put_image(img)
    b = store.put_image(img)
    assert a == b
    data = store.get(a)
    assert hashlib.sha256(data).hexdigest() == a
    assert store.usage().files == 1


def test_changed_file_is_detected(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path, quota_bytes=10_000_000, retention_s=3600)
    digest = store.put_bytes(b"\xff\xd8original")
    store.path_of(digest).write_bytes(b"\xff\xd8swapped")
    with pytest.raises(IntegrityError, match=digest):
        store.get(digest)


def test_retention_prunes_old_and_never_young(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path, quota_bytes=10, retention_s=3600, alarm_fraction=0.5)
    old = store.put_bytes(b"old image")
    young = store.put_bytes(b"young image")
    past = time.time() - 7200
    os.utime(store.path_of(old), (past, past))
    assert store.enforce() == 1
    assert not store.path_of(old).exists()
    assert store.path_of(young).exists()  # over quota, but within retention: kept, alarm raised
    assert store.usage().alarm
