"""Every bench explains itself: `./dev bench NAME --help` prints its options and exits 0.

argparse %-formats help text, so a help string built from prose ("4% of the plate's width") once
crashed `bench.accuracy --help` with a TypeError instead of printing it.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import bench

# Every bench module, found rather than listed, so that a new bench is covered without being named.
BENCHES = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))


def test_every_bench_is_found() -> None:
    assert {"accuracy", "delivery", "plate_size", "recognizer", "soak"} <= set(BENCHES)


@pytest.mark.parametrize("name", BENCHES)
def test_help_prints_and_exits_zero(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    main = importlib.import_module(f"bench.{name}").main
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ") and "--help" in out
