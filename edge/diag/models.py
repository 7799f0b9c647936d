"""``edgectl model check``: every model in the manifest verified, loaded and run on a known plate.

The self-test image is rendered here (the synthetic camera's plate renderer on a grey "vehicle"),
so the check needs no file from outside the installation and its expected answer is known.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edge.config import RecognitionSection
from edge.diag.result import CheckResult
from edge.errors import ModelError

SELF_TEST_PLATE = ("01 A 123 BC", "UZ")


def self_test_image(display: str = SELF_TEST_PLATE[0], country: str = SELF_TEST_PLATE[1]) -> np.ndarray:
    """A 960x540 frame with one frontal plate 48 px tall on a vehicle-grey body."""
    import cv2

    from drivers.camera.synthetic import render_plate

    frame = np.full((540, 960, 3), 105, np.uint8)
    cv2.rectangle(frame, (240, 180), (720, 500), (70, 80, 95), -1)
    plate = render_plate(display, country, 48)
    ph, pw = plate.shape[:2]
    y, x = 380 - ph // 2, 480 - pw // 2
    frame[y:y + ph, x:x + pw] = plate
    return frame


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


def model_check(cfg: RecognitionSection | None = None, *, repeats: int = 3) -> dict[str, Any]:
    """Per model: sha256 verified, load time, latency on the self-test image; then the whole read.

    Never raises for a bad model: each problem is a finding (``status`` fail) naming the file.
    """
    from edge.recognition.models import ModelStore, open_session, verified_path
    from edge.recognition.ocr import TextDetector, TextRecognizer, crop_quad
    from edge.recognition.reader import DET_MODEL, FA_REC_MODEL, REC_MODEL, PlateReader, models_used

    cfg = cfg or RecognitionSection.model_validate({})
    needed = models_used(cfg)
    out: dict[str, Any] = {"models_dir": None, "models": [], "self_test": None, "status": "fail", "reason": ""}
    try:
        store = ModelStore(cfg.models_dir, threads=cfg.threads, spin_us=cfg.spin_us)
    except ModelError as err:
        out["reason"] = str(err)
        return out
    out["models_dir"] = str(store.dir)
    image = self_test_image()
    sessions: dict[str, Any] = {}
    for name, spec in sorted(store.specs.items()):
        entry: dict[str, Any] = {"name": name, "file": spec.file, "role": spec.role, "sha256": spec.sha256[:12],
                                 "verified": False, "load_ms": None, "latency_ms": None, "status": "fail",
                                 "reason": ""}
        out["models"].append(entry)
        try:
            t0 = time.perf_counter()
            path = verified_path(store.dir, spec)
            entry["verified"] = True
            sessions[name] = open_session(path, cfg.threads, cfg.spin_us)
            entry["load_ms"] = _ms(t0)
            entry.update(status="pass", reason="verified and loaded")
        except ModelError as err:
            entry["reason"] = str(err)
    # Latency of each model on its own share of the self-test, then the full reader end to end.
    if DET_MODEL in sessions:
        det = TextDetector(sessions[DET_MODEL], max_side=cfg.det_max_side)
        boxes = det.detect(image)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            boxes = det.detect(image)
            times.append(_ms(t0))
        _entry(out, DET_MODEL)["latency_ms"] = min(times)
        crops = [crop_quad(image, b.quad) for b in boxes[:4]]
        for name in (REC_MODEL, FA_REC_MODEL):
            if name not in sessions or name not in needed or not crops:
                continue
            rec = TextRecognizer(sessions[name])
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                rec.recognize(crops)
                times.append(_ms(t0))
            _entry(out, name)["latency_ms"] = min(times)
    for name in sessions:
        e = _entry(out, name)
        if e["latency_ms"] is None and name not in needed:
            e["reason"] = "verified and loaded (not used by the plate reader)"
    if all(m["status"] == "pass" for m in out["models"]) and needed <= set(sessions):
        reader = PlateReader(cfg)
        reader.read(image)  # first call allocates buffers
        t0 = time.perf_counter()
        reads = reader.read(image)
        took = _ms(t0)
        want = SELF_TEST_PLATE[0].replace(" ", "")
        got = reads[0].text if reads else None
        ok = got == want
        conf = round(reads[0].confidence, 3) if reads else None
        out["self_test"] = {"expected": want, "read": got, "confidence": conf, "latency_ms": took, "ok": ok}
        if ok:
            out.update(status="pass",
                       reason=f"{len(sessions)} model(s) verified; self-test read {got} in {took:.0f} ms")
        else:
            out.update(status="fail", reason=f"self-test plate {want} read as {got or 'nothing'}")
    else:
        bad = [m for m in out["models"] if m["status"] != "pass"]
        missing = needed - set(store.specs)
        out["reason"] = bad[0]["reason"] if bad else f"manifest lacks {', '.join(sorted(missing))}"
    return out


def _entry(out: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in out["models"] if m["name"] == name)


def models_doctor_check(cfg: RecognitionSection) -> CheckResult:
    r = model_check(cfg, repeats=1)
    if r["status"] == "pass":
        return CheckResult("models", "pass", r["reason"], details=r)
    fix = ("reinstall the package (models must match models/manifest.toml); never download models on a post"
           if "sha256" in r["reason"] or "missing" in r["reason"] or "manifest" in r["reason"]
           else "send `edgectl model check --json` output to HQ's support desk")
    return CheckResult("models", "fail", r["reason"], fix, details=r)
