"""Fine-tune the PP-OCR text recognizer on plate crops and export it as a drop-in ONNX recognizer.

Why: the shipped recognizer is general-purpose; it reads 78.8% of the annotated `us` plates exactly
(`./dev bench recognizer`), and a recognizer trained on plates is the way forward of issue 5. This
is the training half, the same script for a CPU pilot and a GPU run; the data is the other half
(models/README.md, "Where the remaining errors are").

What it does: converts the shipped recognizer to torch (its final softmax cut, so training sees
logits; the two 2x2 `SAME_UPPER` convolutions and the max-pool given explicit pads, which
onnx2torch needs), fine-tunes all of it (or, with `--only-head`, the classifier alone; see
`make_trainable`) with CTC on the text crops of the annotated plates of the
`--train` splits (cut as `bench.recognizer` cuts them) and, with `--synthetic-fonts`, on synthetic
plate lines of every format (`synth_plates.py`), all augmented; it measures on the `--eval` splits
as it goes (exact as read and after the reader's syntax step), and writes an ONNX file with the
shipped contract: input `[N, 3, 48, W]`, softmax output `[N, T, C]` with the shipped model's C
(1750: its output layer is cut, `prune_classes.py`), the same `character`
metadata, and a modification notice. The reader needs no change; measure the file with
`./dev bench recognizer --model FILE` and `./dev bench accuracy --rec-model FILE`.

Needs, at training time only (never at run time), in the project's virtualenv:

    .venv/bin/pip install torch==2.13.0 onnx2torch   # here, torch's CPU wheel from local disk

onnx2torch imports torchvision for NMS and RoIAlign only, which this graph does not use; where
torchvision cannot be imported (PyPI's fails beside the CPU wheel), a stub stands in for it.

Usage:

    .venv/bin/python models/tools/finetune_recognizer.py --train br --eval us --steps 200 --out rec.onnx
    .venv/bin/python models/tools/synth_plates.py --fetch-fonts fonts/   # once; npm registry
    .venv/bin/python models/tools/finetune_recognizer.py --train --eval br us --synthetic-fonts fonts/

Measured with it (2026-11-29, models/README.md): on the dev splits alone, fine-tuning ruins the
other split within 10-40 steps; synthetic plates soften that but alone read no better. Those pilots
trained the convolutions only (see `make_trainable`); with every weight trained, synthetic plates
alone still cost `br` 30 points as read in 100 steps. With `--keep 10` (distillation towards the
shipped model), `br` held and `us` gained 2.7 points as read in 400 steps, but the whole pipeline
read fewer plates with it (models/README.md). Worn synthetic plates (the plate's border, bolts,
band, emblems and stains in the crop; `--synthetic-worn`) gained 3.6-4.1 `us` points as read by
step 250-500, none after the syntax step, and the pipeline lost 3 `us` photos. Those losses are
the pipeline's choice of box, not the recognizer dropping characters: a surer model reads a partial
box convincingly enough that the full-size pass never runs (models/README.md, "Blending").

A long run: `--checkpoints` writes the recognizer at each measurement (OUT-STEP.onnx), and `--init
FILE` goes on from one of them (`--keep` still pulls towards the shipped model). On a GPU:
`--device cuda`, `--workers N` processes draw the synthetic plates, `--time-budget S` stops in time,
and `--eval-crops FILE` measures on crops cut here by `--save-eval-crops FILE` (the machine has no
dev photos); `models/tools/prepare_gpu_run.sh` and `gpu_finetune.sh` do all of it.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import sys
import time
import types
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
for _path in (REPO, Path(__file__).resolve().parent):  # run as a script: the project, and synth_plates
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from model_edit import NOTICE_KEY  # noqa: E402  (beside this file)

from edge.recognition.ocr import to_input  # noqa: E402  (the project is on the path from here on)

HEIGHT, WIDTH = 48, 320  # the recognizer's input height, and the width the reader pads batches to


def logits_graph(src: Path) -> Any:
    """The recognizer's ONNX graph without its final softmax, with explicit pads, for onnx2torch."""
    import onnx
    from onnx import helper

    model = onnx.load(str(src))
    graph = model.graph
    softmax = [n for n in graph.node if n.op_type == "Softmax"]
    if not softmax or softmax[-1].output[0] != graph.output[0].name:
        raise ValueError(f"{src}: the graph does not end in a softmax; not a PP-OCR CTC recognizer")
    last = softmax[-1]
    graph.node.remove(last)
    old = graph.output[0]
    graph.output.remove(old)
    graph.output.append(helper.make_tensor_value_info(last.input[0], onnx.TensorProto.FLOAT, None))
    for node in graph.node:
        for attr in list(node.attribute):
            if attr.name == "auto_pad" and attr.s in (b"SAME_UPPER", b"SAME_LOWER"):
                kernel = [list(a.ints) for a in node.attribute if a.name == "kernel_shape"]
                if kernel != [[2, 2]]:
                    raise ValueError(f"{src}: {node.name} pads {attr.s.decode()} with kernel {kernel}")
                # A 2x2 kernel at stride 1 or 2 pads one pixel at the end (SAME_UPPER) of each axis.
                node.attribute.remove(attr)
                node.attribute.append(helper.make_attribute("pads", [0, 0, 1, 1]))
    return model


