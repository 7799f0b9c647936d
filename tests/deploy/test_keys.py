"""Key management: a post's TLS key and request, HQ's CA signing it, rotation of both keys."""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from edge.errors import ConfigError, IntegrityError
from edge.outbox.signing import PostKey
from edge.service import keys as K


def run(*argv: str) -> int:
    return K.main(list(argv))


def test_enrolment_flow_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca_dir, post_dir = tmp_path / "hq-ca", tmp_path / "post-tls"
    assert run("ca-init", "--dir", str(ca_dir)) == 0
    assert run("post-init", "--post-id", "tashkent-01", "--dir", str(post_dir)) == 0
    assert stat.S_IMODE((post_dir / "post.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((ca_dir / "ca.key").stat().st_mode) == 0o600

    # The request travels to HQ (only the CSR: the key never leaves the post) and comes back signed.
    assert run("sign", str(post_dir / "post.csr"), "--ca-dir", str(ca_dir), "--out", str(tmp_path / "p.crt")) == 0
    (post_dir / "hq-ca.pem").write_bytes((ca_dir / "ca.crt").read_bytes())
    assert run("install-cert", str(tmp_path / "p.crt"), "--post-id", "tashkent-01", "--dir", str(post_dir)) == 0

    cert = K.load_cert(post_dir / "post.pem")
    ca = K.load_cert(ca_dir / "ca.crt")
    cert.verify_directly_issued_by(ca)
    assert K.certificate_identity(cert) == "tashkent-01"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert "installed" in capsys.readouterr().out


def test_keys_are_never_overwritten_silently(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("post-init", "--post-id", "p1", "--dir", str(tmp_path)) == 0
    before = (tmp_path / "post.key").read_bytes()
    assert run("post-init", "--post-id", "p1", "--dir", str(tmp_path)) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (tmp_path / "post.key").read_bytes() == before


@pytest.mark.parametrize("bad", ["post/1", "post+1", "#", "", "hq customs", "-leading"])
def test_ca_signs_only_post_ids(bad: str) -> None:
    ca_key, ca = K.create_ca()
    key = K.generate_tls_key()
    with pytest.raises(ConfigError, match="not a post id"):
        K.make_csr(key, bad)
    # A request made by other tools with such a CN is refused at signing too.
    if bad:
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, bad)]))
            .sign(key, hashes.SHA256())
        )
        with pytest.raises(ConfigError, match="not a post id"):
            K.sign_csr(csr, ca_key, ca)


def test_hq_identity_is_signed_only_when_asked(tmp_path: Path) -> None:
    ca_key, ca = K.create_ca()
    csr = K.make_csr(K.generate_tls_key(), K.HQ_IDENTITY)
    with pytest.raises(IntegrityError, match="HQ's identity"):
        K.sign_csr(csr, ca_key, ca)
    assert K.certificate_identity(K.sign_csr(csr, ca_key, ca, allow_hq=True)) == K.HQ_IDENTITY


def test_request_without_a_cn_is_refused() -> None:
    ca_key, ca = K.create_ca()
    key = K.generate_tls_key()
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    with pytest.raises(IntegrityError, match="exactly one CN"):
        K.sign_csr(csr, ca_key, ca)


