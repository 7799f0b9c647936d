"""The tool that cuts the recognizer's output layer to the classes a plate reader uses, and the
shipped recognizer it made."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from edge.recognition.alphabet import ALNUM
from edge.recognition.models import find_models_dir, load_manifest, open_session
from edge.recognition.ocr import SEP, TextRecognizer

from .conftest import REPO, load_model_tool

TOOL = REPO / "models" / "tools" / "prune_classes.py"
NOTICE = "customs_post_edge.modification"
# Blank, then: a plate letter, two ideographs, a dash, a Cyrillic letter that is no plate look-alike
# (Б), the Cyrillic O (a look-alike of O), a Hangul syllable, a katakana; then the space.
CHARS = ["A", "日", "国", "-", "Б", "О", "한", "ア"]
KEPT = ["A", "-", "Б", "О"]


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return load_model_tool("prune_classes")


def _recognizer_like(path: Path, chars: list[str], *, notice: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A model shaped like a PP-OCR recognizer's end: features -> MatMul -> Add -> Identity ->
    Softmax, with a ``character`` table. Returns its weight and bias."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    classes = len(chars) + 2
    rng = np.random.default_rng(7)
    w = rng.normal(0, 1, (4, classes)).astype(np.float32)
    b = rng.normal(0, 1, classes).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["mm"]),
            helper.make_node("Add", ["mm", "b"], ["logits"]),
            helper.make_node("Identity", ["logits"], ["logits2"]),
            helper.make_node("Softmax", ["logits2"], ["probs"], axis=2),
        ],
        "tiny-rec",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", 4])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", "T", classes])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
        value_info=[helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", "T", classes])
                    for name in ("mm", "logits", "logits2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    model.metadata_props.add(key="character", value="\n".join(chars))
    if notice is not None:
        model.metadata_props.add(key=NOTICE, value=notice)
    onnx.save(model, str(path))
    return w, b


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=60)


def test_the_cut_model_keeps_plate_look_alikes_and_marks_and_drops_cjk(tmp_path: Path) -> None:
    import onnxruntime as ort

    src, dst = tmp_path / "src.onnx", tmp_path / "dst.onnx"
    w, b = _recognizer_like(src, CHARS)
    result = _run(src, dst)
    assert result.returncode == 0, result.stderr
    assert "kept 6 of 10 output classes" in result.stderr

    session = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["character"].splitlines() == KEPT
    assert "CJK dropped" in meta[NOTICE]
    x = np.random.default_rng(3).normal(0, 1, (2, 5, 4)).astype(np.float32)
    probs = session.run(None, {"x": x})[0]
    assert probs.shape == (2, 5, len(KEPT) + 2)
    # Each kept class's probability is its share among the kept classes: the softmax of their logits.
    keep = [0, *(1 + CHARS.index(c) for c in KEPT), len(CHARS) + 1]
    logits = x @ w[:, keep] + b[keep]
    want = np.exp(logits - logits.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
    assert np.allclose(probs, want, atol=1e-6)
    # No tensor of the cut model still claims the old class count: onnxruntime would warn of the
    # mismatch each time it loads the model.
    onnx = pytest.importorskip("onnx")
    cut = onnx.load(str(dst))
    last = {i.name: i.type.tensor_type.shape.dim[-1].dim_value for i in [*cut.graph.value_info, *cut.graph.output]}
    assert last == {"mm": 6, "logits": 6, "logits2": 6, "probs": 6}
    # The reader folds the cut model's output as it did the whole one's.
    rec = TextRecognizer(session)
    assert rec.group_of[1] == ALNUM.index("A") and rec.group_of[4] == ALNUM.index("O")
    assert rec.group_of[2] == SEP and rec.group_of[3] == SEP


def test_the_cut_is_deterministic_and_checks_its_source(tmp_path: Path, tool: ModuleType) -> None:
    src = tmp_path / "src.onnx"
    _recognizer_like(src, CHARS)
    first, second = _run(src, tmp_path / "a.onnx"), _run(src, tmp_path / "b.onnx")
    assert first.returncode == 0 and first.stdout == second.stdout
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()

    wrong = _run(src, tmp_path / "c.onnx", "--expect-sha256", "0" * 64)
    assert wrong.returncode == 1 and "expected 0000" in wrong.stderr
    assert not (tmp_path / "c.onnx").exists()
    assert _run(tmp_path / "missing.onnx", tmp_path / "d.onnx").returncode == 2


def test_an_earlier_modification_notice_is_kept(tmp_path: Path) -> None:
    import onnxruntime as ort

    src, dst = tmp_path / "src.onnx", tmp_path / "dst.onnx"
    _recognizer_like(src, CHARS, notice="fine-tuned by finetune_recognizer.py")
    assert _run(src, dst).returncode == 0
    meta = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    assert meta[NOTICE].startswith("fine-tuned by finetune_recognizer.py; then output layer cut")


def test_a_model_that_is_not_a_recognizer_is_refused_by_name(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")

    src = tmp_path / "src.onnx"
    _recognizer_like(src, CHARS)
    model = onnx.load(str(src))
    del model.metadata_props[:]
    onnx.save(model, str(src))
    result = _run(src, tmp_path / "dst.onnx")
    assert result.returncode == 1
    assert "no 'character' metadata" in result.stderr

    short = tmp_path / "short.onnx"
    _recognizer_like(short, CHARS)
    model = onnx.load(str(short))
    model.metadata_props[0].value = "A\nB"
    onnx.save(model, str(short))
    result = _run(short, tmp_path / "dst2.onnx")
    assert result.returncode == 1
    assert "the character table 4" in result.stderr


def test_the_shipped_recognizer_reads_every_plate_character() -> None:
    # The cut must never cost a plate character: each of the 36 folds at least one output class,
    # and the Latin original of each is among them.
    models = find_models_dir()
    rec = TextRecognizer(open_session(models / load_manifest(models)["ppocr-rec"].file, 1))
    for g, cols in enumerate(rec.group_cols):
        assert len(cols) > 0, ALNUM[g]
        assert any(rec.classes[c].upper() == ALNUM[g] for c in cols), ALNUM[g]
    assert not any(len(c) == 1 and ord(c) >= 0x2E80 for c in rec.classes)


def test_cutting_the_shipped_recognizer_again_changes_nothing_it_reads(tool: ModuleType) -> None:
    models = find_models_dir()
    rec = TextRecognizer(open_session(models / load_manifest(models)["ppocr-rec"].file, 1))
    assert tool.kept_classes(rec.classes) == list(range(len(rec.classes)))
