"""``edgectl mqtt check`` against real Mosquitto brokers (plain, password file, TLS) and
``edgectl model check`` on the real models and on a corrupted copy."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import edge.service.keys as K
from edge.broker import BrokerHandle, free_port, start_private_broker
from edge.diag.schema import validate
from edge.recognition.models import find_models_dir
from tests.edgectl.conftest import RunCli, write_config


def _cfg(tmp_path: Path, post_id: str, host: str, port: int, extra: str = "", name: str = "post.toml") -> Path:
    return write_config(tmp_path / name, post_id=post_id, data_dir=tmp_path / "data", broker=(host, port),
                        broker_extra=extra, lanes=[{"id": "lane1", "cameras": [("front", "synthetic://lane1")]}])


def test_mqtt_check_round_trip(tmp_path: Path, run_cli: RunCli, mqtt_broker: BrokerHandle,
                               unique_id: Callable[[str], str]) -> None:
    post = unique_id("post")
    r = run_cli("mqtt", "check", "--json", "--config", _cfg(tmp_path, post, mqtt_broker.host, mqtt_broker.port))
    assert r.rc == 0, r.out
    m = json.loads(r.out)
    validate("mqtt_check", m)
    assert m["connected"] and m["subscribed"] and m["rtt_ms"] >= 0
    assert m["topic"] == f"customs/v1/{post}/diag/test"


def test_mqtt_check_wrong_password_and_anonymous(tmp_path: Path, run_cli: RunCli,
                                                 password_broker: tuple[BrokerHandle, str, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    broker, user, password = password_broker
    monkeypatch.setenv("T_MQTT_USER", user)
    monkeypatch.setenv("T_MQTT_PASSWORD", "wrong-password")
    creds = 'username = { env = "T_MQTT_USER" }\npassword = { env = "T_MQTT_PASSWORD" }\n'
    cfg = _cfg(tmp_path, "post-pw", broker.host, broker.port, creds)
    r = run_cli("mqtt", "check", "--config", cfg)
    assert r.rc == 1
    assert "the broker refused the connection: not authorised: wrong user name or password" in r.out
    assert "env T_MQTT_PASSWORD" in r.out and "wrong-password" not in r.out
    r = run_cli("mqtt", "check", "--json", "--config", cfg)
    m = json.loads(r.out)
    validate("mqtt_check", m)
    assert m["reason_code"] in (0x86, 0x87) and not m["connected"]
    monkeypatch.setenv("T_MQTT_PASSWORD", password)
    assert run_cli("mqtt", "check", "--config", cfg).rc == 0
    anon = _cfg(tmp_path, "post-pw", broker.host, broker.port, name="anon.toml")
    r = run_cli("mqtt", "check", "--config", anon)
    assert r.rc == 1 and "refused anonymous access" in r.out
    monkeypatch.delenv("T_MQTT_PASSWORD")
    r = run_cli("mqtt", "check", "--config", cfg)
    assert r.rc == 1 and "environment variable T_MQTT_PASSWORD is not set" in r.out


def test_mqtt_check_nothing_listening(tmp_path: Path, run_cli: RunCli) -> None:
    r = run_cli("mqtt", "check", "--config", _cfg(tmp_path, "post-x", "127.0.0.1", free_port()))
    assert r.rc == 1 and "nothing listens at 127.0.0.1:" in r.out and "fix: check broker.host" in r.out


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[BrokerHandle, Path, Path]]:
    """Mosquitto with a TLS listener: (handle, the right CA file, another CA's file)."""
    d = tmp_path / "pki"
    d.mkdir()
    ca_key, ca = K.create_ca("Test HQ CA")
    _, other = K.create_ca("Somebody else's CA")
    key = K.generate_tls_key()
    cert = K.sign_csr(K.make_csr(key, "hq-broker", server=True), ca_key, ca, server_names=["127.0.0.1", "localhost"])
    K.write_secret(d / "server.key", K.key_pem(key))
    K.write_public(d / "server.crt", K.cert_pem(cert))
    K.write_public(d / "ca.crt", K.cert_pem(ca))
    K.write_public(d / "other.crt", K.cert_pem(other))
    handle = start_private_broker("127.0.0.1", data_dir=tmp_path / "tlsbroker", kind="mosquitto",
                                  extra_conf=f"cafile {d / 'ca.crt'}\ncertfile {d / 'server.crt'}\n"
                                             f"keyfile {d / 'server.key'}\n")
    yield handle, d / "ca.crt", d / "other.crt"
    handle.close()


def test_mqtt_check_tls_failures_in_words(tmp_path: Path, run_cli: RunCli,
                                          tls_broker: tuple[BrokerHandle, Path, Path],
                                          mqtt_broker: BrokerHandle) -> None:
    broker, ca, other = tls_broker
    r = run_cli("mqtt", "check", "--config", _cfg(tmp_path, "post-tls", "127.0.0.1", broker.port,
                                                  f'[broker.tls]\nca_file = "{ca}"\n'))
    assert r.rc == 0, r.out
    r = run_cli("mqtt", "check", "--config", _cfg(tmp_path, "post-tls", "127.0.0.1", broker.port,
                                                  f'[broker.tls]\nca_file = "{other}"\n'))
    assert r.rc == 1 and "TLS: the broker's certificate is not signed by the CA in" in r.out and str(other) in r.out
    r = run_cli("mqtt", "check", "--config", _cfg(tmp_path, "post-tls", "localhost", mqtt_broker.port,
                                                  f'[broker.tls]\nca_file = "{ca}"\n'))
    assert r.rc == 1 and "does not speak TLS" in r.out
    r = run_cli("mqtt", "check", "--config", _cfg(tmp_path, "post-tls", "127.0.0.1", broker.port))
    assert r.rc == 1 and "does the port expect TLS?" in r.out


def test_model_check_real_models(run_cli: RunCli) -> None:
    r = run_cli("model", "check", "--json", "--config", "/nonexistent.toml")
    assert r.rc == 0, r.out
    m = json.loads(r.out)
    validate("model_check", m)
    assert {x["name"] for x in m["models"]} == {"ppocr-det", "ppocr-rec", "fa-plate-rec"}
    assert all(x["verified"] and x["latency_ms"] > 0 for x in m["models"])
    assert m["self_test"]["ok"] and m["self_test"]["read"] == "01A123BC"


def test_model_check_refuses_a_changed_model(tmp_path: Path, run_cli: RunCli) -> None:
    src = find_models_dir(None)
    dst = tmp_path / "models"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.md"))
    rec = dst / "PP-OCRv6_rec_small.onnx"
    data = bytearray(rec.read_bytes())
    data[len(data) // 2] ^= 0xFF
    rec.write_bytes(bytes(data))
    r = run_cli("model", "check", "--models-dir", dst, "--config", "/nonexistent.toml")
    assert r.rc == 1
    assert "does not match the manifest" in r.out and "PP-OCRv6_rec_small.onnx" in r.out
    assert "PASS" in r.out  # the detector is still fine, and said so
