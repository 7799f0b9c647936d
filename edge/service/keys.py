"""A post's keys: the Ed25519 signing key of its journal, and the TLS key and certificate it connects with.

Two keys with two jobs. The **signing key** (``/var/lib/customs-edge/keys/post_ed25519.pem``, made
by the controller on first start, see :mod:`edge.outbox.signing`) signs every event, so HQ can prove
an event came from that post unchanged, even when it travelled through a USB stick. The **TLS key**
(``/etc/customs-edge/tls/post.key`` with ``post.pem``) only proves identity to the broker: the certificate's CN is the
post id and Mosquitto's ACLs give that identity its own topics and nothing else.

This module is also a small CLI (``python -m edge.service.keys``, see deploy/keys.md): a post makes
its TLS key and CSR locally, so the private key never leaves the post computer; HQ signs the CSR with
its CA. ``ca-init``/``sign`` implement a simple file-based CA for test benches and small deployments;
a ministry PKI can sign the same CSR instead.

Rotating the signing key must not break the journal's chain: :func:`rotation_statement` makes the
announcement, signed by the *old* key, that the journal records as an ordinary event before the new
key signs anything; HQ follows it with :func:`verify_rotation`.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import grp
import ipaddress
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge.errors import ConfigError, IntegrityError, StorageError
from edge.outbox.signing import PostKey, b64, canonical_json, key_id_of, public_key_from, public_raw

POST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
"""Same rule as the config's Identifier: the CN becomes a topic level through the ACL's %u."""

HQ_IDENTITY = "hq.customs"
"""HQ's certificate CN. The '.' makes it impossible as a post id, so no post can ever be issued it."""

TLSKey = ec.EllipticCurvePrivateKey
CLIENT_DAYS = 825
CA_DAYS = 3650


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- files ---------------------------------------------------------------------------------------


def write_secret(path: Path, data: bytes, *, overwrite: bool = False, group: str | None = None) -> None:
    """Write a private key 0600, atomically, refusing to clobber one unless told (a lost key is a lost post).

    ``group`` (e.g. ``customs-edge``) makes it 0640 for that group, so the service user can read a key
    that root owns and the service cannot change.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise StorageError(f"{path} already exists; refusing to overwrite a key (move it away first)")
    gid = -1
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError as err:
            raise ConfigError("keys", [("group", f"no such group {group!r} (install.sh creates it)")]) from err
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            if gid != -1:
                os.fchown(f.fileno(), -1, gid)
                os.fchmod(f.fileno(), 0o640)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise StorageError(f"cannot write {path}: {err.strerror or err}") from err


def write_public(path: Path, data: bytes) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except OSError as err:
        raise StorageError(f"cannot write {path}: {err.strerror or err}") from err


def key_pem(key: TLSKey | Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def csr_pem(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.PEM)


def load_tls_key(path: Path) -> TLSKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise StorageError(f"{path}: cannot load the private key: {err}") from err
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise StorageError(f"{path}: not an EC private key")
    return key


def load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError) as err:
        raise StorageError(f"{path}: cannot load the certificate: {err}") from err


def load_csr(path: Path) -> x509.CertificateSigningRequest:
    try:
        return x509.load_pem_x509_csr(Path(path).read_bytes())
    except (OSError, ValueError) as err:
        raise StorageError(f"{path}: cannot load the certificate request: {err}") from err


# --- TLS: keys, requests, a small CA ---------------------------------------------------------------


def check_post_id(post_id: str) -> str:
    if not POST_ID.fullmatch(post_id):
        raise ConfigError(
            "keys", [("post_id", f"{post_id!r} is not a post id (letters, digits, '_' and '-', up to 64)")]
        )
    return post_id


def generate_tls_key() -> TLSKey:
    """ECDSA P-256: supported by every TLS stack a post or HQ may run (Ed25519 certificates are not)."""
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(key: TLSKey, identity: str, *, server: bool = False) -> x509.CertificateSigningRequest:
    """A certificate request with CN = the post id (or :data:`HQ_IDENTITY`, or a broker's host name)."""
    if not server and identity != HQ_IDENTITY:
        check_post_id(identity)
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
        .sign(key, hashes.SHA256())
    )


