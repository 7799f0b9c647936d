"""Train the Iranian plate reader (``fa-plate-rec``) on synthetic plates and export it to ONNX.

Why a model of our own: an Iranian national plate is written in Persian digits and one Persian
series letter (``۱۲ ب ۳۴۵ | ۶۷``), and the shipped PP-OCR recognizer knows no Arabic script at all
(its 1 748 characters hold none), so it reads an Iranian truck's plate as nothing or as noise. No
Apache/MIT/BSD-licensed Persian plate reader ships in a wheel, and nothing may be downloaded at run
time, so we train one: a small convolutional CTC reader, on plates drawn in open (SIL OFL 1.1)
Persian fonts from the npm registry's ``@fontsource`` packages (fetched at training time only; the
weights are ours, Apache-2.0).

The model keeps the PP-OCR recognizer's contract (BGR ``[N, 3, 48, W]``, ``(x/255 - 0.5)/0.5``,
right-padded with 0; output ``[N, W/8, C]`` softmax, class 0 the CTC blank, then the ``character``
metadata's lines, then a space), so ``edge.recognition.ocr.TextRecognizer`` runs it unchanged. Its
characters are Latin codes (digits, and one letter per Persian series letter, ``SERIES``), so a read
is plain ``[A-Z0-9]`` text that HQ can match and the syntax table can check (``ir-national``). It
turns the picture grey first (fixed weights), so colour, an infrared camera or a yellow truck
plate make no difference to it.

Held out: the font the synthetic camera draws Iranian plates in (Vazirmatn, through
``drivers/camera/iranian.py``'s glyph atlas) is never trained on; the validation figures printed
are on plates drawn that way, so they measure another font and another renderer than training's.
No real Iranian plate photo was available to this project: see the model card in ``models/README.md``.

    python models/tools/train_persian_reader.py --fetch-fonts FONTS
    python models/tools/train_persian_reader.py --fonts FONTS --out models/fa_plate_rec.onnx

Needs torch, Pillow (with raqm, for the shaped word ``الف``) and onnx, at training time only.
"""

from __future__ import annotations

import argparse
import functools
import io
import math
import multiprocessing as mp
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from drivers.camera.afghan import PROVINCES as AFGHAN_PROVINCES  # noqa: E402
from drivers.camera.iranian import (  # noqa: E402
    BAND_FRACTION,
    DIGITS_FA,
    IRAN_WORD,
    SERIES,
    draw_iranian_plate,
)
from drivers.camera.synthetic import render_plate  # noqa: E402
from drivers.sim.traffic import make_foreign_plate, make_plate  # noqa: E402

HEIGHT = 48
CODES = "0123456789" + "".join(SERIES)  # the model's characters, in class order after the blank
HELD_OUT = "vazirmatn"
# @fontsource packages with Persian digits (Tajawal and Readex Pro have none), SIL OFL 1.1. The last
# seven since the thirteenth session: the more typefaces, the better the reader reads one it never
# saw (the held-out one here, a real plate's at a post).
FONT_PACKAGES = ("baloo-bhaijaan-2", "cairo", "changa", "harmattan", "lalezar", "lateef", "mada", "markazi-text",
                 "noto-kufi-arabic", "noto-sans-arabic", "reem-kufi", "alexandria", "almarai", "el-messiri",
                 "ibm-plex-sans-arabic", "kufam", "noto-naskh-arabic", "zain")
# Series letters weighted roughly as a post sees them: trucks and buses (ع) and private cars most.
LETTER_WEIGHTS = {c: 3.0 for c in "BJDSCUQLMNVHY"} | {"E": 6.0, "T": 2.0, "P": 1.0, "A": 1.0, "Z": 0.5,
                                                     "X": 0.5, "W": 0.5, "K": 0.5, "G": 0.5, "F": 0.5}


