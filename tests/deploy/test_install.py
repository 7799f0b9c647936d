"""deploy/install.sh in a scratch root: layout, upgrade keeping config and data, uninstall keeping data.

Nothing is installed on this machine: every run gets a tmp_path ROOT (DESTDIR style), where the
script creates no users and touches neither systemd nor udev.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy.test_units import ANALYZE, SYSTEM_UNITS, analyze

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "install.sh"


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args, str(root)], capture_output=True, text=True, timeout=120, check=False
    )


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_layout(tmp_path: Path) -> None:
    res = install(tmp_path, "--no-venv")
    assert res.returncode == 0, res.stderr
    etc, opt, state = tmp_path / "etc/customs-edge", tmp_path / "opt/customs-edge", tmp_path / "var/lib/customs-edge"
    for unit in ("customs-edge.service", "customs-edge-hq.service"):
        assert (tmp_path / "etc/systemd/system" / unit).read_text() == (REPO / "deploy/systemd" / unit).read_text()
    assert (tmp_path / "etc/udev/rules.d/99-customs-edge.rules").is_file()
    assert (tmp_path / "etc/modules-load.d/customs-edge.conf").is_file()
    assert (etc / "post.toml").read_text() == (REPO / "deploy/config/post-example.toml").read_text()
    assert mode(etc / "post.toml") == 0o640
    assert mode(etc / "credentials") == 0o700
    assert (etc / "credentials/mqtt-password").read_bytes() == b"" and mode(etc / "credentials/mqtt-password") == 0o600
    assert mode(etc / "tls") == 0o750
    assert state.is_dir() and mode(state) == 0o750
    assert (opt / "share/doc/customs-edge/keys.md").is_file()
    assert (opt / "share/doc/customs-edge/mosquitto/hq.acl").is_file()
    assert not (opt / "venv").exists()
    assert "staged into" in res.stdout
    # Logs go to journald: nothing under /var/log.
    assert not (tmp_path / "var/log").exists()


@pytest.mark.skipif(ANALYZE is None or SYSTEM_UNITS is None, reason="systemd-analyze not installed")
def test_installed_units_verify_in_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert install(root, "--no-venv").returncode == 0
    assert SYSTEM_UNITS is not None
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    exe = root / "opt/customs-edge/venv/bin/customs-edge"  # where pip puts the entry point
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    res = analyze("verify", f"--root={root}", "customs-edge.service", "customs-edge-hq.service")
    assert res.returncode == 0 and not res.stderr.strip(), res.stderr


def test_upgrade_keeps_config_data_and_edited_udev_rules(tmp_path: Path) -> None:
    assert install(tmp_path, "--no-venv").returncode == 0
    etc, state = tmp_path / "etc/customs-edge", tmp_path / "var/lib/customs-edge"
    (etc / "post.toml").write_text('[post]\nid = "uz-site-01"\n')
    (etc / "credentials/mqtt-password").write_text("s3cret\n")
    (etc / "tls/post.key").write_text("KEY")
    journal = state / "journal.sqlite"
    journal.write_bytes(b"SQLite format 3\x00" + b"\x01" * 100)
    (state / "keys").mkdir()
    (state / "keys/post_ed25519.pem").write_text("SIGNING KEY")
    rules = tmp_path / "etc/udev/rules.d/99-customs-edge.rules"
    rules.write_text(rules.read_text().replace("REPLACE-ME-SCALE1", "FT4XYZ12"))
    unit = tmp_path / "etc/systemd/system/customs-edge.service"
    unit.write_text("stale unit from an older version\n")

    res = install(tmp_path, "--no-venv")
    assert res.returncode == 0, res.stderr
    assert (etc / "post.toml").read_text() == '[post]\nid = "uz-site-01"\n'
    assert "kept" in res.stdout and "post.toml" in res.stdout
    assert (etc / "credentials/mqtt-password").read_text() == "s3cret\n"
    assert (etc / "tls/post.key").read_text() == "KEY"
    assert journal.read_bytes() == b"SQLite format 3\x00" + b"\x01" * 100
    assert (state / "keys/post_ed25519.pem").read_text() == "SIGNING KEY"
    assert "FT4XYZ12" in rules.read_text()
    assert (rules.parent / "99-customs-edge.rules.dist").read_text() == (
        REPO / "deploy/udev/99-customs-edge.rules"
    ).read_text()
    assert unit.read_text() == (REPO / "deploy/systemd/customs-edge.service").read_text()  # units are replaced

    # A third run changes nothing more: idempotent.
    before = sorted((p.relative_to(tmp_path), p.read_bytes() if p.is_file() else b"") for p in tmp_path.rglob("*"))
    assert install(tmp_path, "--no-venv").returncode == 0
    after = sorted((p.relative_to(tmp_path), p.read_bytes() if p.is_file() else b"") for p in tmp_path.rglob("*"))
    strip = [(p, c) for p, c in before if p.name != "INSTALLED"]
    assert strip == [(p, c) for p, c in after if p.name != "INSTALLED"]


def test_uninstall_keeps_config_and_data(tmp_path: Path) -> None:
    assert install(tmp_path, "--no-venv").returncode == 0
    state = tmp_path / "var/lib/customs-edge"
    (state / "journal.sqlite").write_bytes(b"events")
    (tmp_path / "opt/customs-edge/venv/bin").mkdir(parents=True)

    res = install(tmp_path, "--uninstall")
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "opt/customs-edge").exists()
    assert not (tmp_path / "etc/systemd/system/customs-edge.service").exists()
    assert not (tmp_path / "etc/modules-load.d/customs-edge.conf").exists()
    assert not (tmp_path / "etc/udev/rules.d/99-customs-edge.rules").exists()  # unedited: removed
    assert (state / "journal.sqlite").read_bytes() == b"events"
    assert (tmp_path / "etc/customs-edge/post.toml").is_file()
    assert "kept" in res.stdout
    assert install(tmp_path, "--uninstall").returncode == 0  # again: nothing left to do, no error
    assert (state / "journal.sqlite").read_bytes() == b"events"


def test_uninstall_keeps_edited_udev_rules(tmp_path: Path) -> None:
    assert install(tmp_path, "--no-venv").returncode == 0
    rules = tmp_path / "etc/udev/rules.d/99-customs-edge.rules"
    rules.write_text(rules.read_text() + "# site edit\n")
    res = install(tmp_path, "--uninstall")
    assert res.returncode == 0 and rules.is_file() and "edited locally" in res.stdout


def test_bad_arguments(tmp_path: Path) -> None:
    res = install(tmp_path, "--frobnicate")
    assert res.returncode == 2 and "unknown option --frobnicate" in res.stderr
    res = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "missing")], capture_output=True, text=True, check=False)
    assert res.returncode == 1 and "does not exist" in res.stderr
    help_text = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, check=False).stdout
    assert "--uninstall" in help_text and "/var/lib/customs-edge" in help_text


def _wheel(wheelhouse: Path, version: str) -> Path:
    """A minimal wheel named like the project, with its console script: tests the venv step offline.

    Building the real project needs its build backend from the network; what install.sh does with
    the wheel (venv, offline pip from a wheelhouse, upgrade) is the same for any wheel.
    """
    name = f"customs_post_edge-{version}-py3-none-any.whl"
    dist = f"customs_post_edge-{version}.dist-info"
    files = {
        "customs_edge_probe/__init__.py": f'VERSION = "{version}"\n\n\ndef main() -> int:\n    print(VERSION)\n'
        "    return 0\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: customs-post-edge\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": "[console_scripts]\ncustoms-edge = customs_edge_probe:main\n",
    }
    record = []
    path = wheelhouse / name
    with zipfile.ZipFile(path, "w") as zf:
        for fname, text in files.items():
            data = text.encode()
            zf.writestr(fname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{fname},sha256={digest},{len(data)}")
        record.append(f"{dist}/RECORD,,")
        zf.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return path


@pytest.mark.slow
def test_venv_from_an_offline_wheelhouse_and_upgrade(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    _wheel(wheels, "0.1.0")
    res = install(root, "--wheels", str(wheels), "--python", sys.executable)
    assert res.returncode == 0, res.stdout + res.stderr
    exe = root / "opt/customs-edge/venv/bin/customs-edge"
    assert subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.strip() == "0.1.0"

    (root / "var/lib/customs-edge/journal.sqlite").write_bytes(b"events")
    _wheel(wheels, "0.2.0")
    res = install(root, "--wheels", str(wheels), "--python", sys.executable)
    assert res.returncode == 0, res.stdout + res.stderr
    assert subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.strip() == "0.2.0"
    assert (root / "var/lib/customs-edge/journal.sqlite").read_bytes() == b"events"
