"""Ed25519 keys: each principal signs with a private key of its own; verifiers hold only
public keys, so no verifier can forge what it checks.

Private keys live in PEM files (PKCS#8) written with mode 0600; public keys travel as
base64 of the 32 raw bytes (`public_key = "..."` in the policy's reviewer registry,
`PAYOUTS_PLATFORM_PUBLIC_KEY`, ...). A key's id is the first 16 hex digits of the SHA-256
of its public key: short enough to show, long enough to tell keys apart.

`verify` is a pure function of its arguments: the cash-out workflow calls it in workflow
code, and it answers the same on every replay.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from payouts.errors import SecretError


class SigningKey:
    """A principal's private key."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public = base64.b64encode(raw).decode()
        self.key_id = key_id(self.public)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """A key file written by `save` (or by `payouts keygen`)."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SecretError(f"key file {path}: cannot read ({exc.strerror})") from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise SecretError(f"key file {path}: not a PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SecretError(f"key file {path}: not an Ed25519 key")
        return cls(key)

    def save(self, path: Path) -> None:
        """Write the private key, readable by its owner only (0600), never over a file."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise SecretError(
                f"key file {path} exists already: keys are never overwritten"
            ) from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._key.sign(message)).decode()


def key_id(public: str) -> str:
    return hashlib.sha256(public.encode()).hexdigest()[:16]


def public_key(text: str, *, field: str = "public_key") -> str:
    """A base64 Ed25519 public key, checked; returns it normalised."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise SecretError(f"{field}: not a base64 Ed25519 public key (32 bytes)") from None
    return base64.b64encode(raw).decode()


def verify(public: str, message: bytes, signature: str) -> bool:
    """Does `signature` (base64) sign `message` under `public` (base64)? Never raises."""
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public, validate=True))
        key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True
