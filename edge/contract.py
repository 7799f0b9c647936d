"""The MQTT payload contract, checked in code against the same JSON Schema files HQ teams read.

The schemas live in ``edge/contract_schemas/<kind>.v<N>.json`` (one copy, shipped inside the package so
an installed post or HQ process finds them; ``docs/contract/asyncapi.yaml`` refers to the same files).
Checking against the published files, rather than a parallel set of pydantic models, means the contract
and the code cannot drift apart without a test failing.

    >>> from edge import contract
    >>> contract.validate("ack", {"schema": "customs.ack/1", "post_id": "uz-demo-01", "seq": 3})
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match, relevance

from edge.errors import EdgeError

SCHEMA_DIR = "contract_schemas"
_FILE = re.compile(r"^(?P<kind>[a-z_]+)\.v(?P<version>\d+)\.json$")
_SCHEMA_TAG = re.compile(r"^customs\.(?P<kind>[a-z_]+)/(?P<version>\d+)$")


class ContractError(EdgeError):
    """A payload does not match its published schema.

    ``path`` is the JSON path of the first (most relevant) violation, ``$`` for the document itself;
    ``problems`` lists every ``(path, message)`` found so a log line shows them all at once.
    """

    def __init__(self, kind: str, version: int, problems: list[tuple[str, str]]) -> None:
        self.kind = kind
        self.version = version
        self.problems = problems
        self.path = problems[0][0] if problems else "$"
        head = f"{kind}/v{version}: {problems[0][0]}: {problems[0][1]}" if problems else f"{kind}/v{version}"
        more = f" (and {len(problems) - 1} more: " + "; ".join(f"{p}: {m}" for p, m in problems[1:4]) + ")"
        super().__init__(head + (more if len(problems) > 1 else ""))


def json_path(error: ValidationError) -> str:
    """``$.reads[0].text``: the notation HQ integrators know from JSONPath tools."""
    out = "$"
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


@cache
def _catalogue() -> dict[tuple[str, int], dict[str, Any]]:
    root = resources.files("edge").joinpath(SCHEMA_DIR)
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for entry in root.iterdir():
        m = _FILE.match(entry.name)
        if m:
            found[(m["kind"], int(m["version"]))] = json.loads(entry.read_text(encoding="utf-8"))
    if not found:
        raise EdgeError(f"no contract schemas found in the package ({SCHEMA_DIR}/): broken installation")
    return found


def kinds() -> dict[str, list[int]]:
    """Every payload kind with its published versions, oldest first."""
    out: dict[str, list[int]] = {}
    for kind, version in sorted(_catalogue()):
        out.setdefault(kind, []).append(version)
    return out


def schema(kind: str, version: int | None = None) -> dict[str, Any]:
    """The schema document for ``kind`` (latest version unless one is named)."""
    versions = kinds().get(kind)
    if not versions:
        raise ContractError(kind, version or 0, [("$", f"unknown payload kind {kind!r}; known: {sorted(kinds())}")])
    v = versions[-1] if version is None else version
    if v not in versions:
        raise ContractError(kind, v, [("$", f"no schema version {v} for {kind!r}; published: {versions}")])
    return _catalogue()[(kind, v)]


@cache
def _validator(kind: str, version: int) -> Draft202012Validator:
    doc = schema(kind, version)
    Draft202012Validator.check_schema(doc)
    return Draft202012Validator(doc, format_checker=FormatChecker())


def parse_tag(tag: object) -> tuple[str, int] | None:
    """``"customs.vehicle_event/1"`` -> ``("vehicle_event", 1)``; None for anything else."""
    m = _SCHEMA_TAG.match(tag) if isinstance(tag, str) else None
    return (m["kind"], int(m["version"])) if m else None


def validate(kind: str, payload: Any, version: int | None = None) -> None:
    """Raise ContractError naming the JSON path of each violation; return None when ``payload`` conforms.

    The version comes from ``version``, else from the payload's own ``schema`` tag, else the latest, so
    an HQ running a newer contract still checks an older post's payloads against what that post promised.
    """
    if version is None and isinstance(payload, dict):
        tagged = parse_tag(payload.get("schema"))
        if tagged and tagged[0] == kind:
            version = tagged[1]
    schema(kind, version)  # raises for an unknown kind or version
    v = version if version is not None else kinds()[kind][-1]
    top = sorted(_validator(kind, v).iter_errors(payload), key=relevance, reverse=True)
    # best_match descends into anyOf branches: "$.plate.text does not match ..." beats "not valid under any".
    errors = [best_match([e]) or e for e in top]
    if errors:
        raise ContractError(kind, v, [(json_path(e), e.message) for e in errors])


def validate_tagged(payload: Any) -> str:
    """Validate a payload by its own ``schema`` tag; return the kind. For consumers that see mixed topics."""
    tag = payload.get("schema") if isinstance(payload, dict) else None
    parsed = parse_tag(tag)
    if parsed is None:
        raise ContractError("unknown", 0, [("$.schema", f"missing or unrecognised schema tag {tag!r}")])
    validate(parsed[0], payload, parsed[1])
    return parsed[0]