def create_ca(
    common_name: str = "Customs Post Edge test CA", *, days: int = CA_DAYS
) -> tuple[TLSKey, x509.Certificate]:
    key = generate_tls_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _common_name(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(attrs) != 1:
        raise IntegrityError("the certificate request must carry exactly one CN")
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode()


def sign_csr(
    csr: x509.CertificateSigningRequest,
    ca_key: TLSKey,
    ca_cert: x509.Certificate,
    *,
    days: int = CLIENT_DAYS,
    server_names: Sequence[str] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    allow_hq: bool = False,
) -> x509.Certificate:
    """Issue a certificate for a checked request.

    A client certificate (no ``server_names``) must name a valid post id, since the broker turns the
    CN into topic levels; :data:`HQ_IDENTITY` only with ``allow_hq``, so that a request arriving from
    a post can never come back with HQ's rights. ``server_names`` (DNS names or IP addresses) make a
    broker's server certificate instead. ``not_before``/``not_after`` exist for tests (expired ones).
    """
    if not csr.is_signature_valid:
        raise IntegrityError("the certificate request's signature does not verify (corrupted or forged)")
    cn = _common_name(csr.subject)
    if not server_names:
        if cn == HQ_IDENTITY:
            if not allow_hq:
                raise IntegrityError(
                    f"the request asks for HQ's identity {HQ_IDENTITY!r}; sign it with --hq only for HQ"
                )
        else:
            check_post_id(cn)
    now = _now()
    start = not_before or now - dt.timedelta(minutes=5)
    end = not_after or now + dt.timedelta(days=days)
    public = csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise IntegrityError("the certificate request must hold an EC (P-256) key")
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if server_names:
        sans: list[x509.GeneralName] = []
        for n in server_names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def make_crl(
    ca_key: TLSKey,
    ca_cert: x509.Certificate,
    revoked: Sequence[x509.Certificate],
    *,
    days: int = 30,
    keep: x509.CertificateRevocationList | None = None,
) -> x509.CertificateRevocationList:
    """Revoke stolen or retired posts' certificates; Mosquitto reads it via ``crlfile``.

    ``keep`` is the previous CRL: its entries are carried over so revocations accumulate.
    """
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=days))
    )
    serials: set[int] = set()
    if keep is not None:
        for entry in keep:
            serials.add(entry.serial_number)
            builder = builder.add_revoked_certificate(entry)
    for cert in revoked:
        if cert.serial_number in serials:
            continue
        serials.add(cert.serial_number)
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(now).build()
        )
    return builder.sign(ca_key, hashes.SHA256())


def certificate_identity(cert: x509.Certificate) -> str:
    return _common_name(cert.subject)


# --- signing-key rotation ---------------------------------------------------------------------------


def rotation_statement(
    old: PostKey, new_public_b64: str, post_id: str, *, issued_at: str | None = None
) -> dict[str, Any]:
    """The announcement "post X replaces signing key A by B", signed by A.

    The journal stores it as a normal, chained event (sealed by the old key too); only events after
    it are signed by the new key. HQ accepts the new key only through a statement verified against
    the key it already trusts, so a thief with the TLS key alone cannot take over a post's chain.
    """
    new_raw = public_raw(public_key_from(new_public_b64))
    body = {
        "type": "key_rotation",
        "post_id": check_post_id(post_id),
        "old_key_id": old.key_id,
        "old_public_key": old.public_b64,
        "new_key_id": key_id_of(new_raw),
        "new_public_key": b64(new_raw),
        "issued_at": issued_at or _now().isoformat(timespec="seconds"),
    }
    return {**body, "signature": old.sign(canonical_json(body))}


def verify_rotation(statement: dict[str, Any], trusted_public: str, post_id: str) -> str:
    """Check a statement against the currently trusted key; return the new public key (base64)."""
    body = {k: v for k, v in statement.items() if k != "signature"}
    if body.get("type") != "key_rotation":
        raise IntegrityError("not a key_rotation statement")
    if body.get("post_id") != post_id:
        raise IntegrityError(f"rotation is for post {body.get('post_id')!r}, not {post_id!r}")
    trusted = public_key_from(trusted_public)
    if body.get("old_public_key") != b64(public_raw(trusted)):
        raise IntegrityError("rotation is signed by a key HQ does not trust for this post")
    new_pub = public_key_from(str(body.get("new_public_key", "")))
    if body.get("new_key_id") != key_id_of(public_raw(new_pub)):
        raise IntegrityError("new_key_id does not match new_public_key")
    try:
        trusted.verify(base64.b64decode(str(statement.get("signature", "")), validate=True), canonical_json(body))
    except (InvalidSignature, ValueError) as err:
        raise IntegrityError("rotation statement signature does not verify") from err
    return b64(public_raw(new_pub))


def follow_rotations(enrolled_public: str, statements: Sequence[dict[str, Any]], post_id: str) -> str:
    """The key a post signs with now, from its enrolled key and its rotation statements in order."""
    current = enrolled_public
    for st in statements:
        current = verify_rotation(st, current, post_id)
    return current


# --- CLI -------------------------------------------------------------------------------------------


