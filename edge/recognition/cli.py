"""``customs-edge read IMAGE_OR_VIDEO...``: the post's plate reader on files, one JSON line per result.

Technicians use it to check what a camera's view yields; HQ uses it on evidence pictures. An image
gives one line; a video gives one line per crossing (plates seen in consecutive sampled frames, a
crossing ending when no plate has been seen for ``--gap`` seconds of video), voted across frames
exactly as the lane does, each printed as soon as its crossing has ended, with the video's progress
on stderr (``-q`` for none). A file that cannot be read gives a line with ``error`` and the command
carries on with the next file; the exit status is 1 when any file failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
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
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".ts", ".mts", ".mpg", ".mpeg", ".mjpeg",
                  ".mjpg", ".h264", ".264", ".h265", ".265", ".flv", ".wmv"}


def _plate_json(r: PlateRead) -> dict[str, Any]:
    return {
        "text": r.text,
        "display": r.display,
        "country": r.country,
        "country_read": r.country_read,
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
    ap.add_argument("files", nargs="+", type=Path, metavar="IMAGE_OR_VIDEO",
                    help="files, or folders: every image and video in a folder and its subfolders, by name")
    ap.add_argument("--config", type=Path, help="a post's TOML config: its [recognition] section is used")
    ap.add_argument("--models-dir", type=Path, help="where manifest.toml and the .onnx files are")
    ap.add_argument("--threads", type=int, help="onnxruntime threads (default: the config's, or 2)")
    ap.add_argument("--country", action="append", default=None, help="preferred country (ISO code), repeatable")
    ap.add_argument("--ignore-country", action="append", default=None, metavar="COUNTRY",
                    help="a country whose plates never come: no plate is taken for one of its, and a text only "
                    "its formats fit is read without a country; repeatable")
    ap.add_argument("--roi", type=str, help="x,y,w,h in pixels: read only this region")
    ap.add_argument("--fps", type=float, default=5.0, help="video: frames a second to read (default 5)")
    ap.add_argument("--gap", type=float, default=2.0, help="video: seconds without a plate that end a crossing")
    ap.add_argument("-q", "--quiet", action="store_true", help="video: no progress on stderr")
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
    if args.ignore_country:
        base["ignore_countries"] = [c.upper() for c in args.ignore_country]
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
    for path in _expand(args.files):
        try:
            if path.is_dir():
                raise OSError(f"{path}: no image or video in this folder")
            if path.suffix.lower() in IMAGE_SUFFIXES:
                _emit(_read_image(reader, path, roi))
            else:
                progress = None if args.quiet else _Progress(path.name)
                for line in _read_video(reader, path, roi, args.fps, args.gap, progress):
                    _emit(line)
        except (EdgeError, ValueError, OSError) as err:
            failed = True
            _emit({"file": str(path), "error": str(err)})
    return 1 if failed else 0


def _expand(paths: list[Path]) -> Iterator[Path]:
    """Each folder becomes the images and videos under it, sorted by path (an evidence folder of a
    day, a camera's export); other files there, such as notes and labels, are passed over. A folder
    with none is itself yielded, so that it is reported, not silently skipped."""
    media = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    for path in paths:
        if not path.is_dir():
            yield path
            continue
        found = sorted(p for p in path.rglob("*") if p.suffix.lower() in media and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        yield from found or [path]


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
    reads = reader.read(img, roi, still=True)
    ms = (time.perf_counter() - t0) * 1000
    return {"file": str(path), **_result_json(reads), "width": img.shape[1], "height": img.shape[0],
            "latency_ms": round(ms, 1), "models": reader.model_versions()}


def _read_video(
    reader: Any, path: Path, roi: tuple[int, int, int, int] | None, fps: float, gap: float,
    progress: Callable[[float, float | None, int, bool], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Each crossing's line as soon as the crossing has ended (``gap`` seconds of video without a
    plate), so a long evidence video shows its results while it is read; ``progress`` is told the
    video time read, the video's length where the file says it, the crossings so far, and whether
    the video is done."""
    from edge.recognition.voting import PlateVoter

    if not path.is_file():
        raise OSError(f"{path}: no such file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: not an image or a video OpenCV can open")
    book = reader.crossing_book
    src_fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    if not np.isfinite(src_fps) or src_fps <= 0:
        src_fps = 25.0
    n_frames = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    length = n_frames / src_fps if np.isfinite(n_frames) and n_frames > 0 else None
    step = max(1, round(src_fps / max(fps, 0.1)))
    crossings = 0
    voter: PlateVoter | None = None
    start = last_seen = 0.0
    index = 0
    frames_read = 0

    def close() -> dict[str, Any] | None:
        nonlocal voter, crossings
        if voter is None:
            return None
        line: dict[str, Any] = {"file": str(path), "crossing": crossings, "start_s": round(start, 2),
                                "end_s": round(last_seen, 2), "frames": len(voter), **crossing_reads(voter)}
        crossings += 1
        voter = None
        return line

    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % step == 0:
                frames_read += 1
                t = index / src_fps
                if voter is not None and t - last_seen > gap and (line := close()) is not None:
                    yield line
                reads = reader.read(frame, roi)
                if reads:
                    if voter is None:
                        voter = PlateVoter(book)
                        start = t
                    for r in reads:
                        voter.add(_with_frame(r, index, t))
                    last_seen = t
                if progress is not None:
                    progress(t, length, crossings, False)
            index += 1
    finally:
        cap.release()
    if (line := close()) is not None:
        yield line
    if frames_read == 0:
        raise ValueError(f"{path}: no frame could be decoded")
    if progress is not None:
        progress(max(length or 0.0, index / src_fps), length, crossings, True)
    if not crossings:
        yield {"file": str(path), "crossing": None, "frames": frames_read, "plates": [], "containers": [], "adr": []}


class _Progress:
    """Video progress on stderr, never on stdout (which carries the JSON lines): a line redrawn in
    place on a terminal, else a line at each tenth of the video (or every 30 s of it, where the file
    does not say its length)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tty = sys.stderr.isatty()
        self.last_mark = -1
        self.last_draw = 0.0

    def __call__(self, t: float, length: float | None, crossings: int, done: bool) -> None:
        if length:
            mark = int(10 * min(t, length) / length)
            text = f"{self.name}: {t:.1f} of {length:.1f} s read ({100 * min(t, length) / length:.0f}%), "
        else:
            mark = int(t // 30)
            text = f"{self.name}: {t:.1f} s read, "
        text += f"{crossings} crossing{'' if crossings == 1 else 's'}"
        if self.tty:
            now = time.monotonic()
            if done or now - self.last_draw >= 0.2:
                self.last_draw = now
                sys.stderr.write("\r" + text + ("\n" if done else ""))
                sys.stderr.flush()
        elif mark != self.last_mark or done:
            self.last_mark = mark
            sys.stderr.write(text + "\n")
            sys.stderr.flush()


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
