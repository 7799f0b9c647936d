"""``edgectl support-bundle``: one archive HQ's support desk can read without asking for anything else.

Contents: the config with secrets redacted, recent logs (journald when the service runs under
systemd), versions, the doctor's report, the controller's status and the recent events. Secrets
are masked with the same rules as the service's logs; the post's private key is never included.
"""

from __future__ import annotations

import io
import json
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from edge import __version__
from edge.config import PostConfig
from edge.errors import EdgeError, StorageError

_PACKAGES = ("numpy", "opencv-python-headless", "onnxruntime", "paho-mqtt", "pyserial", "pydantic", "cryptography")


def versions() -> dict[str, Any]:
    pkgs: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pkgs[name] = None
    out: dict[str, Any] = {"customs-post-edge": __version__, "python": sys.version.split()[0],
                           "platform": platform.platform(), "machine": platform.machine(), "packages": pkgs}
    try:
        from edge.recognition.models import find_models_dir, load_manifest

        d = find_models_dir(None)
        out["models"] = {n: s.sha256[:12] for n, s in load_manifest(d).items()}
    except EdgeError as err:
        out["models"] = {"error": str(err)}
    return out


def recent_logs(unit: str = "customs-edge", since: str = "-24h", max_lines: int = 5000) -> tuple[str, str]:
    """(source, text) of the service's recent log: journald when available, else a note why not."""
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        return "none", "journalctl is not available on this machine: no service log included\n"
    try:
        done = subprocess.run([journalctl, "-u", unit, "--since", since, "--no-pager", "-n", str(max_lines),
                               "-o", "short-iso"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return "none", f"journalctl failed: {err}\n"
    if done.returncode != 0:
        return "none", f"journalctl exited {done.returncode}: {done.stderr.strip()}\n"
    return "journald", done.stdout


def _add(tar: tarfile.TarFile, name: str, data: bytes | str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    info = tarfile.TarInfo(name)
    info.size = len(raw)
    info.mtime = int(time.time())
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(raw))


def make_bundle(
    cfg: PostConfig,
    config_path: Path,
    out_path: Path,
    *,
    doctor: dict[str, Any] | None,
    events: int = 200,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write the archive to ``out_path`` and return its table of contents."""
    from edge.diag import stores
    from edge.service.logging import redact

    def say(msg: str) -> None:
        if progress is not None:
            progress(msg)

    base = f"support-{cfg.post.id}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    contents: list[str] = []
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:

        def add(name: str, data: bytes | str) -> None:
            _add(tar, f"{base}/{name}", data)
            contents.append(name)

        say("config")
        try:
            add("config/post.toml", redact(config_path.read_text(encoding="utf-8", errors="replace")))
        except OSError as err:
            add("config/post.toml.error", f"cannot read {config_path}: {err}\n")
        add("config/effective.json", redact(cfg.model_dump_json(indent=2)))
        say("versions")
        add("versions.json", json.dumps(versions(), indent=2))
        say("logs")
        source, text = recent_logs()
        add(f"logs/customs-edge.{'log' if source == 'journald' else 'txt'}", redact(text))
        if doctor is not None:
            add("doctor.json", redact(json.dumps(doctor, indent=2, default=str)))
        st = stores.read_status(cfg)
        if st["status"] is not None:
            add("status.json", redact(json.dumps(st, indent=2, default=str)))
        say("events")
        try:
            first = max(0, stores.last_seq(cfg) - events)
            evs = stores.events_after(cfg, first, limit=events)
            add("events.jsonl", "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in evs))
            add("outbox.json", json.dumps(stores.outbox_summary(cfg), indent=2))
        except StorageError as err:
            add("events.txt", f"no events: {err}\n")
    tmp.replace(out_path)
    return {"path": str(out_path), "bytes": out_path.stat().st_size, "contents": contents, "log_source": source}