def fetch_fonts(dest: Path) -> list[Path]:
    """Download the fonts' packages from the npm registry into ``dest`` (training machines only)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for package in FONT_PACKAGES:
            subprocess.run(["npm", "pack", f"@fontsource/{package}", "--silent"], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL)
            tgz = next(Path(tmp).glob(f"fontsource-{package}-*.tgz"))
            with tarfile.open(tgz) as tar:
                for member in tar.getmembers():
                    name = Path(member.name).name
                    # The Arabic subset alone: "noto-sans-arabic-latin-600-normal.woff" is the Noto
                    # package's Latin subset, which has no Persian glyph at all.
                    weight = name.removeprefix(f"{package}-arabic-").removesuffix("-normal.woff")
                    if weight.isdigit() and (int(weight) >= 600 or package == "lalezar"):
                        data = tar.extractfile(member)
                        assert data is not None
                        (dest / name).write_bytes(data.read())
                        out.append(dest / name)
    return out


def random_text(rng: random.Random) -> str:
    letters, weights = zip(*LETTER_WEIGHTS.items(), strict=True)
    letter = rng.choices(letters, weights)[0]
    return (f"{rng.randint(10, 99)}{letter}{rng.randint(100, 999)}{rng.randint(10, 99)}")


@functools.lru_cache(maxsize=64)
def _pil_glyphs(font_path: Path, size: int = 96) -> Any:
    """A glyph source for ``draw_iranian_plate`` that renders with Pillow in ``font_path``: every
    text on one baseline in a strip of the font's ascent + descent, cut to its ink left and right."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path), size)
    ascent, descent = font.getmetrics()
    cache: dict[str, np.ndarray] = {}

    def glyph(text: str) -> np.ndarray:
        if text not in cache:
            x0, _, x1, _ = font.getbbox(text)
            img = Image.new("L", (x1 - x0 + 8, ascent + descent), 0)
            ImageDraw.Draw(img).text((4 - x0, 0), text, font=font, fill=255)
            mask = np.asarray(img)
            cols = np.flatnonzero(mask.max(axis=0) > 0)
            cache[text] = np.ascontiguousarray(mask[:, cols[0] : cols[-1] + 1]) if len(cols) else mask
        return cache[text]

    return glyph


def draws_persian(font_path: Path) -> bool:
    """Whether the font has every glyph a plate is drawn with: a font without them draws its
    missing-glyph box or nothing, and a plate so drawn, labelled with its digits, teaches the
    reader noise."""
    glyph = _pil_glyphs(font_path)
    missing = glyph("\ue000")  # a private-use code point: the font's missing-glyph drawing
    chars = set("".join(DIGITS_FA)) | set("".join(SERIES.values())) | set(IRAN_WORD)
    return all(glyph(c).any() and not np.array_equal(glyph(c), missing) for c in chars if not c.isspace())


