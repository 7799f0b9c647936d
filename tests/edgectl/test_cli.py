"""The command line itself: every command has --help with examples and --json; exit 2 for bad usage;
the installed console script runs; the --json schema is a valid JSON Schema."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from edge.cli.edgectl import build_parser
from edge.diag.schema import load_schema
from tests.edgectl.conftest import RunCli

COMMANDS = [
    ["doctor"], ["camera", "probe"], ["camera", "list"], ["scale", "list"], ["scale", "detect"], ["scale", "watch"],
    ["scale", "check"], ["model", "check"], ["mqtt", "check"], ["outbox"], ["outbox", "drain"], ["verify"],
    ["events", "tail"], ["status"], ["support-bundle"], ["config", "validate"],
]


def _leaf(parser: argparse.ArgumentParser, path: list[str]) -> argparse.ArgumentParser:
    for word in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p))
def test_every_command_has_help_with_examples_and_json(path: list[str], run_cli: RunCli) -> None:
    r = run_cli(*path, "--help")
    assert r.rc == 0
    assert "examples:" in r.out and f"edgectl {' '.join(path)}" in r.out
    assert "--json" in r.out
    if path != ["config", "validate"]:
        assert "--config" in r.out and "CUSTOMS_EDGE_CONFIG" in r.out
    assert _leaf(build_parser(), path) is not None


def test_top_level_help_lists_the_commands(run_cli: RunCli) -> None:
    r = run_cli("--help")
    assert r.rc == 0
    for word in ("doctor", "camera", "scale", "model", "mqtt", "outbox", "verify", "events", "status",
                 "support-bundle", "exit codes: 0 healthy, 1 a check failed, 2 could not run"):
        assert word in r.out


def test_bad_usage_and_missing_config_exit_2(tmp_path: Path, run_cli: RunCli,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli("frobnicate").rc == 2
    assert run_cli("scale", "detect").rc == 2  # PORT missing
    monkeypatch.setenv("CUSTOMS_EDGE_CONFIG", str(tmp_path / "absent.toml"))
    r = run_cli("mqtt", "check")
    assert r.rc == 2 and str(tmp_path / "absent.toml") in r.err and "CUSTOMS_EDGE_CONFIG" in r.err


def test_console_script_and_simulator_help() -> None:
    exe = Path(sys.executable).with_name("edgectl")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "edge.cli.edgectl"]
    done = subprocess.run([*cmd, "scale", "simulate", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--protocol" in done.stdout and "--tcp" in done.stdout
    done = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("edgectl ")


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(load_schema())
