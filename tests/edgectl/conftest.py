"""edgectl against real parts: scale simulators on TCP ports and pseudo-terminals, synthetic and MJPEG
cameras, real Mosquitto brokers (one with a password file), real journals and the real models.

``run_cli`` calls ``edgectl``'s ``main`` in this process (stdout and stderr captured separately) so
that a test costs what the command costs, not a Python start-up; one test runs the installed console
script as a subprocess too.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drivers.scale.simulator import ScaleSimulator
from edge.broker import BrokerHandle, free_port, start_private_broker
from edge.cli.edgectl import main as edgectl_main
from edge.config import PostConfig, load_config
from edge.outbox.journal import Journal
from edge.outbox.signing import PostKey

SNAPSHOTS = Path(__file__).with_name("snapshots")


@dataclass
class CliResult:
    rc: int
    out: str
    err: str


RunCli = Callable[..., CliResult]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    def run(*argv: str | Path) -> CliResult:
        capsys.readouterr()
        rc = edgectl_main([str(a) for a in argv])
        cap = capsys.readouterr()
        return CliResult(rc, cap.out, cap.err)

    return run


@pytest.fixture
def scale_sim() -> Iterator[Callable[..., ScaleSimulator]]:
    """``scale_sim("ascii", transport="tcp", weight=0.0)``: started simulators, stopped at teardown."""
    made: list[ScaleSimulator] = []

    def make(protocol: str = "ascii", *, transport: str = "tcp", weight: float = 0.0, **kw: Any) -> ScaleSimulator:
        kw.setdefault("noise_kg", 0.0)
        sim = ScaleSimulator(protocol, transport=transport, weight_fn=lambda t: weight, **kw)  # type: ignore[arg-type]
        sim.start()
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.stop()


def write_config(
    path: Path,
    *,
    post_id: str,
    data_dir: Path,
    lanes: list[dict[str, Any]],
    broker: tuple[str, int] = ("127.0.0.1", 1883),
    broker_extra: str = "",
) -> Path:
    """A post config file; ``lanes``: [{"id", "cameras": [(name, url)], "scale": (url, protocol) | None}]."""
    text = f'[post]\nid = "{post_id}"\n\n[storage]\ndata_dir = "{data_dir}"\n\n'
    text += f'[broker]\nhost = "{broker[0]}"\nport = {broker[1]}\n{broker_extra}\n'
    for lane in lanes:
        text += f'[[lanes]]\nid = "{lane["id"]}"\n'
        for name, url in lane["cameras"]:
            text += f'  [[lanes.cameras]]\n  name = "{name}"\n  url = "{url}"\n  read_fps = 5\n'
        if lane.get("scale"):
            url, protocol = lane["scale"]
            text += f'  [lanes.scale]\n  url = "{url}"\n  protocol = "{protocol}"\n'
        text += "\n"
    path.write_text(text)
    load_config(path)  # a test's config must itself be valid
    return path


def make_journal(cfg: PostConfig, events: int, lane: str = "lane1") -> Journal:
    """The post's journal (and key) as the controller makes them, with ``events`` committed events."""
    data = Path(cfg.storage.data_dir)
    key = PostKey.load_or_create(data / "keys" / "post_ed25519.pem")
    j = Journal(data / "journal.sqlite", key, cfg.post.id)
    for i in range(events):
        j.append(event_payload(lane, f"01A{100 + i}BC"))
    return j


def event_payload(lane: str, plate: str, crop_sha256: str | None = None) -> dict[str, Any]:
    return {
        "schema": "customs.vehicle_event/1", "event_id": str(uuid.uuid4()), "lane_id": lane,
        "first_seen": "2026-11-28T21:30:01.120Z", "weighed_at": None, "left_at": "2026-11-28T21:30:09.000Z",
        "plate": {"text": plate, "display": plate, "country": "UZ", "confidence": 0.97, "crop_sha256": crop_sha256},
        "reads": [], "trailer_plate": None, "containers": [],
        "weighing": {"gross": 23450.0, "tare": 0.0, "net": 23450.0, "unit": "kg"},
        "flags": {"unreadable_plate": False, "watchlist_hit": False, "weight_mismatch": False, "no_weighing": False},
        "declaration": None, "software": {"version": "test", "models": {}},
    }


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[tuple[BrokerHandle, str, str]]:
    """A private Mosquitto that wants a user name and password: (handle, user, password)."""
    passwd = Path("/usr/bin/mosquitto_passwd")
    if not passwd.exists():
        pytest.skip("mosquitto_passwd is not installed: no broker with a password file")
    pw_file = tmp_path / "passwd"
    user, password = "post-user", "right-password"
    subprocess.run([str(passwd), "-b", "-c", str(pw_file), user, password], check=True, capture_output=True)
    pw_file.chmod(0o600)
    handle = start_private_broker("127.0.0.1", data_dir=tmp_path / "pwbroker", kind="mosquitto",
                                  extra_conf=f"allow_anonymous false\npassword_file {pw_file}")
    yield handle, user, password
    handle.close()


def normalise(text: str, tmp_path: Path) -> str:
    """Make a human table comparable with its snapshot: paths, ports and measured figures vary."""
    text = text.replace(str(tmp_path), "<TMP>")
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<PORT>", text)
    text = re.sub(r"\(\d+\.\d s\)", "(<T> s)", text)
    text = re.sub(r"\d+ MB free", "<N> MB free", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", "<TIME>", text)
    text = re.sub(r"\d+ s ago", "<N> s ago", text)
    return text


def check_snapshot(name: str, text: str, tmp_path: Path) -> None:
    """Compare with tests/edgectl/snapshots/NAME; write it when missing (then review and commit it)."""
    path = SNAPSHOTS / name
    got = normalise(text, tmp_path)
    if not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(got)
        pytest.fail(f"snapshot {path} was missing and has been written: review it and commit it")
    assert got == path.read_text(), f"output differs from {path}:\n{got}"


def wait_until(cond: Callable[[], object], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return bool(cond())


__all__ = ["CliResult", "RunCli", "check_snapshot", "free_port", "make_journal", "wait_until", "write_config"]
