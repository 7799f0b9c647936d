"""``customs-edge read IMAGE_OR_VIDEO...``: the post's plate reader on files, one JSON line per result.

Technicians use it to check what a camera's view yields; HQ uses it on evidence pictures. An image
gives one line; a video gives one line per crossing (plates seen in consecutive sampled frames, a
crossing ending when no plate has been seen for ``--gap`` seconds of video), voted across frames
exactly as the lane does. A file that cannot be read gives a line with ``error`` and the command
carries on with the next file; the exit status is 1 when any file failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from edge.config import RecognitionSection
from edge.errors import EdgeError
from edge.recognition.types import PlateRead

if TYPE_CHECKING:
    from edge.recognition.voting import PlateVoter

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def _plate_json(r: PlateRead) -> dict[str, Any]:
    return {
        "text": r.text,
        "display": r.display,
        "country": r.country,
        "syntax": r.syntax,
        "confidence": r.confidence,
        "ocr_confidence": r.evidence.ocr_mean if r.evidence is not None else None,
        "box": list(r.box),
    }


def _result_json(reads: list[PlateRead]) -> dict[str, Any]:
    return {
        "plates": [_plate_json(r) for r in reads if r.kind == "plate"],
        "containers": [
            {"code": r.text, "display": r.display, "confidence": r.confidence, "box": list(r.box)}
            for r in reads
            if r.kind == "container"
        ],
        "adr": [
            {"hazard": parts[0], "un": parts[1], "confidence": r.confidence, "box": list(r.box)}
            for r in reads
            if (parts := r.hazard_un) is not None
        ],
    }


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="customs-edge read",
        description="Read plates, container codes and ADR plates in images or videos; one JSON line each.",
    )
    ap.add_argument("files", nargs="+", type=Path, metavar="IMAGE_OR_VIDEO")
    ap.add_argument("--config", type=Path, help="a post's TOML config: its [recognition] section is used")
    ap.add_argument("--models-dir", type=Path, help="where manifest.toml and the .onnx files are")
    ap.add_argument("--threads", type=int, help="onnxruntime threads (default: the config's, or 2)")
    ap.add_argument("--country", action="append", default=None, help="preferred country (ISO code), repeatable")
    ap.add_argument("--roi", type=str, help="x,y,w,h in pixels: read only this region")
    ap.add_argument("--fps", type=float, default=5.0, help="video: frames a second to read (default 5)")
    ap.add_argument("--gap", type=float, default=2.0, help="video: seconds without a plate that end a crossing")
    return ap


def _recognition_section(args: argparse.Namespace) -> RecognitionSection:
    base: dict[str, Any] = {}
    if args.config is not None:
        from edge.config import load_config

        base = load_config(args.config).recognition.model_dump()
    if args.models_dir is not None:
        base["models_dir"] = args.models_dir
    if args.threads is not None:
        base["threads"] = args.threads
    if args.country:
        base["countries"] = [c.upper() for c in args.country]
    return RecognitionSection.model_validate(base)


def _parse_roi(text: str | None) -> tuple[int, int, int, int] | None:
    if not text:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4 or not all(p.lstrip("-").isdigit() for p in parts):
        raise ValueError(f"--roi wants x,y,w,h in whole pixels, got {text!r}")
    x, y, w, h = (int(p) for p in parts)
    return x, y, w, h


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        roi = _parse_roi(args.roi)
        cfg = _recognition_section(args)
        from edge.recognition.reader import PlateReader

        reader = PlateReader(cfg)
    except (EdgeError, ValueError) as err:
        print(f"customs-edge read: {err}", file=sys.stderr)
        return 2
    failed = False
    for path in args.files:
        try:
            if path.suffix.lower() in IMAGE_SUFFIXES:
                _emit(_read_image(reader, path, roi))
            else:
                for line in _read_video(reader, path, roi, args.fps, args.gap, cfg):
                    _emit(line)
        except (EdgeError, ValueError, OSError) as err:
            failed = True
            _emit({"file": str(path), "error": str(err)})
    return 1 if failed else 0


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _read_image(reader: Any, path: Path, roi: tuple[int, int, int, int] | None) -> dict[str, Any]:
    if not path.is_file():
        raise OSError(f"{path}: no such file")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{path}: not an image OpenCV can decode")
    t0 = time.perf_counter()
    reads = reader.read(img, roi)
    ms = (time.perf_counter() - t0) * 1000
    return {"file": str(path), **_result_json(reads), "width": img.shape[1], "height": img.shape[0],
            "latency_ms": round(ms, 1), "models": reader.model_versions()}


def _read_video(
    reader: Any, path: Path, roi: tuple[int, int, int, int] | None, fps: float, gap: float,
    cfg: RecognitionSection,
) -> list[dict[str, Any]]:
    from edge.recognition.syntax import SyntaxBook
    from edge.recognition.voting import PlateVoter

    if not path.is_file():
        raise OSError(f"{path}: no such file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: not an image or a video OpenCV can open")
    book = SyntaxBook.load(preferred=cfg.countries)
    src_fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    if not np.isfinite(src_fps) or src_fps <= 0:
        src_fps = 25.0
    step = max(1, round(src_fps / max(fps, 0.1)))
    out: list[dict[str, Any]] = []
    voter: PlateVoter | None = None
    start = last_seen = 0.0
    index = 0
    frames_read = 0

    def close() -> None:
        nonlocal voter
        if voter is None:
            return
        line: dict[str, Any] = {"file": str(path), "crossing": len(out), "start_s": round(start, 2),
                                "end_s": round(last_seen, 2), "frames": len(voter), **crossing_reads(voter)}
        out.append(line)
        voter = None

    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % step == 0:
                frames_read += 1
                t = index / src_fps
                reads = reader.read(frame, roi)
                if reads:
                    if voter is not None and t - last_seen > gap:
                        close()
                    if voter is None:
                        voter = PlateVoter(book)
                        start = t
                    for r in reads:
                        voter.add(_with_frame(r, index, t))
                    last_seen = t
            index += 1
    finally:
        cap.release()
    close()
    if frames_read == 0:
        raise ValueError(f"{path}: no frame could be decoded")
    if not out:
        out.append({"file": str(path), "crossing": None, "frames": frames_read, "plates": [],
                    "containers": [], "adr": []})
    return out


def crossing_reads(voter: PlateVoter) -> dict[str, Any]:
    """What one crossing of a video read: its plate by vote, each container and orange plate voted on
    by itself (a truck may carry two containers), and every plate text seen, for the technician;
    words (letters alone) only where nothing else was read, as the reader and the vote treat them."""
    from edge.recognition.syntax import is_word

    line: dict[str, Any] = {}
    best = voter.best("plate")
    if best is not None:
        read, conf, support = best
        line["plate"] = {**_plate_json(read), "confidence": conf, "frame_seq": read.frame_seq,
                         "supporting_frames": support}
    line["containers"] = [{"code": read.text, "display": read.display, "confidence": conf}
                          for read, conf, _ in voter.each("container")]
    line["adr"] = [{"hazard": parts[0], "un": parts[1], "confidence": conf}
                   for read, conf, _ in voter.each("adr") if (parts := read.hazard_un) is not None]
    texts = {r.text for r in voter.reads() if r.kind == "plate"}
    line["plates"] = sorted({t for t in texts if not is_word(t)} or texts)
    return line


def _with_frame(r: PlateRead, seq: int, t: float) -> PlateRead:
    from dataclasses import replace

    return replace(r, frame_seq=seq, timestamp=t)


if __name__ == "__main__":
    raise SystemExit(main())
