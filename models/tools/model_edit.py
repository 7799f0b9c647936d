"""What the tools that edit a shipped model file share: how the source is named and checked, and
the metadata key of the modification notice that Apache-2.0 asks a changed file to carry.

Each tool reproduces a file of ``models/`` from the upstream one, so each takes ``SRC DST
[--expect-sha256 HEX]`` and refuses a source that is missing (exit 2) or not the upstream file
(exit 1) before it writes anything.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

NOTICE_KEY = "customs_post_edge.modification"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def edit_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """The tool's ``src``, ``dst`` and ``expect_sha256``, the source checked; exits with a message
    on stderr where the source is missing or differs from the expected file."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--expect-sha256", help="refuse a source whose sha256 differs (the upstream file's hash)")
    args = ap.parse_args(argv)
    if not args.src.is_file():
        ap.exit(2, f"error: {args.src} is not a file\n")
    if args.expect_sha256 and (seen := sha256_of(args.src)) != args.expect_sha256.lower():
        ap.exit(1, f"error: {args.src} has sha256 {seen}, expected {args.expect_sha256}\n")
    return args