def write_atlas(font_path: Path, out: Path) -> None:
    """The camera's glyph atlas (``drivers/camera/glyphs/persian.png`` and ``.json``) from one font."""
    import json

    glyph = _pil_glyphs(font_path)
    # Appended, never inserted: the glyphs before keep their place in the strip, pixel for pixel.
    texts = [*DIGITS_FA, *SERIES.values(), IRAN_WORD, *AFGHAN_PROVINCES.values()]
    masks = [glyph(t) for t in texts]
    index, x = {}, 0
    for t, m in zip(texts, masks, strict=True):
        index[t] = [x, x + m.shape[1]]
        x += m.shape[1] + 6
    strip = np.zeros((masks[0].shape[0], x), np.uint8)
    for t, m in zip(texts, masks, strict=True):
        strip[:, index[t][0] : index[t][1]] = m
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out.with_suffix(".png")), strip, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    meta = {"font": font_path.name, "licence": "OFL-1.1", "size": 96, "glyphs": index}
    out.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def degrade(plate: np.ndarray, rng: random.Random) -> np.ndarray:
    """The plate as a lane camera and the detector's box give it: placed on a car, tilted, shrunk to
    14-70 px, blurred, noisy, compressed, lit unevenly, then cut out with a box that may include the
    blue band or not and miss a little at any side; grey, 48 px tall."""
    ph, pw = plate.shape[:2]
    m = int(ph * 0.8)
    car = tuple(rng.randint(0, 255) for _ in range(3))
    canvas = cv2.copyMakeBorder(plate, m, m, m, m, cv2.BORDER_CONSTANT, value=car)
    # Tilt and perspective, as a camera above and beside the lane sees a plate.
    src = np.float32([[m, m], [m + pw, m], [m + pw, m + ph], [m, m + ph]])
    j = ph * 0.08
    dst = src + np.float32([[rng.uniform(-j, j), rng.uniform(-j, j)] for _ in range(4)])
    ang = math.radians(rng.uniform(-4, 4))
    c = np.float32([m + pw / 2, m + ph / 2])
    rot = np.float32([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    dst = (dst - c) @ rot.T + c
    # Size: the plate's height in the frame, applied in the same warp.
    target = rng.uniform(14, 70)
    scale = target / ph
    warp = cv2.getPerspectiveTransform(src, dst * scale)
    h, w = max(8, int(canvas.shape[0] * scale)), max(8, int(canvas.shape[1] * scale))
    small = cv2.warpPerspective(canvas, warp, (w, h), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    # Light: a gradient, a shadow band, gain, offset and gamma; sensor noise.
    small *= np.linspace(rng.uniform(0.6, 1.2), rng.uniform(0.6, 1.2), w, dtype=np.float32)[None, :, None]
    if rng.random() < 0.25:
        y0 = rng.randint(0, h)
        small[y0 : y0 + rng.randint(h // 8 + 1, h // 2 + 2)] *= rng.uniform(0.4, 0.8)
    small = np.clip(small * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30), 0, 255)
    small = 255.0 * (small / 255.0) ** rng.uniform(0.7, 1.5)
    small += np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(0, 10), small.shape).astype(
        np.float32)
    small = np.clip(small, 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        k = rng.choice([3, 3, 5])
        small = cv2.GaussianBlur(small, (k, k), rng.uniform(0.3, 1.2))
    if rng.random() < 0.2:
        k = rng.randint(3, 6)
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2] = 1.0 / k
        small = cv2.filter2D(small, -1, kernel)
    if rng.random() < 0.7:
        _, enc = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(25, 95)])
        small = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    # The detector's box: the plate's corners after the warp, scaled, grown by a margin and jittered
    # at each side.
    corners = cv2.perspectiveTransform(src[None], warp)[0]
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    bh = y1 - y0
    band = BAND_FRACTION * (x1 - x0)
    # The DB detector grows the text it finds by one distance on every side: on the synthetic lane's
    # Iranian plates its box is 1.5 times the plate's height (1.3-1.9 from the 10th to the 90th
    # percentile, 14-36 px plates). Trained on tight boxes alone, the reader read 15% of 16 px
    # plates and 78% of 24 px ones from the detector's boxes, and 88% and 92% from tighter ones.
    grow = rng.uniform(0.05, 0.5) * bh if rng.random() < 0.7 else 0.0
    left = x0 + (band if rng.random() < 0.3 else 0.0) - grow + rng.uniform(-0.15, 0.12) * bh
    right = x1 + grow + rng.uniform(-0.12, 0.15) * bh
    top = y0 - grow + rng.uniform(-0.15, 0.12) * bh
    bottom = y1 + grow + rng.uniform(-0.12, 0.15) * bh
    sh, sw = small.shape[:2]
    xa, xb = max(0, int(left)), min(sw, math.ceil(right))
    ya, yb = max(0, int(top)), min(sh, math.ceil(bottom))
    crop = small[ya:yb, xa:xb]
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    rw = max(8, min(math.ceil(HEIGHT * grey.shape[1] / max(grey.shape[0], 1)), 640))
    return cv2.resize(grey, (rw, HEIGHT), interpolation=cv2.INTER_LINEAR)


def sample(args: tuple[int, list[str], bool, float]) -> tuple[np.ndarray, str]:
    """One plate, degraded, and its label; a share ``negative`` of them a Latin plate (of the region
    or a European one, as the synthetic camera draws them) labelled empty: the reader reads every
    text box of a frame, and must read nothing where no Persian is."""
    seed, fonts, atlas, negative = args
    rng = random.Random(seed)
    if rng.random() < negative:
        _, display, country, _ = make_plate(rng) if rng.random() < 0.7 else make_foreign_plate(rng)
        return degrade(render_plate(display, country, 56), rng), ""
    text = random_text(rng)
    glyphs = None if atlas else _pil_glyphs(Path(rng.choice(fonts)))
    plate = draw_iranian_plate(text, height=56, glyphs=glyphs, rng=rng)
    return degrade(plate, rng), text


def render_set(n: int, fonts: list[Path], seed: int, atlas: bool = False, workers: int = 2,
               negative: float = 0.0) -> list[tuple[np.ndarray, str]]:
    jobs = [(seed * 1_000_003 + i, [str(f) for f in fonts], atlas, negative) for i in range(n)]
    with mp.Pool(workers) as pool:
        return pool.map(sample, jobs, chunksize=256)


def build_model(n_classes: int) -> Any:
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    class Reader(nn.Module):
        """Grey and halved, then four conv stages down to 1/8 of the width and one row; a short 1-D context;
        per-step class scores. No recurrence: the padded right end stays blank and does not leak."""

        def __init__(self) -> None:
            super().__init__()
            grey = nn.Conv2d(3, 1, 1, bias=False)
            # BGR in, (x/255 - 0.5)/0.5: luma of the normalised channels is normalised luma.
            grey.weight.data[:] = torch.tensor([0.114, 0.587, 0.299]).view(1, 3, 1, 1)
            grey.weight.requires_grad_(False)
            self.grey = grey
            self.features = nn.Sequential(
                nn.AvgPool2d(2),  # 24 px rows are enough for a plate's digits, and 4x cheaper to train
                *block(1, 32), nn.MaxPool2d(2),
                *block(32, 64), nn.MaxPool2d(2),
                *block(64, 96), *block(96, 96),
                nn.Conv2d(96, 128, (6, 1), bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            )
            self.context = nn.Sequential(
                nn.Conv1d(128, 128, 3, padding=1), nn.ReLU(inplace=True), nn.Dropout(0.1),
                nn.Conv1d(128, 128, 3, padding=1), nn.ReLU(inplace=True),
            )
            self.head = nn.Conv1d(128, n_classes, 1)

        def forward(self, x: Any) -> Any:
            f = self.features(self.grey(x)).squeeze(2)  # [N, 128, W/8]
            return self.head(self.context(f) + f)  # logits [N, C, W/8]

    return Reader()


def to_batch(items: list[tuple[np.ndarray, str]], rng: random.Random, pad_to: int = 0,
             invert: float = 0.05) -> tuple[Any, Any, Any]:
    import torch

    width = max(max(g.shape[1] for g, _ in items), pad_to)
    width = int(math.ceil(width / 8) * 8)
    x = np.zeros((len(items), 3, HEIGHT, width), np.float32)
    for i, (g, _) in enumerate(items):
        v = (g.astype(np.float32) / 255.0 - 0.5) / 0.5
        if rng.random() < invert:  # light ink on a dark ground (a government plate in grey)
            v = -v
        x[i, :, :, : g.shape[1]] = v
    # A Latin plate's label is empty: all blank.
    targets = torch.tensor([CODES.index(c) + 1 for _, t in items for c in t], dtype=torch.long)
    lengths = torch.tensor([len(t) for _, t in items], dtype=torch.long)
    return torch.from_numpy(x), targets, lengths


def greedy(logits: Any) -> list[str]:
    best = logits.argmax(1).numpy()  # [N, T]
    out = []
    for row in best:
        prev, s = -1, []
        for k in row:
            if k != prev and 0 < k <= len(CODES):
                s.append(CODES[k - 1])
            prev = k
        out.append("".join(s))
    return out


def evaluate(model: Any, items: list[tuple[np.ndarray, str]]) -> tuple[float, float]:
    """(share of the Persian plates read exactly, share of the Latin ones read as a whole Iranian
    plate: eight characters, the third a series letter)."""
    import torch

    model.eval()
    right = false = plates = 0
    rng = random.Random(0)
    with torch.no_grad():
        for i in range(0, len(items), 128):
            chunk = items[i : i + 128]
            x, _, _ = to_batch(chunk, rng, pad_to=320, invert=0.0)
            for p, (_, t) in zip(greedy(model(x)), chunk, strict=True):
                plates += bool(t)
                right += bool(t) and p == t
                false += not t and len(p) == 8 and p[2].isalpha() and (p[:2] + p[3:]).isdigit()
    model.train()
    return right / max(1, plates), false / max(1, len(items) - plates)


def export(model: Any, out: Path) -> None:
    import onnx
    import torch

    class Softmaxed(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            return torch.softmax(self.inner(x), dim=1).transpose(1, 2)  # [N, W/8, C]

    model.eval()
    wrapped = Softmaxed(model)
    dummy = torch.zeros(1, 3, HEIGHT, 320)
    buf = io.BytesIO()
    torch.onnx.export(wrapped, (dummy,), buf, input_names=["x"], output_names=["probs"], opset_version=17,
                      dynamic_axes={"x": {0: "n", 3: "w"}, "probs": {0: "n", 1: "t"}}, dynamo=False)
    proto = onnx.load_from_string(buf.getvalue())
    meta = {
        "character": "\n".join(CODES),
        "glyphs": "\n".join([*DIGITS_FA, *SERIES.values()]),  # each character's Persian original
        "licence": "Apache-2.0",
        "notice": "Trained by the Customs Post Edge project on synthetic Iranian plates drawn in SIL OFL 1.1 "
                  "fonts (models/tools/train_persian_reader.py); no photographs were used.",
    }
    for k, v in meta.items():
        p = proto.metadata_props.add()
        p.key, p.value = k, v
    out.write_bytes(proto.SerializeToString())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fetch-fonts", type=Path, help="download the training fonts into this folder")
    ap.add_argument("--fonts", type=Path, help="folder of the training fonts (.woff)")
    ap.add_argument("--write-atlas", type=Path, metavar="FONT", help="write the camera's glyph atlas from FONT")
    ap.add_argument("--out", type=Path, default=Path("fa_plate_rec.onnx"))
    ap.add_argument("--train", type=int, default=60000, help="synthetic training plates")
    ap.add_argument("--val", type=int, default=1000, help="held-out plates (the camera's font and renderer)")
    ap.add_argument("--negative", type=float, default=0.3, help="share of Latin plates, labelled empty")
    ap.add_argument("--steps", type=int, default=7000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=500)
    args = ap.parse_args(argv)
    if args.fetch_fonts:
        for path in fetch_fonts(args.fetch_fonts):
            print(path, file=sys.stderr)
        return 0
    if args.write_atlas:
        write_atlas(args.write_atlas, REPO / "drivers" / "camera" / "glyphs" / "persian")
        return 0
    if not args.fonts:
        ap.error("--fonts is needed (fetch them first with --fetch-fonts)")
    import torch

    torch.manual_seed(args.seed)
    fonts = sorted(p for p in args.fonts.iterdir() if p.suffix == ".woff" and HELD_OUT not in p.name)
    lacking = [p for p in fonts if not draws_persian(p)]
    if lacking:
        print(f"skipping {len(lacking)} fonts without every Persian glyph a plate needs: "
              f"{', '.join(p.name for p in lacking)}", file=sys.stderr)
        fonts = [p for p in fonts if p not in lacking]
    if not fonts:
        ap.error(f"no font in {args.fonts} draws Persian plates (fetch them with --fetch-fonts)")
    print(f"{len(fonts)} training fonts; rendering {args.train} + {args.val} plates", file=sys.stderr)
    t0 = time.monotonic()
    train = render_set(args.train, fonts, args.seed, workers=args.workers, negative=args.negative)
    val = render_set(args.val, fonts, args.seed + 10_000, atlas=True, workers=args.workers, negative=args.negative)
    print(f"rendered in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    model = build_model(len(CODES) + 2)
    params = [p for p in model.parameters() if p.requires_grad]
    print(f"{sum(p.numel() for p in params)} weights", file=sys.stderr)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    for step in range(1, args.steps + 1):
        x, targets, lengths = to_batch(rng.sample(train, args.batch), rng)
        logits = model(x)  # [N, C, T]
        logp = logits.log_softmax(1).permute(2, 0, 1)  # [T, N, C]
        steps = torch.full((x.shape[0],), logp.shape[0], dtype=torch.long)
        loss = ctc(logp, targets, steps, lengths)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.4f} {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
        if step % args.eval_every == 0 or step == args.steps:
            exact, false = evaluate(model, val)
            print(f"step {step}: held-out font exact {exact:.3f}, Latin plates read as Iranian {false:.3f}",
                  file=sys.stderr, flush=True)
    export(model, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
