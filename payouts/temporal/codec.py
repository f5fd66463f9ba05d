"""Encryption of every Temporal payload (names, bank accounts, wallet ids ride in them).

`EncryptionCodec` is a Temporal `PayloadCodec`: each payload is serialised and sealed with
AES-256-GCM under the newest key, and tagged with that key's id; decoding picks the key by
id, so older keys keep reading what they wrote (rotation: put a new key first). Payloads
that are not encrypted (a signal typed into the Temporal UI or CLI) pass through.

Keys come from settings (`PAYOUTS_PAYLOAD_KEYS="id:base64key,..."`); without any, one is
derived from the deployment secret. The codec server (`payouts.temporal.codec_server`) lets the
Temporal UI decode payloads for an operator who runs it with the keys.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from payouts.config.settings import Settings
from payouts.errors import CodecError
from payouts.security.deployment import derived_payload_key

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
VERSION = "encryption-version"
CURRENT = b"2"


def _bound(key_id: bytes) -> bytes:
    """The associated data of version 2: the ciphertext is bound to its metadata (the
    encoding, its version and key id), so none of them can be swapped undetected."""
    return b"|".join((ENCODING, CURRENT, key_id))


def parse_keys(spec: str, *, secret: str) -> list[tuple[str, bytes]]:
    """`id:base64key,...` (32-byte keys); default: one key derived from the secret."""
    keys: list[tuple[str, bytes]] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        key_id, sep, encoded = part.partition(":")
        if not sep or not key_id:
            raise CodecError("PAYOUTS_PAYLOAD_KEYS: each key is written id:base64key")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise CodecError(f"PAYOUTS_PAYLOAD_KEYS: key {key_id!r} is not base64") from None
        if len(key) != 32:
            raise CodecError(f"PAYOUTS_PAYLOAD_KEYS: key {key_id!r} must be 32 bytes")
        keys.append((key_id, key))
    if not keys:
        return parse_keys(derived_payload_key(secret), secret=secret)
    return keys


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise CodecError("the payload codec needs at least one key")
        self._write_id, write_key = keys[0]
        self._write = AESGCM(write_key)
        self._read = {key_id: AESGCM(key) for key_id, key in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(12)
        key_id = self._write_id.encode()
        sealed = self._write.encrypt(nonce, payload.SerializeToString(), _bound(key_id))
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: key_id, VERSION: CURRENT},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID, b"")
        aead = self._read.get(raw_id.decode(errors="replace"))
        if aead is None:
            shown_id = raw_id[:64].decode(errors="replace")
            raise CodecError(f"payload encrypted with unknown key {shown_id!r}")
        version = payload.metadata.get(VERSION)
        if version not in (None, CURRENT):
            raise CodecError(f"payload encoding version {version[:8]!r} is unknown")
        # release 0.1 wrote no version and bound nothing; since, the key id is bound
        bound = _bound(raw_id) if version == CURRENT else None
        try:
            plain = aead.decrypt(payload.data[:12], payload.data[12:], bound)
        except InvalidTag:
            raise CodecError("payload does not decrypt: altered, or not ours") from None
        return Payload.FromString(plain)


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """The pydantic converter, with the encryption codec when there is one. Failures'
    messages and stack traces go into an encoded (so encrypted) payload too: they quote
    balances, rail answers and account values."""
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def codec_for(settings: Settings) -> EncryptionCodec:
    """The codec of this deployment's payload keys (`PAYOUTS_PAYLOAD_KEYS`)."""
    return EncryptionCodec(parse_keys(settings.payload_keys, secret=settings.secret_key))


def converter_for(settings: Settings) -> DataConverter:
    """The data converter every client and worker of this deployment uses."""
    return data_converter(codec_for(settings))
