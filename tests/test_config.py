"""Config loading: every error names the file and the key path; good examples validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli.edgectl import main as edgectl
from edge.config import load_config, load_hq_config, redact_url
from edge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

GOOD = """
[post]
id = "uz-test-01"
[storage]
data_dir = "data"
[[lanes]]
id = "lane1"
  [[lanes.cameras]]
  name = "front"
  url = "rtsp://user:pw@10.0.0.5:554/stream"
  [lanes.scale]
  url = "socket://127.0.0.1:4001"
  protocol = "ascii"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "post.toml"
    p.write_text(text)
    return p


def problems(tmp_path: Path, text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text))
    assert str(tmp_path / "post.toml") in str(exc.value)
    return dict(exc.value.problems)


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "deploy" / "config").glob("post-*.toml")))
def test_example_post_configs_validate(name: str) -> None:
    cfg = load_config(ROOT / "deploy" / "config" / name)
    assert cfg.lanes


def test_example_hq_config_validates() -> None:
    cfg = load_hq_config(ROOT / "deploy" / "config" / "hq-example.toml")
    assert cfg.hq.keys_dir is not None and not cfg.hq.trust_on_first_use


def test_good_config_resolves_relative_paths(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.storage.data_dir == tmp_path / "data"
    assert cfg.lanes[0].scale is not None and cfg.lanes[0].scale.baudrate == 9600


def test_missing_key_names_its_path(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace('  name = "front"\n', ""))
    assert found == {"lanes[0].cameras[0].name": "required key is missing"}


def test_unknown_key_names_its_path(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace('protocol = "ascii"', 'protocol = "ascii"\n  baud = 9600'))
    assert list(found) == ["lanes[0].scale.baud"]
    assert "unknown key" in found["lanes[0].scale.baud"]


@pytest.mark.parametrize(
    ("old", "new", "path", "words"),
    [
        ("rtsp://user:pw@10.0.0.5:554/stream", "ftp://10.0.0.5/x", "lanes[0].cameras[0].url", "scheme"),
        ("rtsp://user:pw@10.0.0.5:554/stream", "rtsp:///nohost", "lanes[0].cameras[0].url", "no host"),
        ("socket://127.0.0.1:4001", "socket://127.0.0.1", "lanes[0].scale.url", "host:port"),
        ("socket://127.0.0.1:4001", "telnet://x:1", "lanes[0].scale.url", "unsupported"),
        ('id = "uz-test-01"', 'id = "uz/test"', "post.id", "not a valid id"),
        ('name = "front"', 'name = "front"\n  far_rest_frames = -1', "lanes[0].cameras[0].far_rest_frames",
         "greater than or equal to 0"),
        ("[storage]", '[recognition]\ncountries = ["UZ", "UZB"]\n[storage]', "recognition.countries",
         "no plate formats for UZB"),
        ("[storage]", '[recognition]\nignore_countries = ["XX"]\n[storage]', "recognition.ignore_countries",
         "no plate formats for XX"),
        ("[storage]", '[recognition]\ncountries = ["UZ", "BR"]\nignore_countries = ["br"]\n[storage]',
         "recognition", "both name BR"),
    ],
)
def test_bad_values_name_key_and_cause(tmp_path: Path, old: str, new: str, path: str, words: str) -> None:
    found = problems(tmp_path, GOOD.replace(old, new))
    assert path in found, found
    assert words in found[path]


def test_bad_url_message_never_shows_credentials(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("rtsp://user:pw@10.0.0.5:554/stream", "rtsp://user:pw@/x"))
    assert "pw" not in found["lanes[0].cameras[0].url"]


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid TOML" in str(problems(tmp_path, "[post\nid=1"))
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path / "absent.toml")


def test_duplicate_lane_ids(tmp_path: Path) -> None:
    lane = GOOD[GOOD.index("[[lanes]]") :]
    found = problems(tmp_path, GOOD + lane)
    assert "lane ids must be unique: lane1" in found[""]


def test_redact_url() -> None:
    assert redact_url("rtsp://admin:hunter2@10.0.0.1:554/x") == "rtsp://***@10.0.0.1:554/x"
    assert redact_url("rtsp://10.0.0.1/x") == "rtsp://10.0.0.1/x"


def test_edgectl_config_validate_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, GOOD)
    assert edgectl(["config", "validate", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('protocol = "ascii"', 'protocol = "ascii"\n  colour = 1'))
    assert edgectl(["config", "validate", "--json", str(bad)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is False
    assert out["problems"][0]["path"] == "lanes[0].scale.colour"
    assert edgectl(["config", "validate"]) == 2
