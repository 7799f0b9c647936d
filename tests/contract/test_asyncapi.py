"""The AsyncAPI documents pass the official AsyncAPI parser and agree with edge/topics.py and the schemas.

The parser comes from the npm registry (``@asyncapi/parser``, pinned) and is installed once into
``.cache/asyncapi`` (git-ignored); later runs reuse it, so this module takes about a second.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edge import contract
from edge.topics import Topics

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "contract"
SCRIPT = Path(__file__).with_name("validate_asyncapi.mjs")
PARSER = "@asyncapi/parser"
PARSER_VERSION = "3.6.6"
CACHE = ROOT / ".cache" / "asyncapi"


@pytest.fixture(scope="session")
def node_modules() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm not installed: cannot run the official AsyncAPI parser")
    modules = CACHE / "node_modules"
    stamp = modules / PARSER / "package.json"
    if not stamp.exists() or json.loads(stamp.read_text()).get("version") != PARSER_VERSION:
        CACHE.mkdir(parents=True, exist_ok=True)
        try:
            proc = subprocess.run(
                [npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", "--no-save",
                 f"{PARSER}@{PARSER_VERSION}"],
                capture_output=True, text=True, timeout=300, check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.skip(f"npm install {PARSER}@{PARSER_VERSION} did not finish in 300 s (no registry access?)")
        if proc.returncode != 0 or not stamp.exists():
            pytest.skip(f"npm could not install {PARSER}@{PARSER_VERSION}: {proc.stderr.strip()[-400:]}")
    return modules


def parse(modules: Path, *files: Path) -> tuple[int, list[dict[str, Any]]]:
    proc = subprocess.run(
        ["node", str(SCRIPT), str(modules), *map(str, files)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(files), proc.stderr
    return proc.returncode, results


@pytest.fixture(scope="module")
def parsed(node_modules: Path) -> dict[str, dict[str, Any]]:
    rc, results = parse(node_modules, DOCS / "asyncapi.yaml", DOCS / "hq.asyncapi.yaml")
    for r in results:
        errors = [d for d in r["diagnostics"] if d["severity"] == 0]
        assert r["valid"] and not errors, f"{r['file']}: {errors}"
    assert rc == 0
    return {Path(r["file"]).name: r for r in results}


def ops_by_channel(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for op in doc["operations"]:
        for ch in op["channels"]:
            out.setdefault(ch, []).append(op)
    return out


def test_both_documents_are_valid_asyncapi(parsed: dict[str, dict[str, Any]]) -> None:
    assert set(parsed) == {"asyncapi.yaml", "hq.asyncapi.yaml"}


def test_every_topic_of_the_layout_is_a_channel(parsed: dict[str, dict[str, Any]]) -> None:
    t = Topics(post_id="{post_id}")
    layout = {t.events("{lane_id}"), t.status, t.telemetry, t.ack, t.cmd, t.cmd_result, t.diag_test}
    assert set(parsed["asyncapi.yaml"]["channels"]) == layout
    # HQ's document covers everything but the post's private round-trip probe.
    assert set(parsed["hq.asyncapi.yaml"]["channels"]) == layout - {t.diag_test}


def test_directions_qos_and_retain_match_the_topic_layout(parsed: dict[str, dict[str, Any]]) -> None:
    t = Topics(post_id="{post_id}")
    post = ops_by_channel(parsed["asyncapi.yaml"])
    hq = ops_by_channel(parsed["hq.asyncapi.yaml"])

    def one(ops: dict[str, list[dict[str, Any]]], channel: str, action: str) -> dict[str, Any]:
        found = [o for o in ops[channel] if o["action"] == action]
        assert len(found) == 1, (channel, action, ops.get(channel))
        return found[0]

    # (channel, post's action, HQ's action or None, qos, retained)
    table = [
        (t.events("{lane_id}"), "send", "receive", 1, False),
        (t.status, "send", "receive", 1, True),
        (t.telemetry, "send", "receive", 0, False),
        (t.ack, "receive", "send", 1, True),
        (t.cmd, "receive", "send", 1, False),
        (t.cmd_result, "send", "receive", 1, False),
    ]
    for channel, post_action, hq_action, qos, retained in table:
        mine = one(post, channel, post_action)
        assert (mine["qos"], mine["retain"]) == (qos, retained), channel
        theirs = one(hq, channel, hq_action)
        assert theirs["qos"] == qos, channel
        if hq_action == "send":
            assert theirs["retain"] == retained, channel
    assert {o["action"] for o in post[t.diag_test]} == {"send", "receive"}


def test_every_payload_is_one_of_the_published_schemas(parsed: dict[str, dict[str, Any]]) -> None:
    titles = {p for doc in parsed.values() for op in doc["operations"] for p in op["payloads"]}
    assert titles == {f"customs.{k}/{v[-1]}" for k, v in contract.kinds().items()}


def test_the_parser_rejects_a_broken_document(node_modules: Path, tmp_path: Path) -> None:
    """The check can fail: an AsyncAPI 2 verb and a dangling schema reference are both reported."""
    broken = (DOCS / "asyncapi.yaml").read_text()
    broken = broken.replace("action: send", "action: publish", 1)
    broken = broken.replace("contract_schemas/ack.v1.json'", "contract_schemas/ack.v9.json'", 1)
    (tmp_path / "docs" / "contract").mkdir(parents=True)
    shutil.copytree(ROOT / "edge" / "contract_schemas", tmp_path / "edge" / "contract_schemas")
    target = tmp_path / "docs" / "contract" / "asyncapi.yaml"
    target.write_text(broken)
    rc, [result] = parse(node_modules, target)
    assert rc == 1 and not result["valid"]
    errors = {d["path"]: d for d in result["diagnostics"] if d["severity"] == 0}
    assert '"action" property must be' in errors["operations.publishVehicleEvent.action"]["message"]
    assert errors["components.messages.ack.payload.$ref"]["code"] == "invalid-ref"
    assert "ack.v9.json" in errors["components.messages.ack.payload.$ref"]["message"]