def make_trainable(net: Any, torch: Any, only_head: bool = False) -> int:
    """Turn the converted graph's weight initializers into parameters; the number of values trained.

    onnx2torch keeps the initializers that feed MatMul and Add nodes (the SVTR neck's attention and
    MLP weights, the 120 x C classifier) as buffers, which an optimizer never sees: before
    2026-11-29 this tool trained the convolutions and batch norms only, under a frozen neck and
    classifier. Float tensors of at least two values are weights, biases and norm scales; scalars
    (epsilons, attention scales) and integer shapes stay constants. With ``only_head``, only the
    classifier (the initializers shaped by the class count) is trained, and every other weight is
    frozen.
    """
    classes = None
    holder = getattr(net, "initializers", None)
    if holder is not None:
        for name, buf in list(holder.named_buffers(recurse=False)):
            if buf.is_floating_point() and buf.numel() >= 2:
                delattr(holder, name)
                holder.register_parameter(name, torch.nn.Parameter(buf.clone()))
        sizes = [p.shape[-1] for p in holder.parameters()]
        classes = max(sizes) if sizes else None
    if only_head:
        for p in net.parameters():
            p.requires_grad_(classes is not None and p.shape[-1] == classes)
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad))


def encode(text: str, index: dict[str, int]) -> list[int]:
    """A plate text as the recognizer's class indices (upper-case Latin letters and digits)."""
    missing = sorted({ch for ch in text if ch not in index})
    if missing:
        raise ValueError(f"{text!r}: {''.join(missing)} not in the recognizer's character list")
    return [index[ch] for ch in text]


def prepare(img: np.ndarray) -> np.ndarray:
    """A crop as the reader feeds it: height 48, aspect kept, right-padded to 320 with the model's 0."""
    h, w = img.shape[:2]
    rw = max(8, min(WIDTH, math.ceil(HEIGHT * w / max(h, 1))))
    resized = cv2.resize(img, (rw, HEIGHT), interpolation=cv2.INTER_LINEAR)
    x = np.zeros((3, HEIGHT, WIDTH), np.float32)
    x[:, :, :rw] = to_input(resized)
    return x


def augment(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """What a lane camera does to a plate the dev photos show clean: its box cut a little off or
    wide, tilt, blur, light, sensor noise, low resolution, JPEG."""
    h, w = img.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + np.float32([[rng.uniform(-0.04, 0.04) * w, rng.uniform(-0.1, 0.1) * h] for _ in range(4)])
    out = cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (w, h), borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.2))
    gain, offset, noise = rng.uniform(0.7, 1.3), rng.uniform(-30, 30), rng.uniform(0, 6)
    grain = np.random.default_rng(rng.randrange(2**32)).normal(0, noise, out.shape)
    out = np.clip(out.astype(np.float32) * gain + offset + grain, 0, 255).astype(np.uint8)
    if rng.random() < 0.6:  # the dev photos' plates are often 15-25 px tall, read at 48
        s = rng.uniform(0.3, 1.0)
        small = cv2.resize(out, (max(1, int(w * s)), max(1, int(h * s))))
        out = cv2.resize(small, (w, h))
    ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(40, 95)])
    return cv2.imdecode(enc, cv2.IMREAD_COLOR) if ok else out


