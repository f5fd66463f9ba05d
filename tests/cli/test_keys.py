"""Keys: `payouts keygen` writes private keys 0600 and prints what to register; outside the
embedded stack a worker, the CLI and the codec server refuse development secrets and say
which setting to set; inside it they find the generated keys with no flags."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from payouts.app.stack import Stack
from payouts.config.policy_file import default_policy_text, load_policy
from payouts.config.settings import Settings
from payouts.domain.policy import parse_policy
from payouts.errors import SecretError
from payouts.security.deployment import Deployment, ensure_embedded_keys
from payouts.security.keys import SigningKey, verify

REPO = Path(__file__).resolve().parents[2]
ELSEWHERE = "temporal.example.net:7233"


def payouts(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PAYOUTS_", "TEMPORAL_"))}
    environ.update({"PAYOUTS_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run(
        [sys.executable, "-m", "payouts", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=60,
    )


def test_keygen_writes_private_keys_0600_and_prints_what_to_register(tmp_path: Path) -> None:
    reviewer = payouts(tmp_path, "keygen", "reviewer", "dora", "--out", str(tmp_path / "dora.key"))
    assert reviewer.returncode == 0, reviewer.stderr
    assert stat.S_IMODE((tmp_path / "dora.key").stat().st_mode) == 0o600
    entry = tomllib.loads(reviewer.stdout)["reviewers"][0]
    key = SigningKey.load(tmp_path / "dora.key")
    assert entry == {"id": "dora", "public_key": key.public}
    assert verify(entry["public_key"], b"m", key.sign(b"m"))
    data = tomllib.loads(default_policy_text())
    data["reviewers"].append(entry)
    assert parse_policy(data).rules_for("wallet", "USD").reviewer_keys == {"dora": key.public}
    again = payouts(tmp_path, "keygen", "reviewer", "dora", "--out", str(tmp_path / "dora.key"))
    assert again.returncode == 1 and "never overwritten" in again.stderr
    platform = payouts(tmp_path, "keygen", "platform", "--out", str(tmp_path / "p.key"))
    assert platform.stdout.startswith("PAYOUTS_PLATFORM_PUBLIC_KEY=")
    payload = payouts(tmp_path, "keygen", "payload", "2026-12")
    assert payload.stdout.startswith("2026-12:")


def test_a_policy_cannot_give_two_reviewers_one_key() -> None:
    data = tomllib.loads(default_policy_text())
    shared = SigningKey.generate().public
    data["reviewers"][0]["public_key"] = data["reviewers"][1]["public_key"] = shared
    with pytest.raises(Exception, match="two reviewers share a public key"):
        parse_policy(data)


def test_a_worker_elsewhere_refuses_development_secrets(tmp_path: Path) -> None:
    """Against any server but the embedded stack's, a worker will not start on the
    development secret, derived keys or reviewers without keys; the message names each
    setting and the command that makes its key."""
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(SecretError) as refused:
        Stack(settings, deployment=Deployment(settings, ELSEWHERE))
    why = str(refused.value)
    for setting in (
        "PAYOUTS_SECRET_KEY",
        "PAYOUTS_PAYLOAD_KEYS",
        "PAYOUTS_GIFT_CODE_KEYS",
        "PAYOUTS_PLATFORM_PUBLIC_KEY",
        "PAYOUTS_SERVICE_KEY_FILE",
        "reviewer 'alice' has no public_key",
    ):
        assert setting in why
    assert "payouts keygen reviewer alice" in why
    worker = subprocess.run(
        [sys.executable, "-m", "worker"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={
            "PATH": os.environ["PATH"],
            "PAYOUTS_DATA_DIR": str(tmp_path),
            "TEMPORAL_ADDRESS": ELSEWHERE,
        },
        timeout=60,
    )
    assert worker.returncode == 1
    assert worker.stderr.startswith("error: refusing to run (this deployment): ")


def test_the_cli_and_codec_server_elsewhere_refuse_derived_keys(tmp_path: Path) -> None:
    for args in (("status", "r-1"), ("codec-server",), ("review", "list")):
        done = payouts(tmp_path, *args, TEMPORAL_ADDRESS=ELSEWHERE)
        assert done.returncode == 1, (args, done.stderr)
        assert (
            "PAYOUTS_PAYLOAD_KEYS is not set: make one with `payouts keygen payload ID`"
            in done.stderr
        )
    signing = payouts(
        tmp_path, "review", "approve", "r-1", "--reviewer", "alice",
        TEMPORAL_ADDRESS=ELSEWHERE, PAYOUTS_PAYLOAD_KEYS="k:" + "A" * 43 + "=",
    )  # fmt: skip
    assert signing.returncode == 1 and "--key: your reviewer key file is needed" in signing.stderr


def test_a_complete_production_configuration_starts(tmp_path: Path) -> None:
    """Every key made with keygen and set: the worker's stack starts outside the embedded
    stack, with the registered reviewers' keys."""
    keys = {
        name: SigningKey.generate() for name in ("platform", "service", "alice", "bob", "carol")
    }
    keys["service"].save(tmp_path / "service.key")
    data = tomllib.loads(default_policy_text())
    for r in data["reviewers"]:
        r["public_key"] = keys[r["id"]].public
    policy_file = tmp_path / "policy.toml"
    import tomli_w

    policy_file.write_text(tomli_w.dumps(data))
    settings = Settings(
        data_dir=tmp_path,
        secret_key="s3cret-" + "x" * 30,
        payload_keys="2026-12:" + "B" * 43 + "=",
        gift_code_keys="Tl1b5jR8Yk0kZ0bW2cW9yq4oQx5x9f7b8u1cR1x8p2E=",
        platform_public_key=keys["platform"].public,
        service_key_file=tmp_path / "service.key",
        policy=policy_file,
    )
    stack = Stack(settings, deployment=Deployment(settings, ELSEWHERE))
    try:
        assert not stack.deployment.embedded
        assert stack.policy.rules_for("wallet", "USD").reviewer_keys["bob"] == keys["bob"].public
        assert stack.registry.get(stack.policy.version) == stack.policy
    finally:
        stack.close()


def test_the_embedded_stack_finds_its_keys_without_flags(tmp_path: Path) -> None:
    """`payouts up` marks its data folder for its server: there the CLI signs as any
    reviewer of the policy, the platform and the payload keys come from the folder."""
    settings = Settings(data_dir=tmp_path)
    folder = ensure_embedded_keys(settings, load_policy(), "localhost:7233")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.rglob("*.key"))
    here = Deployment(settings, "127.0.0.1:7233")
    assert here.embedded
    alice = here.reviewer_key("alice")
    assert (
        here.policy(load_policy()).rules_for("wallet", "USD").reviewer_keys["alice"] == alice.public
    )
    assert here.settings.payload_keys.startswith("dev-") and here.settings.platform_key_file
    assert not Deployment(settings, ELSEWHERE).embedded
