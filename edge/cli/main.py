"""``customs-edge``: placeholder until the controller lands."""
import sys


def main(argv: list[str] | None = None) -> int:
    print("customs-edge: not yet", file=sys.stderr)
    return 2
