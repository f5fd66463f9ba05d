"""Which keys a process holds, and the refusal to run on development secrets outside the
embedded stack.

`payouts up` makes the embedded stack: on first start it generates every key into
`<data dir>/keys/` (mode 0600) and marks the folder with the Temporal address it serves.
A process (worker, CLI, codec server) whose data folder carries that mark and that talks to
that address is *embedded*: it takes the keys it was not given from the folder, so
`payouts review approve R --reviewer alice` works with no flags there.

Anywhere else a process refuses to start with the development secret, derived payload or
gift-code keys, reviewers without registered public keys, or missing principal keys, and
says which setting to set and which `payouts keygen` command makes the key.

Keys in the folder:

    embedded          the mark: {"temporal": "127.0.0.1:7233"}
    secret            PAYOUTS_SECRET_KEY (destination fingerprints)
    payload.keys      PAYOUTS_PAYLOAD_KEYS (Temporal payloads)
    giftcodes.keys    PAYOUTS_GIFT_CODE_KEYS (gift card codes at rest)
    platform.key      the platform's signing key (requests, payees' cancels)
    service.key       our rail components' signing key (bank and wallet events)
    reviewers/ID.key  each reviewer's signing key
    operator.token    the operators' bearer token (the codec server)
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

from payouts.config.settings import DEV_SECRET, Settings
from payouts.domain.policy import Policy
from payouts.errors import SecretError
from payouts.security.keys import SigningKey, public_key
from payouts.security.vault import derived_key

LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


def keys_dir(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "keys"


def normalise_address(target: str) -> str:
    host, _, port = target.strip().rpartition(":")
    return f"{'127.0.0.1' if host in LOOPBACK else host}:{port}"


def derived_payload_key(secret: str) -> str:
    """The payload key release 0.1 derived from a secret (kept readable, never written)."""
    raw = hashlib.sha256(f"payloads:{secret}".encode()).digest()
    return f"derived-1:{base64.b64encode(raw).decode()}"


def _write_new(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.touch(mode=0o600, exist_ok=False)
    except FileExistsError:
        return
    path.write_text(text)


def ensure_embedded_keys(settings: Settings, policy: Policy, temporal: str) -> Path:
    """Generate what the embedded stack's folder lacks (never overwriting a key), and mark
    it as serving `temporal`. Returns the folder."""
    folder = keys_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    _write_new(folder / "secret", secrets.token_urlsafe(32))
    _write_new(folder / "payload.keys", f"dev-{secrets.token_hex(4)}:{_aes_key()}")
    _write_new(folder / "giftcodes.keys", Fernet.generate_key().decode())
    _write_new(folder / "operator.token", secrets.token_urlsafe(32))
    for name in ("platform", "service"):
        if not (folder / f"{name}.key").exists():
            SigningKey.generate().save(folder / f"{name}.key")
    for reviewer in policy.reviewers:
        path = folder / "reviewers" / f"{reviewer.id}.key"
        if not path.exists():
            SigningKey.generate().save(path)
    (folder / "embedded").write_text(json.dumps({"temporal": normalise_address(temporal)}))
    return folder


def _aes_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


class Deployment:
    """This process's keys: given by settings, or (embedded only) taken from the folder."""

    def __init__(self, settings: Settings, temporal: str) -> None:
        self.folder = keys_dir(settings)
        self.embedded = self._marked_for(temporal)
        self.settings = self._filled(settings) if self.embedded else settings

    def _marked_for(self, temporal: str) -> bool:
        try:
            mark = json.loads((self.folder / "embedded").read_text())
        except (OSError, ValueError):
            return False
        return isinstance(mark, dict) and mark.get("temporal") == normalise_address(temporal)

    def _read(self, name: str) -> str:
        try:
            return (self.folder / name).read_text().strip()
        except OSError:
            return ""

    def _filled(self, s: Settings) -> Settings:
        """The embedded folder's keys for every setting left at its default; the keys
        release 0.1 derived from the default secret stay readable (old local state)."""
        update: dict[str, object] = {}
        if s.secret_key == DEV_SECRET and self._read("secret"):
            update["secret_key"] = self._read("secret")
        if not s.payload_keys and self._read("payload.keys"):
            update["payload_keys"] = (
                f"{self._read('payload.keys')},{derived_payload_key(DEV_SECRET)}"
            )
        if not s.gift_code_keys and self._read("giftcodes.keys"):
            update["gift_code_keys"] = (
                f"{self._read('giftcodes.keys')},{derived_key(DEV_SECRET, 'gift-codes')}"
            )
        if not s.platform_public_key and (self.folder / "platform.key").exists():
            update["platform_public_key"] = SigningKey.load(self.folder / "platform.key").public
        if s.platform_key_file is None and (self.folder / "platform.key").exists():
            update["platform_key_file"] = self.folder / "platform.key"
        if s.service_key_file is None and (self.folder / "service.key").exists():
            update["service_key_file"] = self.folder / "service.key"
        if not s.operator_token and self._read("operator.token"):
            update["operator_token"] = self._read("operator.token")
        return s.model_copy(update=update)

    # ------------------------------------------------------------------ what a role needs

    def policy(self, policy: Policy) -> Policy:
        """The policy with the folder's reviewer keys for reviewers the file gives none."""
        if not self.embedded:
            return policy
        found = {}
        for path in sorted((self.folder / "reviewers").glob("*.key")):
            found[path.stem] = SigningKey.load(path).public
        return policy.with_reviewer_keys(found)

    def require(self, *needs: str, policy: Policy | None = None) -> None:
        """Refuse, naming each setting and how to make its key, when a need is unmet or a
        development value is in use outside the embedded stack."""
        s, problems = self.settings, []
        if "secret" in needs and s.secret_key == DEV_SECRET and not self.embedded:
            problems.append(
                "PAYOUTS_SECRET_KEY is the development secret: set a random one "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if "payload_keys" in needs and not s.payload_keys and not self.embedded:
            problems.append(
                "PAYOUTS_PAYLOAD_KEYS is not set: make one with `payouts keygen payload ID`"
            )
        if "gift_code_keys" in needs and not s.gift_code_keys and not self.embedded:
            problems.append(
                "PAYOUTS_GIFT_CODE_KEYS is not set: make one with `payouts keygen giftcodes`"
            )
        if "platform_public_key" in needs and not s.platform_public_key:
            problems.append(
                "PAYOUTS_PLATFORM_PUBLIC_KEY is not set: the platform makes its key with "
                "`payouts keygen platform --out FILE`, which prints this line"
            )
        if "platform_key" in needs and s.platform_key_file is None:
            problems.append(
                "PAYOUTS_PLATFORM_KEY_FILE is not set: make the platform's key with "
                "`payouts keygen platform --out FILE`"
            )
        if "service_key" in needs and s.service_key_file is None:
            problems.append(
                "PAYOUTS_SERVICE_KEY_FILE is not set: make the rail components' key with "
                "`payouts keygen service --out FILE`"
            )
        if "operator_token" in needs and len(s.operator_token) < 16:
            problems.append(
                "PAYOUTS_OPERATOR_TOKEN is not set (16 characters or more): make one with "
                "`payouts keygen operator`"
            )
        if "reviewer_keys" in needs and policy is not None:
            for r in policy.reviewers:
                if not r.public_key:
                    problems.append(
                        f"PAYOUTS_POLICY: reviewer {r.id!r} has no public_key; make one with "
                        f"`payouts keygen reviewer {r.id} --out FILE` and add the line it prints"
                    )
        if problems:
            where = "the embedded stack" if self.embedded else "this deployment"
            raise SecretError(f"refusing to run ({where}): " + "; ".join(problems))

    def platform_key(self) -> SigningKey:
        self.require("platform_key")
        assert self.settings.platform_key_file is not None
        return SigningKey.load(self.settings.platform_key_file)

    def service_key(self) -> SigningKey:
        self.require("service_key")
        assert self.settings.service_key_file is not None
        return SigningKey.load(self.settings.service_key_file)

    def platform_public(self) -> str:
        self.require("platform_public_key")
        return public_key(self.settings.platform_public_key, field="PAYOUTS_PLATFORM_PUBLIC_KEY")

    def reviewer_key(self, reviewer: str, path: Path | None = None) -> SigningKey:
        """A reviewer's key: the file given (`--key`, PAYOUTS_REVIEWER_KEY_FILE), or in the
        embedded stack the generated one."""
        chosen = path or self.settings.reviewer_key_file
        if chosen is None and self.embedded:
            chosen = self.folder / "reviewers" / f"{reviewer}.key"
        if chosen is None:
            raise SecretError(
                "--key: your reviewer key file is needed to sign (or PAYOUTS_REVIEWER_KEY_FILE); "
                f"make one with `payouts keygen reviewer {reviewer} --out FILE`"
            )
        return SigningKey.load(chosen)
