"""``edgectl``: the technician's tool to commission and fix a lane on site.

In the style of ``python -m serial.tools.list_ports``: data on stdout, progress and chatter on
stderr, ``--json`` for machines. Exit codes: 0 healthy, 1 a check failed, 2 could not run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge import __version__

EXIT_OK, EXIT_FAILED, EXIT_CANNOT_RUN = 0, 1, 2
DEFAULT_CONFIG = Path("/etc/customs-edge/post.toml")


def _emit(data: Any, as_json: bool, human: str) -> None:
    if as_json:
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(human if human.endswith("\n") else human + "\n")


def cmd_config_validate(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.errors import ConfigError

    try:
        cfg = load_config(args.file)
    except ConfigError as err:
        problems = [{"path": p, "message": m} for p, m in err.problems]
        _emit(
            {"file": str(args.file), "valid": False, "problems": problems},
            args.json,
            "\n".join(f"{args.file}: {p['path'] or '(file)'}: {p['message']}" for p in problems),
        )
        return EXIT_FAILED
    summary = {
        "file": str(args.file),
        "valid": True,
        "post_id": cfg.post.id,
        "lanes": [
            {"id": lane.id, "cameras": [c.name for c in lane.cameras],
             "scale": lane.scale.protocol if lane.scale else None}
            for lane in cfg.lanes
        ],
    }
    lanes = ", ".join(f"{lane['id']} ({len(lane['cameras'])} camera(s), scale: {lane['scale'] or 'none'})"
                      for lane in summary["lanes"])
    _emit(summary, args.json, f"{args.file}: valid; post {cfg.post.id}; lanes: {lanes}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edgectl",
        description="Diagnostics for a customs post's lanes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 healthy, 1 a check failed, 2 could not run\n\n"
        "examples:\n  edgectl config validate /etc/customs-edge/post.toml\n"
        "  edgectl config validate --json post.toml",
    )
    p.add_argument("--version", action="version", version=f"edgectl {__version__}")
    sub = p.add_subparsers(dest="group", required=True)

    cfg = sub.add_parser("config", help="configuration files")
    cfg_sub = cfg.add_subparsers(dest="action", required=True)
    val = cfg_sub.add_parser(
        "validate",
        help="check a post config and print every error with its key path",
        epilog="example: edgectl config validate deploy/config/post-example.toml",
    )
    val.add_argument("file", type=Path)
    val.add_argument("--json", action="store_true", help="machine-readable output")
    val.set_defaults(func=cmd_config_validate)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return EXIT_CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main())
