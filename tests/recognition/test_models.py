"""Model files are found, verified against the manifest's sha256, and refused when they differ."""

from __future__ import annotations

import shutil
from pathlib import Path

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
    assert versions == {"ppocr-det": specs["ppocr-det"].sha256[:12], "ppocr-rec": specs["ppocr-rec"].sha256[:12]}
