"""Every bench explains itself: `./dev bench NAME --help` prints its options and exits 0.

argparse %-formats help text, so a help string built from prose ("4% of the plate's width") once
crashed `bench.accuracy --help` with a TypeError instead of printing it.
"""

from __future__ import annotations

import importlib

import pytest

BENCHES = ["accuracy", "calibrate_confidence", "delivery", "hq_throughput", "lanes", "latency",
           "recognition_lane", "recognizer", "soak"]


@pytest.mark.parametrize("name", BENCHES)
def test_help_prints_and_exits_zero(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    main = importlib.import_module(f"bench.{name}").main
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ") and "--help" in out
