"""Finding, verifying and opening the ONNX models listed in ``models/manifest.toml``.

Models come only from the repository or the installed distribution, never from the network: a post
may have no internet, and a model swapped behind our back must not read plates silently, so every
file is checked against the manifest's sha256 before onnxruntime sees it.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import ModelError

log = logging.getLogger(__name__)

MANIFEST = "manifest.toml"
SHARE_SUBDIR = Path("share") / "customs-post-edge" / "models"


@dataclass(frozen=True)
class ModelSpec:
    """One ``[[model]]`` entry of the manifest."""

    name: str
    file: str
    sha256: str
    role: str = ""
    licence: str = ""
    source: str = ""
    input: str = ""
    output: str = ""


def candidate_dirs(models_dir: Path | None = None) -> list[Path]:
    """Where models may live, in the order they are tried.

    A configured directory wins outright (a technician who sets it means it); otherwise a source
    checkout's ``models/`` next to the package, then the data-files of an installed wheel.
    """
    if models_dir is not None:
        return [Path(models_dir)]
    repo = Path(__file__).resolve().parents[2] / "models"
    return [repo, Path(sys.prefix) / SHARE_SUBDIR]


def find_models_dir(models_dir: Path | None = None) -> Path:
    tried = candidate_dirs(models_dir)
    for d in tried:
        if (d / MANIFEST).is_file():
            return d
    raise ModelError(
        "no model manifest found; looked for "
        + ", ".join(str(d / MANIFEST) for d in tried)
        + " (set recognition.models_dir in the post's config)"
    )


def load_manifest(models_dir: Path) -> dict[str, ModelSpec]:
    path = models_dir / MANIFEST
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ModelError(f"cannot read model manifest {path}: {err.strerror or err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ModelError(f"model manifest {path} is not valid TOML: {err}") from err
    specs: dict[str, ModelSpec] = {}
    entries = data.get("model", [])
    if not isinstance(entries, list):
        raise ModelError(f"model manifest {path}: 'model' must be an array of tables ([[model]])")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ModelError(f"model manifest {path}: model[{i}] is not a table")
        missing = [k for k in ("name", "file", "sha256") if not isinstance(entry.get(k), str)]
        if missing:
            raise ModelError(f"model manifest {path}: model[{i}] lacks {', '.join(missing)}")
        known = {k: str(v) for k, v in entry.items() if k in ModelSpec.__dataclass_fields__}
        spec = ModelSpec(**known)
        specs[spec.name] = spec
    return specs


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verified_path(models_dir: Path, spec: ModelSpec) -> Path:
    """Return the model file's path once its bytes match the manifest; refuse it otherwise."""
    path = models_dir / spec.file
    if not path.is_file():
        raise ModelError(f"model file {path} (model {spec.name!r}) is missing")
    try:
        actual = sha256_of(path)
    except OSError as err:
        raise ModelError(f"cannot read model file {path}: {err.strerror or err}") from err
    if actual.lower() != spec.sha256.lower():
        raise ModelError(
            f"model file {path} does not match the manifest: sha256 is {actual}, "
            f"manifest expects {spec.sha256}; refusing to load it"
        )
    return path


def open_session(path: Path, threads: int, spin_us: int = 0) -> Any:
    """An onnxruntime CPU session whose idle threads spin at most ``spin_us`` microseconds.

    Left to spin as long as they like (onnxruntime's default), the pools' threads made a two-model
    pipeline 50% slower on 2 cores: each session's idle threads spin while the other model, Python
    and the lanes' own threads need the same cores. Never spinning costs too: a worker put to sleep
    between two operators must be woken for the next, and on a VM a wake-up is slow enough to cost the
    detector 10-20% of its time on the Intel Xeon VM (2026-11-30). A spin of about 100 us bridges the
    gap between one operator and the next and ends before a run's Python work starts (bench.spin).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if spin_us > 0:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1")
        opts.add_session_config_entry("session.intra_op.spin_duration_us", str(spin_us))
    else:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelError(f"onnxruntime cannot load {path}: {err}") from err


@dataclass
class LoadedModel:
    spec: ModelSpec
    path: Path
    session: Any

    @property
    def version(self) -> str:
        return self.spec.sha256[:12]


class ModelStore:
    """The verified models of one models directory, opened on demand and kept."""

    def __init__(self, models_dir: Path | None = None, threads: int = 2, spin_us: int = 0) -> None:
        self.dir = find_models_dir(models_dir)
        self.specs = load_manifest(self.dir)
        self.threads = threads
        self.spin_us = spin_us
        self._loaded: dict[str, LoadedModel] = {}

    def load(self, name: str) -> LoadedModel:
        if name in self._loaded:
            return self._loaded[name]
        spec = self.specs.get(name)
        if spec is None:
            raise ModelError(
                f"model {name!r} is not in {self.dir / MANIFEST} (has: {', '.join(sorted(self.specs))})"
            )
        path = verified_path(self.dir, spec)
        model = LoadedModel(spec, path, open_session(path, self.threads, self.spin_us))
        log.info("loaded model %s from %s (sha256 %s)", name, path, spec.sha256[:12])
        self._loaded[name] = model
        return model
