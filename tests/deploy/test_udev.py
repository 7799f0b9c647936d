"""The udev rules file: syntax (strict parser; udevadm verify when the machine has it) and naming."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.udev_lint import UdevSyntaxError, parse_rules

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "udev" / "99-customs-edge.rules"
LANE = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
ROLES = "front|rear|trailer|container|overview"


def test_rules_parse_strictly() -> None:
    rules = parse_rules(RULES.read_text())
    assert len(rules) >= 5


def test_every_device_rule_names_a_stable_link_from_usb_ids() -> None:
    links: list[str] = []
    for rule in parse_rules(RULES.read_text()):
        symlinks = rule.get("SYMLINK", op="+=")
        if not symlinks:
            continue
        assert rule.get("ATTRS", "idVendor", "==") and rule.get("ATTRS", "idProduct", "==")
        for ident in rule.get("ATTRS", "idVendor") + rule.get("ATTRS", "idProduct"):
            assert re.fullmatch(r"[0-9a-f]{4}", ident), f"line {rule.line}: USB ids are 4 lower-case hex digits"
        assert rule.get("ATTRS", "serial", "=="), f"line {rule.line}: match the serial to tell twins apart"
        subsystem = rule.get("SUBSYSTEM", op="==")
        assert subsystem in (["tty"], ["video4linux"])
        (link,) = symlinks
        if subsystem == ["tty"]:
            assert re.fullmatch(rf"scale-{LANE}", link), link
            assert rule.get("GROUP") == ["dialout"]
        else:
            assert re.fullmatch(rf"camera-{LANE}-({ROLES})", link), link
            assert rule.get("ATTR", "index", "==") == ["0"], "pick the capture node, not UVC metadata"
            assert rule.get("GROUP") == ["video"]
        assert rule.get("MODE") == ["0660"]
        links.append(link)
    assert len(links) == len(set(links)), "each stable name must be given once"
    assert {"scale-lane1", "camera-lane1-front"} <= set(links)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('SUBSYSTEM="tty", SYMLINK+="x"', "invalid operator '=' for SUBSYSTEM"),
        ('SUBSYSTEM=="tty", MODE=="0660"', "invalid operator '==' for MODE"),
        ('SUBSYSTEM=="tty", ATTRS=="0403"', "ATTRS needs an attribute"),
        ('SUBSYSTEM=="tty" SYMLINK+="x"', "expected ','"),
        ("SUBSYSTEM=='tty'", "not a KEY OP"),
        ('SUBSYSTEM=="tty", SYMLNK+="x"', "unknown key SYMLNK"),
        ('SUBSYSTEM=="tty", MODE="rw"', "MODE must be octal"),
        ('SUBSYSTEM=="tty", SYMLINK+="my scale!"', "bad SYMLINK"),
        ('ACTION=="remove", GOTO="nowhere"', "has no LABEL after it"),
        ('SUBSYSTEM=="tty", SYMLINK+="x",', "trailing comma"),
        ('SUBSYSTEM=="tty", \\', "continued line"),
    ],
)
def test_parser_rejects_broken_rules(text: str, why: str) -> None:
    with pytest.raises(UdevSyntaxError, match=re.escape(why)):
        parse_rules(text)


def test_parser_accepts_continuations_and_comments() -> None:
    text = '# c\n\nSUBSYSTEM=="tty", \\\n  ENV{ID_PATH}=="pci-0000:00:14.0-usb-0:2:1.0", SYMLINK+="scale-2"\n'
    rules = parse_rules(text)
    assert rules[0].get("ENV", "ID_PATH") == ["pci-0000:00:14.0-usb-0:2:1.0"]


@pytest.mark.skipif(shutil.which("udevadm") is None, reason="udevadm not installed (udev package absent)")
def test_udevadm_verify_when_available() -> None:
    udevadm = shutil.which("udevadm")
    assert udevadm is not None
    help_text = subprocess.run([udevadm, "--help"], capture_output=True, text=True, check=False).stdout
    if " verify " not in help_text:
        pytest.skip("this udevadm has no 'verify' (needs systemd >= 253); the strict parser above covers it")
    res = subprocess.run([udevadm, "verify", str(RULES)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
