"""A strict reader of udev rules files, for machines without `udevadm verify` (systemd < 253).

It follows udev(7) and systemd's udev-rules.c: each rule is comma-separated ``KEY[{attr}] OP "value"``
tokens, keys that only match refuse assignment operators and the reverse, attribute braces are
required where udev requires them, values are double-quoted, GOTO targets a later LABEL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MATCH = {"==", "!="}
ASSIGN = {"=", "+=", "-=", ":="}

# key: (allowed operators, attribute braces: "required" | "optional" | "forbidden")
KEYS: dict[str, tuple[set[str], str]] = {
    "ACTION": (MATCH, "forbidden"),
    "DEVPATH": (MATCH, "forbidden"),
    "KERNEL": (MATCH, "forbidden"),
    "KERNELS": (MATCH, "forbidden"),
    "SUBSYSTEM": (MATCH, "forbidden"),
    "SUBSYSTEMS": (MATCH, "forbidden"),
    "DRIVER": (MATCH, "forbidden"),
    "DRIVERS": (MATCH, "forbidden"),
    "ATTRS": (MATCH, "required"),
    "TAGS": (MATCH, "forbidden"),
    "CONST": (MATCH, "required"),
    "TEST": (MATCH, "optional"),
    "PROGRAM": (MATCH, "forbidden"),
    "RESULT": (MATCH, "forbidden"),
    "NAME": (MATCH | {"=", ":="}, "forbidden"),
    "SYMLINK": (MATCH | ASSIGN, "forbidden"),
    "ATTR": (MATCH | {"="}, "required"),
    "SYSCTL": (MATCH | {"="}, "required"),
    "ENV": (MATCH | {"=", "+=", ":="}, "required"),
    "TAG": (MATCH | {"=", "+=", "-="}, "forbidden"),
    "IMPORT": (MATCH | {"="}, "required"),
    "OWNER": ({"=", ":="}, "forbidden"),
    "GROUP": ({"=", ":="}, "forbidden"),
    "MODE": ({"=", ":="}, "forbidden"),
    "SECLABEL": ({"=", "+=", ":="}, "required"),
    "RUN": ({"=", "+=", ":="}, "optional"),
    "LABEL": ({"="}, "forbidden"),
    "GOTO": ({"="}, "forbidden"),
    "OPTIONS": ({"=", "+="}, "forbidden"),
}

_TOKEN = re.compile(
    r"""\s*(?P<key>[A-Z]+)(?:\{(?P<attr>[^{}\s]+)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*"""
)


class UdevSyntaxError(ValueError):
    def __init__(self, line: int, msg: str) -> None:
        super().__init__(f"line {line}: {msg}")
        self.line = line


@dataclass
class Token:
    key: str
    attr: str | None
    op: str
    value: str


@dataclass
class Rule:
    line: int
    tokens: list[Token] = field(default_factory=list)

    def get(self, key: str, attr: str | None = None, op: str | None = None) -> list[str]:
        return [
            t.value
            for t in self.tokens
            if t.key == key and (attr is None or t.attr == attr) and (op is None or t.op == op)
        ]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = n
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                continue
        if raw.endswith("\\"):
            buf += raw[:-1]
            continue
        out.append((start, buf + raw))
        buf = ""
    if buf:
        raise UdevSyntaxError(start, "file ends inside a continued line")
    return out


def _parse_rule(n: int, line: str) -> Rule:
    rule = Rule(n)
    pos, first = 0, True
    while pos < len(line):
        if not first:
            if line[pos] != ",":
                raise UdevSyntaxError(n, f"expected ',' at column {pos + 1}: {line[pos : pos + 20]!r}")
            pos += 1
            if not line[pos:].strip():
                raise UdevSyntaxError(n, "trailing comma")
        m = _TOKEN.match(line, pos)
        if not m:
            raise UdevSyntaxError(n, f'not a KEY OP "value" token at column {pos + 1}: {line[pos : pos + 30]!r}')
        key, attr, op, value = m.group("key"), m.group("attr"), m.group("op"), m.group("value")
        if key not in KEYS:
            raise UdevSyntaxError(n, f"unknown key {key}")
        ops, braces = KEYS[key]
        if op not in ops:
            raise UdevSyntaxError(n, f"invalid operator {op!r} for {key}")
        if braces == "required" and attr is None:
            raise UdevSyntaxError(n, f"{key} needs an attribute: {key}{{name}}")
        if braces == "forbidden" and attr is not None:
            raise UdevSyntaxError(n, f"{key} takes no attribute")
        if key == "MODE" and not re.fullmatch(r"0?[0-7]{3}", value):
            raise UdevSyntaxError(n, f"MODE must be octal like 0660, not {value!r}")
        if key == "SYMLINK" and op in ASSIGN and not re.fullmatch(r"[A-Za-z0-9._/-]+( [A-Za-z0-9._/-]+)*", value):
            raise UdevSyntaxError(n, f"bad SYMLINK name {value!r}")
        rule.tokens.append(Token(key, attr, op, value))
        pos, first = m.end(), False
    if not rule.tokens:
        raise UdevSyntaxError(n, "empty rule")
    return rule


def parse_rules(text: str) -> list[Rule]:
    rules = [_parse_rule(n, line) for n, line in _logical_lines(text)]
    labels: dict[str, int] = {}
    for i, rule in enumerate(rules):
        for label in rule.get("LABEL"):
            labels.setdefault(label, i)
    for i, rule in enumerate(rules):
        for target in rule.get("GOTO"):
            if target not in labels or labels[target] <= i:
                raise UdevSyntaxError(rule.line, f"GOTO {target!r} has no LABEL after it")
    return rules
