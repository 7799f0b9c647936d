"""The spin bench reads the same photos with readers at several idle-thread spins, and they must agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.spin import main
from tests.bench.conftest import PLATES


def test_every_setting_reads_every_photo_alike(dataset: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "spin.json"
    assert main(["--dataset", str(dataset), "--split", "xx", "--spin-us", "0", "100",
                 "--threads", "1", "--json", str(out)]) == 0
    assert "baseline: spin_us 0" in capsys.readouterr().out
    figures = json.loads(out.read_text())["figures"]
    assert figures["settings"] == [0, 100]
    rows = {r["spin_us"]: r for r in figures["rows"]}
    assert set(rows) == {0, 100}
    for row in rows.values():
        assert row["split"] == "xx" and row["photos"] == len(PLATES) and row["median_ms"] > 0
        assert row["reads_differ"] == 0  # spinning changes no arithmetic
    assert rows[0]["median_x"] == rows[0]["sum_x"] == 1.0


@pytest.mark.parametrize("bad", [["-1"], ["100", "100"]])
def test_bad_settings_are_refused(dataset: Path, bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--dataset", str(dataset), "--split", "xx", "--spin-us", *bad])
    assert exc.value.code == 2
    assert "--spin-us" in capsys.readouterr().err