Cuts = list[np.ndarray]  # a plate's text line as the closer look cuts it, then the reader's recuts


def save_crops(path: Path, splits: dict[str, list[tuple[Cuts, str]]]) -> None:
    """The measured splits' plate text lines (each with its recuts) and labels in one .npz file (no
    pickles), for a training machine that has the tool but not the dev photos (the GPU machine is
    lent the repository only)."""
    arrays: dict[str, np.ndarray] = {}
    labels: dict[str, list[tuple[str, int]]] = {}
    for split, items in splits.items():
        labels[split] = [(text, len(cuts)) for cuts, text in items]
        for i, (cuts, _) in enumerate(items):
            for k, cut in enumerate(cuts):
                arrays[f"{split}/{i}/{k}"] = np.ascontiguousarray(cut, np.uint8)
    arrays["labels"] = np.frombuffer(json.dumps(labels).encode(), np.uint8)
    with path.open("wb") as f:
        np.savez_compressed(f, **arrays)


def load_crops(path: Path) -> dict[str, list[tuple[Cuts, str]]]:
    with np.load(path, allow_pickle=False) as z:
        labels: dict[str, list[tuple[str, int]]] = json.loads(z["labels"].tobytes())
        return {split: [([z[f"{split}/{i}/{k}"] for k in range(n)], text) for i, (text, n) in enumerate(items)]
                for split, items in labels.items()}


def _synthetic_batch(
    stream: Any, n: int, index: dict[str, int], rng: random.Random
) -> tuple[np.ndarray, list[list[int]]]:
    images, labels = [], []
    for _ in range(n):
        img, text = next(stream)
        images.append(prepare(augment(img, rng)))
        labels.append(encode(text, index))
    return np.stack(images), labels


def _as_is(item: Any) -> Any:
    return item


def synthetic_batches(torch: Any, fonts: list[Path], n: int, worn: float, seed: int, workers: int,
                      index: dict[str, int], marks: bool = True) -> Any:
    """An endless stream of (inputs [n, 3, 48, 320], labels) of synthetic plates, degraded.

    Drawing and degrading a plate costs a few milliseconds of one core: a CPU run can afford to do
    it between steps, a GPU eats hundreds a second, so there ``workers`` processes draw them, each
    from its own seed."""
    from synth_plates import samples  # beside this file

    if workers <= 0:
        rng = random.Random(seed + 1)
        stream = samples(fonts, rng, worn, marks)
        return iter(lambda: _synthetic_batch(stream, n, index, rng), None)

    class Plates(torch.utils.data.IterableDataset):  # type: ignore[misc,name-defined]
        def __iter__(self) -> Any:
            info = torch.utils.data.get_worker_info()
            rng = random.Random(seed * 1000 + (info.id if info is not None else 0) + 1)
            stream = samples(fonts, rng, worn, marks)
            while True:
                yield _synthetic_batch(stream, n, index, rng)

    loader = torch.utils.data.DataLoader(Plates(), batch_size=None, num_workers=workers, collate_fn=_as_is,
                                         prefetch_factor=4, persistent_workers=True,
                                         multiprocessing_context="fork")
    return iter(loader)


def _torch_modules() -> tuple[Any, Any]:
    try:
        import torchvision  # noqa: F401
    except Exception:  # absent, or PyPI's build that fails beside torch's CPU wheel
        stub = types.ModuleType("torchvision")
        ops = types.ModuleType("torchvision.ops")
        ops.nms = ops.roi_align = None  # type: ignore[attr-defined]
        stub.ops = ops  # type: ignore[attr-defined]
        sys.modules["torchvision"], sys.modules["torchvision.ops"] = stub, ops
    try:
        import onnx2torch
        import torch
    except ImportError as err:
        hint = ".venv/bin/pip install torch onnx2torch"
        raise SystemExit(f"training needs torch and onnx2torch: {hint} ({err})") from err
    return torch, onnx2torch


