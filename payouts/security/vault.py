"""Encryption at rest for secrets we must keep (gift card codes): Fernet, with rotation.

The first key encrypts; every key decrypts (MultiFernet), so a new key can be put first
while old rows stay readable. Keys come from settings; without any, one is derived from
the deployment's secret (fine for the embedded stack, not for production).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from payouts.config.settings import Settings
from payouts.errors import VaultError


def derived_key(secret: str, purpose: str) -> str:
    digest = hashlib.sha256(f"{purpose}:{secret}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


class Vault:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise VaultError("the vault needs at least one key")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except (ValueError, TypeError) as exc:
            raise VaultError(f"invalid vault key: {exc}") from None

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise VaultError("cannot decrypt: no configured key fits") from None

    def rotate(self, token: str) -> str:
        """Re-encrypt under the first (newest) key."""
        return self._fernet.rotate(token.encode()).decode()


def vault_for(settings: Settings) -> Vault:
    """The vault of this deployment's gift card keys (`PAYOUTS_GIFT_CODE_KEYS`)."""
    keys = [k.strip() for k in settings.gift_code_keys.split(",") if k.strip()]
    return Vault(keys or [derived_key(settings.secret_key, "gift-codes")])
