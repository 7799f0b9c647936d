"""Cut a PP-OCR recognizer's output layer down to the classes a plate reader can use.

Why: PP-OCRv6's recognizer scores 18 710 classes at every time step (a 120 x 18710 matrix, its bias
and a softmax over all of them), and 16 960 of those are characters from U+2E80 up (Chinese
characters, kana, fullwidth forms, CJK punctuation, emoji), which no plate, sign or sticker of this
project's region carries. On a 2-core AMD EPYC that output layer took 13% of the recognizer's
time, and the reader's own decoding walked all 18 710 columns again. The reader folds the output
onto 36 plate characters plus "anything else", so it needs the plate characters' look-alikes, a
sink for other marks (punctuation, Latin, Greek and Cyrillic letters, symbols) and the blank, not
the rest.

What stays: the CTC blank, the trailing space, every class that ``edge.recognition.ocr`` folds onto
a plate character, and every class whose character lies below U+2E80 (the start of the CJK
blocks). The rule looks at the character table only, never at photos, so the same cut follows any
fine-tuned model with the same table. The softmax then runs over the kept classes: every kept
class's probability is its share among them, which on the dev photos left every best read as it was
(see models/README.md).

Usage (needs the ``onnx`` package, a development dependency only)::

    python models/tools/prune_classes.py SRC.onnx DST.onnx [--expect-sha256 HEX]

Prints the new file's sha256 on stdout (for ``manifest.toml``) and what was kept on stderr. The
output is deterministic: the same source gives the same bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:  # run as a script, or loaded by its path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_edit import NOTICE_KEY, edit_args, sha256_of  # beside this file

CJK_START = 0x2E80  # CJK Radicals Supplement; Hiragana, Katakana, Hangul and the ideographs follow


def kept_classes(classes: list[str]) -> list[int]:
    """Indices of the output classes to keep, in order: the blank (0), the kept characters, the
    space (last)."""
    from edge.recognition.ocr import SEP, TextRecognizer

    group_of, _ = TextRecognizer._groups(classes)
    keep = [0]
    for i in range(1, len(classes) - 1):
        ch = classes[i]
        if group_of[i] != SEP or not ch or ord(ch[0]) < CJK_START:
            keep.append(i)
    keep.append(len(classes) - 1)
    return keep


def _producer(graph: Any, name: str) -> Any:
    for node in graph.node:
        if name in node.output:
            return node
    raise ValueError(f"no node produces {name!r}")


def _through_identity(graph: Any, name: str, passed: set[str]) -> Any:
    """The node that computes ``name``, looking through Identity nodes; every tensor name on the
    way is added to ``passed``."""
    passed.add(name)
    node = _producer(graph, name)
    while node.op_type == "Identity":
        passed.add(node.input[0])
        node = _producer(graph, node.input[0])
    return node


def prune(src: Path, dst: Path) -> tuple[int, int]:
    """Write ``src`` to ``dst`` with its output layer cut to ``kept_classes``; return (before, after).

    The file gets a metadata notice of the change: Apache-2.0 asks that a modified file carry one,
    and a model's own metadata is what travels with it.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    meta = {p.key: p.value for p in model.metadata_props}
    if "character" not in meta:
        raise ValueError(f"{src} has no 'character' metadata: not a PP-OCR recognizer")
    classes = ["<blank>", *meta["character"].splitlines(), " "]
    if len(graph.output) != 1:
        raise ValueError(f"{src} has {len(graph.output)} outputs; a PP-OCR recognizer has one")
    # Every tensor from the layer's MatMul to the output has one value per class on its last axis.
    resized: set[str] = set()
    softmax = _through_identity(graph, graph.output[0].name, resized)
    add = _through_identity(graph, softmax.input[0], resized) if softmax.op_type == "Softmax" else None
    matmul = _through_identity(graph, add.input[0], resized) if add is not None and add.op_type == "Add" else None
    if matmul is None or matmul.op_type != "MatMul":
        raise ValueError(f"{src} does not end in MatMul -> Add -> Softmax")
    inits = {i.name: i for i in graph.initializer}
    weight, bias = inits.get(matmul.input[1]), inits.get(add.input[1])
    if weight is None or bias is None:
        raise ValueError(f"{src}: the output layer's weight or bias is not a constant")
    w, b = numpy_helper.to_array(weight), numpy_helper.to_array(bias)
    if w.shape[-1] != len(classes) or b.shape != (len(classes),):
        raise ValueError(f"{src}: output layer has {w.shape[-1]} classes, the character table {len(classes)}")
    keep = kept_classes(classes)
    weight.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(w[:, keep]), weight.name))
    bias.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(b[keep]), bias.name))
    for info in [*graph.value_info, *graph.output]:
        if info.name in resized:
            dims = info.type.tensor_type.shape.dim
            if dims:
                dims[-1].Clear()
                dims[-1].dim_value = len(keep)
    props = [p for p in model.metadata_props if p.key not in (NOTICE_KEY, "character")]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    model.metadata_props.add(key="character", value="\n".join(classes[i] for i in keep[1:-1]))
    notice = (
        f"output layer cut from {len(classes)} to {len(keep)} classes (the characters below U+2E80 "
        f"and the plate characters' look-alikes; CJK dropped) by customs-post-edge "
        f"models/tools/prune_classes.py; source sha256 {sha256_of(src)}"
    )
    if meta.get(NOTICE_KEY):
        # A fine-tuned file says how it was made; the cut comes after that.
        notice = f"{meta[NOTICE_KEY]}; then {notice}"
    model.metadata_props.add(key=NOTICE_KEY, value=notice)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return len(classes), len(keep)


def main(argv: list[str] | None = None) -> int:
    args = edit_args(__doc__.split("\n\n")[0], argv)
    try:
        before, after = prune(args.src, args.dst)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"kept {after} of {before} output classes", file=sys.stderr)
    print(sha256_of(args.dst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