def test_install_cert_checks_key_ca_and_identity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca_key, ca = K.create_ca()
    other_key, other = K.create_ca("other")
    K.write_public(tmp_path / "hq-ca.pem", K.cert_pem(ca))
    assert run("post-init", "--post-id", "p1", "--dir", str(tmp_path)) == 0
    csr = K.load_csr(tmp_path / "post.csr")

    foreign = tmp_path / "foreign.crt"
    K.write_public(foreign, K.cert_pem(K.sign_csr(csr, other_key, other)))
    assert run("install-cert", str(foreign), "--dir", str(tmp_path)) == 1
    assert "not signed by the CA" in capsys.readouterr().err

    wrong_key = tmp_path / "wrong-key.crt"
    K.write_public(wrong_key, K.cert_pem(K.sign_csr(K.make_csr(K.generate_tls_key(), "p1"), ca_key, ca)))
    assert run("install-cert", str(wrong_key), "--dir", str(tmp_path)) == 1
    assert "is not for the key" in capsys.readouterr().err

    good = tmp_path / "good.crt"
    K.write_public(good, K.cert_pem(K.sign_csr(csr, ca_key, ca)))
    assert run("install-cert", str(good), "--post-id", "p2", "--dir", str(tmp_path)) == 1
    assert "not this post 'p2'" in capsys.readouterr().err
    assert not (tmp_path / "post.pem").exists()
    assert run("install-cert", str(good), "--post-id", "p1", "--dir", str(tmp_path)) == 0


def test_tls_rotation_keeps_the_current_pair_until_the_new_certificate_arrives(tmp_path: Path) -> None:
    ca_key, ca = K.create_ca()
    K.write_public(tmp_path / "hq-ca.pem", K.cert_pem(ca))
    assert run("post-init", "--post-id", "p1", "--dir", str(tmp_path)) == 0
    first = tmp_path / "first.crt"
    K.write_public(first, K.cert_pem(K.sign_csr(K.load_csr(tmp_path / "post.csr"), ca_key, ca)))
    assert run("install-cert", str(first), "--dir", str(tmp_path)) == 0
    old_key = (tmp_path / "post.key").read_bytes()

    assert run("rotate-tls", "--post-id", "p1", "--dir", str(tmp_path)) == 0
    assert (tmp_path / "post.key").read_bytes() == old_key  # still connecting with the old pair
    assert (tmp_path / "post.pem").read_bytes() == first.read_bytes()

    second = tmp_path / "second.crt"
    K.write_public(second, K.cert_pem(K.sign_csr(K.load_csr(tmp_path / "post.next.csr"), ca_key, ca)))
    assert run("install-cert", str(second), "--dir", str(tmp_path)) == 0
    assert (tmp_path / "post.key").read_bytes() != old_key
    assert not (tmp_path / "post.next.key").exists()
    new_cert = K.load_cert(tmp_path / "post.pem")
    assert new_cert.public_key() == K.load_tls_key(tmp_path / "post.key").public_key()


def test_signing_key_rotation_chain() -> None:
    k1, k2, k3 = PostKey.generate(), PostKey.generate(), PostKey.generate()
    s12 = K.rotation_statement(k1, k2.public_b64, "p1")
    s23 = K.rotation_statement(k2, k3.public_b64, "p1")
    assert K.verify_rotation(s12, k1.public_b64, "p1") == k2.public_b64
    assert K.follow_rotations(k1.public_b64, [s12, s23], "p1") == k3.public_b64
    assert K.follow_rotations(k1.public_b64, [], "p1") == k1.public_b64


def test_forged_rotations_are_refused() -> None:
    k1, k2, thief = PostKey.generate(), PostKey.generate(), PostKey.generate()
    good = K.rotation_statement(k1, k2.public_b64, "p1")

    by_thief = K.rotation_statement(thief, thief.public_b64, "p1")
    with pytest.raises(IntegrityError, match="does not trust"):
        K.verify_rotation(by_thief, k1.public_b64, "p1")

    swapped = {**good, "new_public_key": thief.public_b64, "new_key_id": thief.key_id}
    with pytest.raises(IntegrityError, match="signature does not verify"):
        K.verify_rotation(swapped, k1.public_b64, "p1")

    with pytest.raises(IntegrityError, match="not 'p2'"):
        K.verify_rotation(good, k1.public_b64, "p2")

    mismatched = {**good, "new_key_id": thief.key_id}
    with pytest.raises(IntegrityError, match="new_key_id"):
        K.verify_rotation(mismatched, k1.public_b64, "p1")

    with pytest.raises(IntegrityError, match="does not trust"):  # out of order: k2 -> k3 before k1 -> k2
        K.follow_rotations(k1.public_b64, [K.rotation_statement(k2, thief.public_b64, "p1")], "p1")


