"""The formats bench draws every format of the syntax table and counts what the syntax step makes of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.formats import main


def test_every_format_is_drawn_read_and_judged_per_country(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "formats.json"
    assert main(["--hershey", "--per-variant", "1", "--heights", "24", "--countries", "UZ", "AF",
                 "--ignore", "US", "BR", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "listed" in printed and "others" in printed and "per country" in printed
    figures = json.loads(out.read_text())["figures"]
    assert figures["countries"] == ["UZ", "AF"] and figures["ignored"] == ["US", "BR"]
    (result,) = figures["results"]
    per = result["per_country"]
    assert {"UZ", "AF", "KZ", "RU", "TR", "DE", "generic"} <= set(per)
    assert not {"US", "BR"} & set(per)  # the ignored countries are not drawn
    # Clean lines 24 px tall in a plain font: the post's own countries' plates are read exactly.
    for country in ("UZ", "AF"):
        assert per[country]["exact"] == per[country]["lines"] > 0, (country, result["misses"])
    assert sum(v["lines"] for v in per.values()) == figures["lines"]
    for row in figures["rows"]:
        assert 0 <= row["broken"] <= row["lines"] and 0.0 <= row["exact_pct"] <= 100.0


def test_unknown_countries_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--hershey", "--countries", "UZB"])
    assert exc.value.code == 2
    assert "UZB" in capsys.readouterr().err


def test_worn_lines_need_the_fonts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--hershey", "--worn", "0.5"])
    assert exc.value.code == 2
    assert "--worn" in capsys.readouterr().err
