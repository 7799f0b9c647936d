"""The recognizer fine-tuning tool's parts that need no torch: the graph it converts, the labels and
the inputs it trains on, its augmentation. (Training itself needs torch, which only training installs;
where it is installed, one more test checks that every weight of the converted graph is trained.)"""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from edge.recognition.models import find_models_dir

from .conftest import load_model_tool


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return load_model_tool("finetune_recognizer")


def test_the_training_graph_is_the_recognizer_without_its_softmax(tool: ModuleType, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort

    src = find_models_dir() / "PP-OCRv6_rec_small.onnx"
    model = tool.logits_graph(src)
    for node in model.graph.node:
        for attr in node.attribute:
            assert not (attr.name == "auto_pad" and attr.s.startswith(b"SAME")), node.name
    path = tmp_path / "logits.onnx"
    onnx.save(model, str(path))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 48, 320)).astype(np.float32)
    shipped = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    cut = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probs = shipped.run(None, {shipped.get_inputs()[0].name: x})[0]
    logits = cut.run(None, {cut.get_inputs()[0].name: x})[0]
    e = np.exp(logits - logits.max(-1, keepdims=True))
    # Explicit pads and SAME_UPPER take different convolution kernels, whose rounding depends on
    # the CPU: on one 2-core AMD EPYC (AVX2) the probabilities differed by 3.6e-5, on the machine
    # this test was written on by less than 1e-5. A wrong pad shifts every feature map; it fails.
    assert np.allclose(e / e.sum(-1, keepdims=True), probs, atol=2e-4)
    assert (logits.argmax(-1) == probs.argmax(-1)).all()


def test_a_graph_without_a_final_softmax_is_refused(tool: ModuleType) -> None:
    with pytest.raises(ValueError, match="does not end in a softmax"):
        tool.logits_graph(find_models_dir() / "PP-OCRv6_det_small.onnx")


def test_labels_are_the_recognizers_class_indices(tool: ModuleType) -> None:
    index = {"<blank>": 0, "A": 5, "1": 9}
    assert tool.encode("A1A", index) == [5, 9, 5]
    with pytest.raises(ValueError, match="Z not in"):
        tool.encode("A1Z", index)


def test_inputs_are_fed_as_the_reader_feeds_them(tool: ModuleType) -> None:
    crop = np.full((24, 60, 3), 255, np.uint8)  # aspect 2.5: 120 px wide at height 48
    x = tool.prepare(crop)
    assert x.shape == (3, 48, 320) and x.dtype == np.float32
    assert np.allclose(x[:, :, :120], 1.0) and not x[:, :, 120:].any()
    assert tool.prepare(np.zeros((10, 500, 3), np.uint8)).shape == (3, 48, 320)  # a long line is squeezed


def test_augmentation_is_reproducible_and_keeps_the_crop_size(tool: ModuleType) -> None:
    crop = np.random.default_rng(1).integers(0, 255, (40, 160, 3), dtype=np.uint8)
    a = tool.augment(crop, random.Random(7))
    b = tool.augment(crop, random.Random(7))
    c = tool.augment(crop, random.Random(8))
    assert a.shape == crop.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_the_measured_split_is_never_trained_on(tool: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert tool.main(["--train", "br", "us", "--eval", "us"]) == 2
    assert "us is both trained on and measured on" in capsys.readouterr().err
    assert tool.main(["--train", "--eval", "br", "us"]) == 2
    assert "nothing to train on" in capsys.readouterr().err


def test_every_weight_of_the_converted_graph_is_trained(tool: ModuleType) -> None:
    # Where training is installed only (torch, onnx2torch): onnx2torch keeps the initializers of
    # MatMul nodes (the neck's attention, the classifier) as buffers no optimizer sees.
    torch = pytest.importorskip("torch")
    try:
        _, onnx2torch = tool._torch_modules()  # stubs a torchvision that cannot be imported
    except SystemExit:
        pytest.skip("onnx2torch is not installed (training only)")
    src = find_models_dir() / "PP-OCRv6_rec_small.onnx"
    net = onnx2torch.convert(tool.logits_graph(src)).eval()
    convolutions = sum(p.numel() for p in net.parameters())
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (1, 3, 48, 320)).astype(np.float32))
    with torch.no_grad():
        before = net(x)
    trained = tool.make_trainable(net, torch)
    classifier = [p for p in net.parameters() if p.shape[-1] == before.shape[-1]]
    assert classifier and trained > convolutions + sum(p.numel() for p in classifier)
    with torch.no_grad():
        # The same graph, now with weights an optimizer sees. Compared to a rounding, not bit for
        # bit: a whole-suite run (torch 2.13, an AVX-512 CPU) once failed this test, and this
        # comparison is the only part of it that can differ from run to run.
        torch.testing.assert_close(net(x), before, rtol=0, atol=1e-4)
    head = onnx2torch.convert(tool.logits_graph(src)).eval()
    assert tool.make_trainable(head, torch, only_head=True) == sum(p.numel() for p in classifier)


