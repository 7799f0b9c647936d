"""Model files are found, verified against the manifest's sha256, and refused when they differ."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.config import RecognitionSection
from edge.errors import ModelError
from edge.recognition.models import ModelStore, find_models_dir, load_manifest, sha256_of
from edge.recognition.reader import PlateReader

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


def test_manifest_hashes_match_the_shipped_files() -> None:
    specs = load_manifest(REPO_MODELS)
    assert {"ppocr-det", "ppocr-rec"} <= set(specs)
    for spec in specs.values():
        assert sha256_of(REPO_MODELS / spec.file) == spec.sha256
        assert spec.licence in ("Apache-2.0", "MIT", "BSD-2-Clause", "BSD-3-Clause")


def test_the_licence_file_names_each_shipped_file_with_its_hash() -> None:
    # MODEL_LICENSES.md is what a redistributor reads: its hash of the Persian reader had stayed the
    # first model's through a retraining.
    rows = {}
    for line in (REPO_MODELS / "MODEL_LICENSES.md").read_text("utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0].endswith(".onnx`"):
            rows[cells[0].strip("`")] = cells[2].split()[0].strip("`")
    assert {spec.file: spec.sha256 for spec in load_manifest(REPO_MODELS).values()} == rows


def test_default_models_dir_is_the_repository_one() -> None:
    assert find_models_dir() == REPO_MODELS


def _copy_models(dst: Path) -> None:
    dst.mkdir()
    for f in REPO_MODELS.iterdir():
        if f.suffix in (".onnx", ".toml"):
            shutil.copy(f, dst / f.name)


def test_a_model_with_a_wrong_sha256_is_refused(tmp_path: Path) -> None:
    models = tmp_path / "models"
    _copy_models(models)
    target = models / "PP-OCRv6_det_small.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, same name, different model
    target.write_bytes(bytes(data))
    expected = load_manifest(models)["ppocr-det"].sha256
    actual = sha256_of(target)
    with pytest.raises(ModelError) as info:
        PlateReader(RecognitionSection.model_validate({"models_dir": models}))
    msg = str(info.value)
    assert str(target) in msg
    assert expected in msg and actual in msg
    assert "does not match the manifest" in msg


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    models = tmp_path / "models"
    _copy_models(models)
    (models / "PP-OCRv6_rec_small.onnx").unlink()
    with pytest.raises(ModelError, match=r"PP-OCRv6_rec_small\.onnx.*missing"):
        PlateReader(RecognitionSection.model_validate({"models_dir": models}))


def test_a_dir_without_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model manifest found"):
        ModelStore(tmp_path)


def test_a_broken_manifest_is_refused(tmp_path: Path) -> None:
    (tmp_path / "manifest.toml").write_text("[[model]]\nname = 'x'\n")
    with pytest.raises(ModelError, match="lacks file, sha256"):
        ModelStore(tmp_path)


def test_model_versions_are_sha_prefixes(reader: PlateReader) -> None:
    versions = reader.model_versions()
    specs = load_manifest(REPO_MODELS)
    assert versions == {name: specs[name].sha256[:12] for name in ("ppocr-det", "ppocr-rec", "fa-plate-rec")}


def _spin(session: object) -> tuple[str, str | None]:
    opts = session.get_session_options()  # type: ignore[attr-defined]
    try:
        duration = opts.get_session_config_entry("session.intra_op.spin_duration_us")
    except RuntimeError:  # onnxruntime's answer for a key never set
        duration = None
    return opts.get_session_config_entry("session.intra_op.allow_spinning"), duration


def test_the_configured_spin_bounds_every_session_the_reader_opens() -> None:
    # Unbounded spinning made the pipeline 50% slower on 2 cores, never spinning 7-9% slower than a
    # short spin: the setting must reach both models' sessions as a bound, and 0 must mean no spin.
    reader = PlateReader(RecognitionSection.model_validate({"spin_us": 250}))
    for session in (reader.detector.session, reader.recognizer.session):
        assert _spin(session) == ("1", "250")
    store = ModelStore(REPO_MODELS, threads=1, spin_us=0)
    assert _spin(store.load("ppocr-det").session) == ("0", None)
    assert RecognitionSection.model_validate({}).spin_us == 100


@pytest.mark.parametrize("bad", [-1, 10_001])
def test_a_spin_out_of_range_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="spin_us"):
        RecognitionSection.model_validate({"spin_us": bad})


# -- subnormal weights -------------------------------------------------------------------------------

FLUSH_TOOL = REPO_MODELS / "tools" / "flush_denormals.py"
TINY = float(np.finfo(np.float32).tiny)


def _subnormal_share(arr: np.ndarray) -> float:
    return float(((arr != 0) & (np.abs(arr) < TINY)).mean()) if arr.size else 0.0


def test_no_shipped_model_has_a_layer_of_subnormal_weights() -> None:
    # Multiplying by subnormals is slow on Intel cores: the upstream detector's two layers of them
    # (24% and 63%) made it 3x slower there. A model swapped in later must be flushed the same way
    # (models/tools). The recognizer's worst tensor, 1.8% subnormal, measured no slower than flushed.
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    for spec in load_manifest(REPO_MODELS).values():
        model = onnx.load(str(REPO_MODELS / spec.file))
        for init in model.graph.initializer:
            if init.data_type != onnx.TensorProto.FLOAT:
                continue
            share = _subnormal_share(numpy_helper.to_array(init))
            assert share <= 0.05, f"{spec.file}: {init.name} is {share:.0%} subnormal; run {FLUSH_TOOL}"


def _tiny_conv_model(path: Path, weights: np.ndarray) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _run_tool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(FLUSH_TOOL), *map(str, args)], capture_output=True, text=True,
                          timeout=60)


def test_flush_tool_zeroes_subnormal_weights_and_nothing_else(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort
    from onnx import numpy_helper

    w = np.array([0.5, -0.25, TINY / 4, -TINY / 8, 0.0, TINY, 1e-30, -2.0], np.float32).reshape(2, 2, 2, 1)
    src, dst = tmp_path / "src.onnx", tmp_path / "dst.onnx"
    _tiny_conv_model(src, w)

    result = _run_tool(src, dst, "--expect-sha256", sha256_of(src))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == sha256_of(dst)
    assert "w: 2 of 8 values were subnormal" in result.stderr

    out = onnx.load(str(dst))
    flushed = numpy_helper.to_array(out.graph.initializer[0])
    expected = w.copy().reshape(-1)
    expected[2] = expected[3] = 0.0
    expected = expected.reshape(w.shape)
    assert np.array_equal(flushed, expected)  # the smallest normal value and 1e-30 are kept
    notice = {p.key: p.value for p in out.metadata_props}["customs_post_edge.modification"]
    assert sha256_of(src) in notice and "2 values in 1 tensors" in notice

    x = {"x": np.random.default_rng(0).normal(size=(1, 2, 3, 3)).astype(np.float32)}
    before = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, x)[0]
    after = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, x)[0]
    np.testing.assert_allclose(after, before, atol=1e-30)

    again = tmp_path / "again.onnx"
    assert _run_tool(src, again).returncode == 0
    assert sha256_of(again) == sha256_of(dst)  # reproducible: the manifest's hash can be re-derived


def test_flush_tool_refuses_a_source_with_another_hash(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    src = tmp_path / "src.onnx"
    _tiny_conv_model(src, np.ones((2, 2, 1, 1), np.float32))
    result = _run_tool(src, tmp_path / "dst.onnx", "--expect-sha256", "0" * 64)
    assert result.returncode == 1
    assert f"has sha256 {sha256_of(src)}, expected {'0' * 64}" in result.stderr
    assert not (tmp_path / "dst.onnx").exists()
