"""The JSON Schema of ``edgectl --json`` outputs (``schemas/edgectl.v1.json``), for tests and HQ tooling."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("schemas") / "edgectl.v1.json"


@functools.cache
def load_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return data


def kinds() -> list[str]:
    return sorted(load_schema()["$defs"])


def validate(kind: str, data: Any) -> None:
    """Raise :class:`jsonschema.ValidationError` unless ``data`` is a valid ``kind`` output."""
    import jsonschema

    root = load_schema()
    if kind not in root["$defs"]:
        raise KeyError(f"no schema for {kind!r}; known: {', '.join(kinds())}")
    schema = {**root, "$ref": f"#/$defs/{kind}"}
    jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)