def test_eval_crops_travel_in_one_file_without_pickles(tool: ModuleType, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A GPU machine is lent the repository, not the dev photos: the crops it measures on are cut
    here (no torch needed) and read back there exactly."""
    import cv2

    from .conftest import lane_frame

    split = tmp_path / "data" / "xx"
    split.mkdir(parents=True)
    for i, display in enumerate(["01 A 123 BC", "40 777 ABC"]):
        frame, (x, y, w, h) = lane_frame(display, "UZ", plate_h=44, seed=i)
        cv2.imwrite(str(split / f"p{i}.jpg"), frame)
        (split / f"p{i}.txt").write_text(f"p{i}.jpg\t{x}\t{y}\t{w}\t{h}\t{display.replace(' ', '')}\n")
    path = tmp_path / "crops.npz"
    # --train defaults to br: saving the measured split's crops is no training, so it is not refused
    assert tool.main(["--eval", "xx", "--dataset", str(tmp_path / "data"), "--save-eval-crops", str(path)]) == 0
    assert f"wrote {path}" in capsys.readouterr().err
    crops = tool.load_crops(path)
    assert list(crops) == ["xx"] and [t for _, t in crops["xx"]] == ["01A123BC", "40777ABC"]
    for cuts, _ in crops["xx"]:
        # the closer look's cut, then the reader's recuts: longer by 0.25 line heights, shorter by 0.1
        assert len(cuts) == 3 and all(c.dtype == np.uint8 and c.ndim == 3 and c.shape[0] >= 8 for c in cuts)
        assert cuts[1].shape[1] > cuts[0].shape[1] > cuts[2].shape[1]
    again = tmp_path / "again.npz"
    tool.save_crops(again, crops)
    for (a, ta), (b, tb) in zip(crops["xx"], tool.load_crops(again)["xx"], strict=True):
        assert ta == tb and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    # A file without the measured split is refused by name before any training starts.
    pytest.importorskip("torch")
    try:
        tool._torch_modules()
    except SystemExit:
        pytest.skip("onnx2torch is not installed (training only)")
    assert tool.main(["--train", "--eval", "yy", "--eval-crops", str(path), "--synthetic-fonts", str(tmp_path)]) == 2
    assert "holds no crops of yy" in capsys.readouterr().err


def test_a_short_run_writes_drop_in_recognizers(tool: ModuleType, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Where training is installed only: two steps on worn synthetic plates, measured on a split of
    synthetic lane frames, write the final recognizer and one checkpoint per measurement, each a
    file the reader opens as it opens the shipped one (same classes, softmax output)."""
    pytest.importorskip("torch")
    pytest.importorskip("PIL")
    try:
        tool._torch_modules()
    except SystemExit:
        pytest.skip("onnx2torch is not installed (training only)")
    font = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf")
    if not font.is_file():
        pytest.skip(f"no font to render with at {font}")
    import cv2

    from bench.accuracy import candidate_recognizer

    from .conftest import lane_frame

    fonts, split = tmp_path / "fonts", tmp_path / "data" / "xx"
    fonts.mkdir()
    split.mkdir(parents=True)
    (fonts / font.name).symlink_to(font)
    frame, (x, y, w, h) = lane_frame("01 A 123 BC", "UZ", plate_h=44, seed=1)
    cv2.imwrite(str(split / "p0.jpg"), frame)
    (split / "p0.txt").write_text(f"p0.jpg\t{x}\t{y}\t{w}\t{h}\t01A123BC\n")
    out = tmp_path / "rec.onnx"
    assert tool.main(["--train", "--eval", "xx", "--dataset", str(tmp_path / "data"), "--synthetic-fonts",
                      str(fonts), "--steps", "2", "--batch", "2", "--eval-every", "1", "--keep", "1",
                      "--out", str(out), "--checkpoints", "--workers", "1", "--blend", "0", "1"]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    history = doc["history"]
    assert [h["step"] for h in history] == [0, 1, 2]
    assert all(0 <= h["xx_after_syntax"] <= 1 and 0 <= h["xx_voted"] <= 1 for h in history)
    shipped = candidate_recognizer(find_models_dir() / "PP-OCRv6_rec_small.onnx", 1)
    for path in (out, tmp_path / "rec-1.onnx"):
        rec = candidate_recognizer(path, 1)
        assert rec.classes == shipped.classes
        (line,) = rec.recognize([np.full((48, 200, 3), 230, np.uint8)])
        assert line.text == "" or line.text.isalnum()
    assert not (tmp_path / "rec-2.onnx").exists()  # the last step is the final file itself
    # Blends: at 0 the shipped weights, at 1 the trained ones, each measured and written.
    assert set(doc["blends"]) == {"0", "1"} and doc["blends"]["1"]["xx_voted"] == history[-1]["xx_voted"]
    import onnxruntime as ort

    x = tool.prepare(frame[y : y + h, x : x + w])[None]

    def probs(path: Path) -> np.ndarray:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.asarray(sess.run(None, {sess.get_inputs()[0].name: x})[0])

    assert np.allclose(probs(tmp_path / "rec-blend0.onnx"), probs(find_models_dir() / "PP-OCRv6_rec_small.onnx"),
                       atol=2e-4)
    assert np.allclose(probs(tmp_path / "rec-blend1.onnx"), probs(out), atol=2e-4)
    assert not np.allclose(probs(out), probs(tmp_path / "rec-blend0.onnx"), atol=2e-4)  # training moved it
    # A run goes on from an earlier run's file (its softmax cut again, as the shipped one's is).
    again = tmp_path / "again.onnx"
    assert tool.main(["--train", "--eval", "xx", "--dataset", str(tmp_path / "data"), "--synthetic-fonts",
                      str(fonts), "--steps", "5", "--time-budget", "0", "--batch", "2", "--init", str(out),
                      "--out", str(again)]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["steps"] == 0 and [h["step"] for h in doc["history"]] == [0]  # a spent budget trains no step
    assert candidate_recognizer(again, 1).classes == shipped.classes
    # A blend is taken with the shipped weights, which a file of this tool's lays out otherwise.
    assert tool.main(["--train", "--eval", "xx", "--dataset", str(tmp_path / "data"), "--synthetic-fonts",
                      str(fonts), "--steps", "1", "--init", str(out), "--blend", "0.5"]) == 2
    assert "--blend needs the shipped model's layout" in capsys.readouterr().err


def test_the_gpu_run_scripts_parse_and_name_what_they_need() -> None:
    """The GPU machine's time is counted in minutes: its script must not fail on a typo there."""
    import subprocess

    tools = Path(__file__).resolve().parents[2] / "models" / "tools"
    for name in ("prepare_gpu_run.sh", "gpu_finetune.sh"):
        script = tools / name
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0, name
    run = (tools / "gpu_finetune.sh").read_text()
    assert ".gpu/eval_crops.npz" in run and ".gpu/fonts" in run and ".gpu/wheels" in run
    assert "--time-budget" in run and "--checkpoints" in run