def _cmd_post_init(a: argparse.Namespace) -> int:
    d = Path(a.dir)
    key = generate_tls_key()
    write_secret(d / "post.key", key_pem(key), overwrite=a.force, group=a.group)
    write_public(d / "post.csr", csr_pem(make_csr(key, a.post_id)))
    print(f"wrote {d / 'post.key'} (keep it here) and {d / 'post.csr'} (send it to HQ to sign)")
    return 0


def _cmd_rotate_tls(a: argparse.Namespace) -> int:
    """A new key and CSR next to the current pair; swapped in only when HQ's certificate comes back."""
    d = Path(a.dir)
    key = generate_tls_key()
    write_secret(d / "post.next.key", key_pem(key), overwrite=a.force, group=a.group)
    write_public(d / "post.next.csr", csr_pem(make_csr(key, a.post_id)))
    print(f"wrote {d / 'post.next.key'} and {d / 'post.next.csr'}; the current certificate stays in use")
    return 0


def _cmd_install_cert(a: argparse.Namespace) -> int:
    """Put a signed certificate in place after checking it matches the key and names this post."""
    d = Path(a.dir)
    cert = load_cert(Path(a.cert))
    ca = load_cert(Path(a.ca)) if a.ca else load_cert(d / "hq-ca.pem")
    next_key = d / "post.next.key"
    key_path = next_key if next_key.exists() else d / "post.key"
    key = load_tls_key(key_path)
    if cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise IntegrityError(f"{a.cert} is not for the key in {key_path}")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as err:
        raise IntegrityError(f"{a.cert} is not signed by the CA in {a.ca or d / 'hq-ca.pem'}") from err
    if a.post_id and certificate_identity(cert) != a.post_id:
        raise IntegrityError(f"{a.cert} names {certificate_identity(cert)!r}, not this post {a.post_id!r}")
    write_public(d / "post.pem", cert_pem(cert))
    if key_path == next_key:
        os.replace(next_key, d / "post.key")
        (d / "post.next.csr").unlink(missing_ok=True)
    print(f"installed {d / 'post.pem'} for {certificate_identity(cert)}; restart customs-edge to use it")
    return 0


def _cmd_identity_init(a: argparse.Namespace) -> int:
    """HQ's own client key (CN hq.customs) or a broker's server key, each with its request."""
    d = Path(a.dir)
    key = generate_tls_key()
    name = HQ_IDENTITY if a.cmd == "hq-init" else a.name
    write_secret(d / f"{a.file}.key", key_pem(key), overwrite=a.force, group=a.group)
    write_public(d / f"{a.file}.csr", csr_pem(make_csr(key, name, server=a.cmd == "broker-init")))
    print(f"wrote {d / (a.file + '.key')} and {d / (a.file + '.csr')} (CN {name})")
    return 0


def _cmd_ca_init(a: argparse.Namespace) -> int:
    d = Path(a.dir)
    key, cert = create_ca(a.name, days=a.days)
    write_secret(d / "ca.key", key_pem(key), overwrite=a.force)
    write_public(d / "ca.crt", cert_pem(cert))
    print(f"wrote {d / 'ca.key'} (guard it) and {d / 'ca.crt'} (copy to every post and the broker)")
    return 0


def _cmd_sign(a: argparse.Namespace) -> int:
    d = Path(a.ca_dir)
    csr = load_csr(Path(a.csr))
    cert = sign_csr(
        csr,
        load_tls_key(d / "ca.key"),
        load_cert(d / "ca.crt"),
        days=a.days,
        server_names=a.server_name or (),
        allow_hq=a.hq,
    )
    out = Path(a.out) if a.out else Path(a.csr).with_suffix(".crt")
    write_public(out, cert_pem(cert))
    print(f"signed {certificate_identity(cert)} until {cert.not_valid_after_utc:%Y-%m-%d}: {out}")
    return 0


def _cmd_revoke(a: argparse.Namespace) -> int:
    d = Path(a.ca_dir)
    out = Path(a.out)
    keep = None
    if out.exists():
        try:
            keep = x509.load_pem_x509_crl(out.read_bytes())
        except ValueError as err:
            raise StorageError(f"{out}: not a CRL: {err}") from err
    certs = [load_cert(Path(c)) for c in a.cert]
    crl = make_crl(load_tls_key(d / "ca.key"), load_cert(d / "ca.crt"), certs, days=a.days, keep=keep)
    write_public(out, crl.public_bytes(serialization.Encoding.PEM))
    names = ", ".join(certificate_identity(c) for c in certs)
    print(f"{out}: {len(list(crl))} revoked (added {names}); next update {crl.next_update_utc:%Y-%m-%d}")
    print("restart mosquitto to apply it")
    return 0


def _cmd_signing_key(a: argparse.Namespace) -> int:
    key = PostKey.load_or_create(Path(a.path))
    print(f"key_id {key.key_id}\npublic_key {key.public_b64}")
    return 0