def test_rotate_signing_stages_the_next_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    current = PostKey.load_or_create(tmp_path / "post_ed25519.pem")
    assert run("rotate-signing", "--dir", str(tmp_path)) == 0
    assert PostKey.load_or_create(tmp_path / "post_ed25519.pem").key_id == current.key_id
    staged = PostKey.load_or_create(tmp_path / "post_ed25519.next.pem")
    assert staged.key_id != current.key_id
    assert stat.S_IMODE((tmp_path / "post_ed25519.next.pem").stat().st_mode) == 0o600
    assert f"replace {current.key_id}" in capsys.readouterr().out
    assert run("rotate-signing", "--dir", str(tmp_path)) == 1  # one staged rotation at a time


def test_hq_and_broker_requests_and_group_readable_keys(tmp_path: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    ca_dir = tmp_path / "ca"
    assert run("ca-init", "--dir", str(ca_dir)) == 0
    assert run("hq-init", "--dir", str(tmp_path), "--group", group) == 0
    assert run("broker-init", "--name", "hq-mqtt.customs.example", "--dir", str(tmp_path)) == 0
    key = tmp_path / "hq.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o640 and key.stat().st_gid == os.getgid()

    assert run("sign", str(tmp_path / "hq.csr"), "--ca-dir", str(ca_dir)) == 1  # HQ rights need --hq
    assert run("sign", str(tmp_path / "hq.csr"), "--ca-dir", str(ca_dir), "--hq") == 0
    assert K.certificate_identity(K.load_cert(tmp_path / "hq.crt")) == K.HQ_IDENTITY

    server_csr = str(tmp_path / "server.csr")
    assert (
        run(
            "sign",
            server_csr,
            "--ca-dir",
            str(ca_dir),
            "--server-name",
            "hq-mqtt.customs.example",
            "--server-name",
            "10.0.0.5",
        )
        == 0
    )
    cert = K.load_cert(tmp_path / "server.crt")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["hq-mqtt.customs.example"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    # A broker request is not a client identity: without --server-name it is refused.
    assert run("sign", server_csr, "--ca-dir", str(ca_dir), "--out", str(tmp_path / "x.crt")) == 1


def test_unknown_group_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("post-init", "--post-id", "p1", "--dir", str(tmp_path), "--group", "no-such-group-xyz") == 1
    assert "no such group 'no-such-group-xyz'" in capsys.readouterr().err


def test_revocations_accumulate_in_the_crl(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    assert run("ca-init", "--dir", str(ca_dir)) == 0
    ca_key, ca = K.load_tls_key(ca_dir / "ca.key"), K.load_cert(ca_dir / "ca.crt")
    certs = []
    for name in ("p1", "p2", "p3"):
        cert = K.sign_csr(K.make_csr(K.generate_tls_key(), name), ca_key, ca)
        K.write_public(tmp_path / f"{name}.pem", K.cert_pem(cert))
        certs.append(cert)
    crl_path = tmp_path / "crl.pem"
    assert run("revoke", str(tmp_path / "p1.pem"), "--ca-dir", str(ca_dir), "--out", str(crl_path)) == 0
    assert run("revoke", str(tmp_path / "p2.pem"), "--ca-dir", str(ca_dir), "--out", str(crl_path)) == 0
    assert run("revoke", str(tmp_path / "p2.pem"), "--ca-dir", str(ca_dir), "--out", str(crl_path)) == 0
    crl = x509.load_pem_x509_crl(crl_path.read_bytes())
    assert crl.is_signature_valid(ca_key.public_key())
    assert {e.serial_number for e in crl} == {certs[0].serial_number, certs[1].serial_number}
    assert crl.get_revoked_certificate_by_serial_number(certs[2].serial_number) is None