def main(argv: list[str] | None = None) -> int:
    from bench.accuracy import DEFAULT_DATASET
    from bench.recognizer import plate_crops, plate_cuts
    from edge.recognition.models import find_models_dir
    from edge.recognition.reader import RECUTS, PlateReader

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--train", nargs="*", default=["br"], help="splits whose plates it learns from")
    ap.add_argument("--eval", nargs="+", default=["us"], help="splits it is measured on (never trained on)")
    ap.add_argument("--synthetic-fonts", type=Path, default=None,
                    help="fonts folder (models/tools/synth_plates.py --fetch-fonts): mix in synthetic plates")
    ap.add_argument("--synthetic-share", type=float, default=0.5, help="share of each batch that is synthetic")
    ap.add_argument("--synthetic-worn", type=float, default=0.7,
                    help="share of the synthetic plates drawn worn (border, bolts, emblems, stains; synth_plates.py)")
    ap.add_argument("--synthetic-no-marks", action="store_true",
                    help="worn plates without the plate's border at the line's ends and without emblems")
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--opt", choices=["adamw", "sgd"], default="adamw")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the fine-tuned recognizer here (ONNX)")
    ap.add_argument("--init", type=Path, default=None,
                    help="start from this recognizer (an earlier run's --out) instead of the shipped one")
    ap.add_argument("--checkpoints", action="store_true",
                    help="also write the recognizer at each measurement, as OUT's name with -STEP added")
    ap.add_argument("--keep", type=float, default=0.0,
                    help="weight of a distillation term that keeps the outputs near the shipped model's on "
                    "the same inputs (learning without forgetting); 0: off")
    ap.add_argument("--only-head", action="store_true",
                    help="train the classifier alone (the layer that maps features to the output classes)")
    ap.add_argument("--blend", type=float, nargs="+", default=[], metavar="ALPHA",
                    help="also measure, and write beside --out as STEM-blendALPHA.onnx, the trained weights "
                    "blended with the shipped ones: shipped + ALPHA x (trained - shipped), as WiSE-FT does")
    ap.add_argument("--device", default="auto", help="torch device: cpu, cuda, or auto (cuda where there is one)")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes that draw and degrade the synthetic plates (0: this one); a GPU needs many")
    ap.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                    help="stop training after this long (then measure and write OUT), whatever --steps says")
    ap.add_argument("--eval-crops", type=Path, default=None,
                    help="measure on the crops in this file (--save-eval-crops) instead of cutting them from "
                    "--dataset: for a machine that has the tool but not the photos")
    ap.add_argument("--save-eval-crops", type=Path, default=None, metavar="FILE",
                    help="cut the --eval splits' plate crops into FILE (.npz) and exit; needs no torch")
    args = ap.parse_args(argv)
    reader = PlateReader()

    def crops(split: str) -> list[tuple[np.ndarray, str]]:
        out = [(c, t) for _, t, c in plate_crops(reader, args.dataset, split, None) if c is not None]
        print(f"{split}: {len(out)} plate crops", file=sys.stderr)
        return out

    def cuts(split: str) -> list[tuple[Cuts, str]]:
        out = [(c, t) for _, t, c in plate_cuts(reader, args.dataset, split, None, RECUTS) if c]
        print(f"{split}: {len(out)} plate text lines, each cut {len(RECUTS) + 1} ways", file=sys.stderr)
        return out

    if args.save_eval_crops is not None:
        save_crops(args.save_eval_crops, {split: cuts(split) for split in args.eval})
        print(f"wrote {args.save_eval_crops}", file=sys.stderr)
        return 0
    both = sorted(set(args.eval) & set(args.train))
    if both:
        print(f"error: {', '.join(both)} is both trained on and measured on", file=sys.stderr)
        return 2
    if not args.train and args.synthetic_fonts is None:
        print("error: nothing to train on: name --train splits or --synthetic-fonts", file=sys.stderr)
        return 2
    torch, onnx2torch = _torch_modules()
    import onnx

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    rng = random.Random(args.seed)
    src = find_models_dir() / "PP-OCRv6_rec_small.onnx"
    index = {c: i for i, c in enumerate(reader.recognizer.classes) if i > 0}
    train = [item for split in args.train for item in crops(split)]
    if args.eval_crops is not None:
        saved = load_crops(args.eval_crops)
        missing = sorted(set(args.eval) - set(saved))
        if missing:
            print(f"error: {args.eval_crops} holds no crops of {', '.join(missing)}", file=sys.stderr)
            return 2
        evals = {split: saved[split] for split in args.eval}
    else:
        evals = {split: cuts(split) for split in args.eval}
    targets = [encode(t, index) for _, t in train]
    synthetic: Any = None
    share = 1.0 if not train else min(1.0, max(0.0, args.synthetic_share))
    n_syn = round(args.batch * share) if args.synthetic_fonts is not None else 0
    if args.synthetic_fonts is not None:
        fonts = sorted(p for p in args.synthetic_fonts.iterdir() if p.suffix in (".woff", ".ttf", ".otf"))
        if not fonts:
            print(f"error: no fonts in {args.synthetic_fonts}", file=sys.stderr)
            return 2
        synthetic = synthetic_batches(torch, fonts, n_syn, args.synthetic_worn, args.seed, args.workers, index,
                                      marks=not args.synthetic_no_marks)
    net = onnx2torch.convert(logits_graph(src))
    net.eval()  # BatchNorm keeps the statistics it was trained with; the graph has no dropout
    shipped = {k: v.detach().clone() for k, v in net.state_dict().items()} if args.blend else {}
    teacher = copy.deepcopy(net).requires_grad_(False) if args.keep > 0 else None  # the shipped model, kept
    if args.init is not None:  # go on from an earlier run's file; --keep still pulls towards the shipped model
        net = onnx2torch.convert(logits_graph(args.init))
        net.eval()
    if args.blend and set(net.state_dict()) != set(shipped):
        print(f"error: --blend needs the shipped model's layout, and {args.init} has another", file=sys.stderr)
        return 2
    net.to(device)
    if teacher is not None:
        teacher.to(device)
    trained = make_trainable(net, torch, args.only_head)
    print(f"training {trained:,} values on {device}", file=sys.stderr)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = (torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0) if args.opt == "adamw"
           else torch.optim.SGD(params, lr=args.lr, momentum=0.9))
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)

    def blended(alpha: float) -> Any:
        """The shipped weights moved ``alpha`` of the way to the trained ones. Fine-tuning from one
        start keeps the two in one basin, so the blend is a model too; it tends to keep what the
        shipped one read right while taking part of what was learnt (Wortsman et al., WiSE-FT)."""
        model = copy.deepcopy(net).cpu()
        state = model.state_dict()
        for k, v in state.items():
            if v.is_floating_point():
                state[k] = shipped[k] + alpha * (v - shipped[k])
        model.load_state_dict(state)
        return model.to(device)

    def measure(data: list[tuple[Cuts, str]], model: Any = None) -> tuple[float, float, float]:
        """Exact reads of the first cut as read and after the syntax step, and of the vote of all cuts."""
        model = net if model is None else model
        as_read = after_syntax = by_vote = 0
        with torch.no_grad():
            for k in range(0, len(data), 16):
                chunk = data[k : k + 16]
                images = [c for cs, _ in chunk for c in cs]
                x = torch.from_numpy(np.stack([prepare(c) for c in images])).to(device)
                probs = iter(torch.softmax(model(x).float(), -1).cpu().numpy())
                for cs, truth in chunk:
                    lines = [reader.recognizer.decode(next(probs)) for _ in cs]
                    readings = reader.line_readings(lines[0], cs[0])
                    as_read += lines[0].text == truth
                    after_syntax += (readings[0].text if readings else "") == truth
                    by_vote += reader.cuts_vote(lines, cs) == truth
        return as_read / len(data), after_syntax / len(data), by_vote / len(data)

    def report(step: int, model: Any = None, label: str = "") -> dict[str, float]:
        figures: dict[str, float] = {"step": step}
        parts = []
        for name, data in ([("train", [([c], t) for c, t in train])] if train else []) + list(evals.items()):
            as_read, after_syntax, by_vote = measure(data, model)
            figures[f"{name}_as_read"], figures[f"{name}_after_syntax"] = as_read, after_syntax
            figures[f"{name}_voted"] = by_vote
            parts.append(f"{name} {100 * as_read:.1f}% as read, {100 * after_syntax:.1f}% after syntax, "
                         f"{100 * by_vote:.1f}% by the vote of cuts")
        print(f"step {step}{label}: " + "; ".join(parts), flush=True)
        return figures

    def export(path: Path, steps: int, model: Any = None, alpha: float | None = None) -> None:
        """A drop-in ONNX recognizer: the shipped contract (softmax over the same classes, the
        ``character`` metadata) and a notice of what was changed."""
        model = net if model is None else model

        class WithSoftmax(torch.nn.Module):  # type: ignore[misc,name-defined]
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, x: Any) -> Any:
                return torch.softmax(self.inner(x), -1)

        sample = torch.from_numpy(np.stack([prepare(np.full((48, 160, 3), 200, np.uint8))]))
        torch.onnx.export(WithSoftmax(copy.deepcopy(model).cpu()), (sample,), str(path), input_names=["x"],
                          output_names=["probs"], dynamic_axes={"x": {0: "n", 3: "w"}, "probs": {0: "n", 1: "t"}},
                          opset_version=17, dynamo=False)
        exported = onnx.load(str(path))
        for prop in onnx.load(str(src)).metadata_props:
            if prop.key == "character":
                exported.metadata_props.add(key="character", value=prop.value)
        exported.metadata_props.add(
            key=NOTICE_KEY,
            value=f"fine-tuned from {src.name}{f' (going on from {args.init.name})' if args.init else ''} "
            f"by models/tools/finetune_recognizer.py on the plates of "
            f"{'+'.join(args.train) or 'no split'}{' and synthetic plates' if synthetic is not None else ''} "
            f"({steps} steps, lr {args.lr}, {args.opt}, keep {args.keep})"
            + (f", blended with the shipped weights at {alpha:g}" if alpha is not None else ""),
        )
        onnx.save(exported, str(path))
        print(f"wrote {path}", file=sys.stderr)

    history = [report(0)]
    t0 = time.perf_counter()
    step = 0
    while step < args.steps:
        if args.time_budget is not None and time.perf_counter() - t0 > args.time_budget:
            print(f"step {step}: the time budget of {args.time_budget:g} s is spent", file=sys.stderr)
            break
        step += 1
        picks = rng.sample(range(len(train)), min(args.batch - n_syn, len(train))) if train else []
        parts = [np.stack([prepare(augment(train[i][0], rng)) for i in picks])] if picks else []
        labels = [targets[i] for i in picks]
        if synthetic is not None:
            syn_x, syn_labels = next(synthetic)
            parts.append(syn_x)
            labels.extend(syn_labels)
        x = torch.from_numpy(np.concatenate(parts)).to(device, non_blocking=True)
        log_probs = torch.log_softmax(net(x).float(), -1)  # N, T, C
        loss = ctc(
            log_probs.transpose(0, 1),  # T, N, C
            torch.tensor([c for lab in labels for c in lab], dtype=torch.long, device=device),
            torch.full((len(labels),), log_probs.shape[1], dtype=torch.long),
            torch.tensor([len(lab) for lab in labels], dtype=torch.long),
        )
        if teacher is not None:
            # Learning without forgetting: stay near what the shipped model says on the same input,
            # every time step, so what it knew of other lettering is not traded for these plates.
            with torch.no_grad():
                target = torch.softmax(teacher(x).float(), -1)
            kd = torch.nn.functional.kl_div(log_probs, target, reduction="none").sum(-1).mean()
            loss = loss + args.keep * kd
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        if step % 10 == 0:
            print(f"step {step}: loss {loss.item():.3f}, {(time.perf_counter() - t0) / step:.2f} s a step",
                  file=sys.stderr, flush=True)
        if step % args.eval_every == 0 and step < args.steps:
            history.append(report(step))
            if args.out is not None and args.checkpoints:
                export(args.out.with_name(f"{args.out.stem}-{step}{args.out.suffix}"), step)
    if history[-1]["step"] != step:
        history.append(report(step))
    if args.out is not None:
        export(args.out, step)
    blends = {}
    for alpha in args.blend:
        model = blended(alpha)
        blends[f"{alpha:g}"] = report(step, model, f", blended at {alpha:g}")
        if args.out is not None:
            export(args.out.with_name(f"{args.out.stem}-blend{alpha:g}{args.out.suffix}"), step, model, alpha)
    print(json.dumps({"train": args.train, "eval": args.eval, "device": str(device), "steps": step,
                      "seconds": round(time.perf_counter() - t0, 1), "history": history, "blends": blends}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