def _cmd_rotate_signing(a: argparse.Namespace) -> int:
    """Stage the next signing key; the controller announces it (signed by the current key) and switches."""
    current = PostKey.load_or_create(Path(a.dir) / "post_ed25519.pem")
    new = Ed25519PrivateKey.generate()
    write_secret(Path(a.dir) / "post_ed25519.next.pem", key_pem(new), overwrite=a.force)
    staged = PostKey(new)
    print(f"staged key_id {staged.key_id} to replace {current.key_id}; restart customs-edge to announce it")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge.service.keys", description="Post keys and certificates")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("post-init", help="make the post's TLS key and certificate request (CN = post id)")
    s.add_argument("--post-id", required=True)
    s.add_argument("--dir", default="/etc/customs-edge/tls")
    s.add_argument("--force", action="store_true")
    s.set_defaults(fn=_cmd_post_init)

    s.add_argument("--group", help="make the key readable by this group (customs-edge)")

    s = sub.add_parser("hq-init", help=f"HQ: make the subscriber's TLS key and request (CN {HQ_IDENTITY})")
    s.add_argument("--dir", default="/etc/customs-edge/tls")
    s.add_argument("--file", default="hq")
    s.add_argument("--group", help="make the key readable by this group (customs-edge-hq)")
    s.add_argument("--force", action="store_true")
    s.set_defaults(fn=_cmd_identity_init)

    s = sub.add_parser("broker-init", help="HQ: make the broker's TLS key and request (CN = its host name)")
    s.add_argument("--name", required=True, help="the host name posts connect to")
    s.add_argument("--dir", default="/etc/mosquitto/customs-edge")
    s.add_argument("--file", default="server")
    s.add_argument("--group", help="make the key readable by this group (mosquitto)")
    s.add_argument("--force", action="store_true")
    s.set_defaults(fn=_cmd_identity_init)

    s = sub.add_parser("rotate-tls", help="make a new TLS key and request; the current pair keeps working")
    s.add_argument("--post-id", required=True)
    s.add_argument("--dir", default="/etc/customs-edge/tls")
    s.add_argument("--force", action="store_true")
    s.add_argument("--group", help="make the key readable by this group (customs-edge)")
    s.set_defaults(fn=_cmd_rotate_tls)

    s = sub.add_parser("install-cert", help="check and install the certificate HQ signed")
    s.add_argument("cert")
    s.add_argument("--post-id")
    s.add_argument("--ca", help="the HQ CA certificate (default: DIR/hq-ca.pem)")
    s.add_argument("--dir", default="/etc/customs-edge/tls")
    s.set_defaults(fn=_cmd_install_cert)

    s = sub.add_parser("ca-init", help="HQ: create a file-based CA (test benches, small deployments)")
    s.add_argument("--dir", required=True)
    s.add_argument("--name", default="Customs Post Edge CA")
    s.add_argument("--days", type=int, default=CA_DAYS)
    s.add_argument("--force", action="store_true")
    s.set_defaults(fn=_cmd_ca_init)

    s = sub.add_parser("sign", help="HQ: sign a post's request (or a broker's with --server-name)")
    s.add_argument("csr")
    s.add_argument("--ca-dir", required=True)
    s.add_argument("--out")
    s.add_argument("--days", type=int, default=CLIENT_DAYS)
    s.add_argument("--server-name", action="append", help="DNS name or IP of a broker; repeatable")
    s.add_argument("--hq", action="store_true", help=f"the request is HQ's own ({HQ_IDENTITY})")
    s.set_defaults(fn=_cmd_sign)

    s = sub.add_parser("revoke", help="HQ: add certificates to the CRL the broker checks (crlfile)")
    s.add_argument("cert", nargs="+")
    s.add_argument("--ca-dir", required=True)
    s.add_argument("--out", default="/etc/mosquitto/customs-edge/crl.pem")
    s.add_argument("--days", type=int, default=30, help="until the CRL must be re-issued")
    s.set_defaults(fn=_cmd_revoke)

    s = sub.add_parser("signing-key", help="show (creating if absent) the post's journal signing key")
    s.add_argument("--path", default="/var/lib/customs-edge/keys/post_ed25519.pem")
    s.set_defaults(fn=_cmd_signing_key)

    s = sub.add_parser("rotate-signing", help="stage a new journal signing key next to the current one")
    s.add_argument("--dir", default="/var/lib/customs-edge/keys")
    s.add_argument("--force", action="store_true")
    s.set_defaults(fn=_cmd_rotate_signing)

    a = p.parse_args(argv)
    try:
        return int(a.fn(a))
    except (StorageError, IntegrityError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
