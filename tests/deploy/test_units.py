"""The systemd units: `systemd-analyze verify` and the offline security score in a scratch root.

`verify` checks that ExecStart exists, so the units are checked inside a scratch root holding the
units, an executable where the venv's entry point will be, and a copy of the distribution's unit
files (targets the units depend on). Nothing is installed on this machine.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
ANALYZE = shutil.which("systemd-analyze")
SYSTEM_UNITS = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()), None)

needs_analyze = pytest.mark.skipif(
    ANALYZE is None or SYSTEM_UNITS is None,
    reason="systemd-analyze or the distribution's unit files are missing; install the 'systemd' package "
    "(safe in a container: nothing starts, only the tools and unit files are used)",
)


def scratch_root(root: Path) -> Path:
    assert SYSTEM_UNITS is not None
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in UNITS.glob("*.service"):
        shutil.copy(unit, root / "etc/systemd/system" / unit.name)
    exe = root / "opt/customs-edge/venv/bin/customs-edge"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return root


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=60, check=False)


@needs_analyze
@pytest.mark.parametrize("unit", ["customs-edge.service", "customs-edge-hq.service"])
def test_systemd_analyze_verify_is_clean(tmp_path: Path, unit: str) -> None:
    root = scratch_root(tmp_path / "root")
    res = analyze("verify", f"--root={root}", unit)
    # verify exits 0 on unknown keys and bad values (it only warns), so any output is a failure.
    assert res.returncode == 0 and res.stdout.strip() == "" and res.stderr.strip() == "", res.stderr


@needs_analyze
def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a typo and a wrong device right are reported."""
    root = scratch_root(tmp_path / "root")
    unit = root / "etc/systemd/system/customs-edge.service"
    text = unit.read_text().replace("DeviceAllow=char-ttyS rw", "DeviceAllow=char-ttyS rwz")
    unit.write_text(text.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
    res = analyze("verify", f"--root={root}", "customs-edge.service")
    assert "Invalid device rights" in res.stderr and "Unknown key" in res.stderr


@needs_analyze
@pytest.mark.parametrize("unit", ["customs-edge.service", "customs-edge-hq.service"])
def test_security_exposure_is_low(tmp_path: Path, unit: str) -> None:
    root = scratch_root(tmp_path / "root")
    res = analyze("security", "--offline=yes", f"--root={root}", "--threshold=25", "--no-pager", unit)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr


def _service(unit: str) -> configparser.SectionProxy:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string((UNITS / unit).read_text())
    return cp["Service"]


def test_controller_unit_contract() -> None:
    """What the controller and install.sh rely on, read without systemd."""
    svc = _service("customs-edge.service")
    assert svc["Type"] == "notify"
    assert svc["WatchdogSec"] == "30s"
    assert svc["Restart"] == "on-failure"
    assert svc["User"] == "customs-edge"
    assert svc["StateDirectory"] == "customs-edge"
    assert svc["ConfigurationDirectory"] == "customs-edge"
    assert svc["ExecStart"] == "/opt/customs-edge/venv/bin/customs-edge run --config /etc/customs-edge/post.toml"
    assert svc["DevicePolicy"] == "closed"
    assert svc["ProtectSystem"] == "strict"
    text = (UNITS / "customs-edge.service").read_text()
    allowed = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("DeviceAllow=")]
    assert sorted(allowed) == sorted(["char-ttyUSB rw", "char-ttyACM rw", "char-ttyS rw", "char-video4linux rw"])
    assert "LoadCredential=mqtt-password:/etc/customs-edge/credentials/mqtt-password" in text


def test_hq_unit_contract() -> None:
    svc = _service("customs-edge-hq.service")
    assert svc["Type"] == "notify"
    assert svc["ExecStart"] == "/opt/customs-edge/venv/bin/customs-edge hq --config /etc/customs-edge/hq.toml"
    assert svc["PrivateDevices"] == "yes"
    assert svc["User"] == "customs-edge-hq"
