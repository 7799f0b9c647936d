"""Post keys and the canonical form that hashes and signatures are computed over.

Canonical JSON (sorted keys, no whitespace, UTF-8, no NaN) lets HQ in any language recompute the
same bytes from the payload it received. The hash covers the payload with ``integrity.hash`` and
``integrity.signature`` left out; the signature is Ed25519 over those same canonical bytes, so the
chain (``prev_hash``) and the key id are themselves signed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.errors import IntegrityError, StorageError

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
"""``prev_hash`` of a post's first event."""

PublicKeyLike = Ed25519PublicKey | bytes | str


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def key_id_of(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def public_key_from(value: PublicKeyLike) -> Ed25519PublicKey:
    """Accept a key object, its 32 raw bytes, base64 of them, or a PEM text."""
    if isinstance(value, Ed25519PublicKey):
        return value
    try:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("-----BEGIN"):
                key = serialization.load_pem_public_key(text.encode())
                if not isinstance(key, Ed25519PublicKey):
                    raise IntegrityError("the PEM public key is not an Ed25519 key")
                return key
            value = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(value)
    except (ValueError, TypeError) as err:
        raise IntegrityError(f"not an Ed25519 public key: {err}") from err


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class PostKey:
    """A post's (or HQ's) Ed25519 signing key; ``key_id`` is a short sha256 of the public key."""

    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def public_b64(self) -> str:
        return b64(public_raw(self.public))

    @property
    def key_id(self) -> str:
        return key_id_of(public_raw(self.public))

    def sign(self, data: bytes) -> str:
        return b64(self.private.sign(data))

    @classmethod
    def generate(cls) -> PostKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path) -> PostKey:
        """Load the PEM key at ``path``, creating it (mode 0600) on first start of a post."""
        path = Path(path)
        try:
            if path.exists():
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
                if not isinstance(key, Ed25519PrivateKey):
                    raise StorageError(f"{path}: not an Ed25519 private key")
                if path.stat().st_mode & 0o077:
                    log.warning("%s is readable by others; restricting it to 0600", path)
                    path.chmod(0o600)
                return cls(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            new = cls.generate()
            pem = new.private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            tmp = path.with_name(path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            log.info("created post key %s at %s", new.key_id, path)
            return new
        except (OSError, ValueError) as err:
            raise StorageError(f"{path}: cannot load or create the signing key: {err}") from err

    def public_pem(self) -> str:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()


def signed_body(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as hashed and signed: ``integrity`` without its ``hash`` and ``signature``."""
    body = {k: v for k, v in payload.items() if k != "integrity"}
    integ = payload.get("integrity")
    if isinstance(integ, dict):
        body["integrity"] = {k: v for k, v in integ.items() if k not in ("hash", "signature")}
    return body


def seal(payload: dict[str, Any], key: PostKey, prev_hash: str) -> dict[str, Any]:
    """Return a copy of ``payload`` with ``integrity`` filled: chained, hashed and signed.

    Only the top level is copied (``integrity`` is the one key replaced); the hash covers the canonical
    bytes made here, so later changes to shared nested values cannot alter what was signed.
    """
    out = dict(payload)
    out["integrity"] = {"prev_hash": prev_hash, "key_id": key.key_id, "public_key": key.public_b64}
    canon = canonical_json(signed_body(out))
    out["integrity"]["hash"] = hashlib.sha256(canon).hexdigest()
    out["integrity"]["signature"] = key.sign(canon)
    return out


def verify_event(payload: dict[str, Any], public_key: PublicKeyLike) -> str:
    """Check the hash and signature of one event; return its hash. Raises IntegrityError naming why.

    The chain link (``prev_hash``) is checked by the caller, who knows the previous event.
    """
    integ = payload.get("integrity")
    if not isinstance(integ, dict):
        raise IntegrityError("no integrity block")
    for k in ("prev_hash", "hash", "signature", "key_id"):
        if not isinstance(integ.get(k), str):
            raise IntegrityError(f"integrity.{k} is missing")
    pub = public_key_from(public_key)
    if integ["key_id"] != key_id_of(public_raw(pub)):
        raise IntegrityError(f"signed by key {integ['key_id']}, expected {key_id_of(public_raw(pub))}")
    try:
        canon = canonical_json(signed_body(payload))
    except (TypeError, ValueError) as err:
        raise IntegrityError(f"payload is not canonical JSON: {err}") from err
    digest = hashlib.sha256(canon).hexdigest()
    if digest != integ["hash"]:
        raise IntegrityError("hash does not match the payload (content changed)")
    try:
        pub.verify(base64.b64decode(integ["signature"], validate=True), canon)
    except (InvalidSignature, ValueError) as err:
        raise IntegrityError("signature does not verify") from err
    return digest
