"""Settings, read once in an entry point (CLI, worker, starter) and passed down.

Every setting is an environment variable with the `PAYOUTS_` prefix (or a line in a `.env`
file in the working directory). Temporal's own connection settings (address, namespace,
TLS, API key) are not here: they come from Temporal's standard environment configuration
(`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_PROFILE`, ...).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from payouts.config.policy_file import load_policy
from payouts.domain.policy import Policy

DEV_SECRET = "dev-only-change-me"  # refused outside the embedded stack


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYOUTS_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Field(
        default=Path(".payouts"),
        description="Where the SQLite ledger, the Temporal state file and generated files live.",
    )
    database_url: str | None = Field(
        default=None,
        description="Ledger database URL (e.g. postgresql+psycopg://user@host/db); "
        "default: a SQLite file in data_dir.",
    )
    policy: Path | None = Field(
        default=None, description="Path of a policy TOML file; default: the shipped policy."
    )
    task_queue: str = Field(default="payouts", description="Temporal task queue of the worker.")
    secret_key: str = Field(
        default=DEV_SECRET,
        description="Keys the destination fingerprints (HMAC); set a real secret in production.",
    )
    worker_threads: int = Field(default=32, ge=1, description="Threads for database activities.")

    # --- principals' keys (docs/design.md, "Trust"): files hold private keys (mode 0600)
    platform_public_key: str = Field(
        default="", description="The platform's Ed25519 public key (base64): workers verify."
    )
    platform_key_file: Path | None = Field(
        default=None, description="The platform's private key: its client and CLI sign."
    )
    service_key_file: Path | None = Field(
        default=None,
        description="Our rail components' private key (workers, webhook ingress) for rail events.",
    )
    reviewer_key_file: Path | None = Field(
        default=None, description="This reviewer's private key (the CLI signs decisions)."
    )
    operator_token: str = Field(
        default="", description="The operators' bearer token for the codec server."
    )

    # --- the platform we report to
    platform_webhook_url: str | None = Field(
        default=None,
        description="Where terminal stages are POSTed; `payouts up` defaults it "
        "to the platform sandbox.",
    )
    platform_webhook_secret: str = Field(default="dev-platform-secret")
    notify_interval_seconds: int = Field(default=10, ge=1)

    # --- the wallet provider (default: the sandbox `payouts up` starts)
    wallet_api_url: str | None = Field(default=None)
    wallet_api_key: str = Field(default="sk_sandbox")
    wallet_webhook_secret: str = Field(default="whsec_sandbox")
    wallet_timeout_seconds: float = Field(default=10.0, gt=0)
    wallet_port: int = Field(default=8711, ge=0, description="The wallet sandbox's port.")
    webhook_port: int = Field(default=8712, ge=0, description="Our webhook ingress port.")
    platform_port: int = Field(default=8713, ge=0, description="The platform sandbox's port.")

    # --- the bank
    bank_debtor_name: str = Field(default="Payouts Platform Ltd")
    bank_debtor_iban: str = Field(default="GB33BUKB20201555555555")
    bank_debtor_bic: str = Field(default="BUKBGB22")
    bank_poll_seconds: int = Field(
        default=15, ge=1, description="How often bank reports are fetched."
    )

    # --- gift card codes at rest
    gift_code_keys: str = Field(
        default="",
        description="Comma-separated Fernet keys; the first encrypts, all decrypt. "
        "Default: derived from secret_key.",
    )

    # --- encryption of Temporal payloads (and the codec server the UI uses to read them)
    payload_keys: str = Field(
        default="",
        description="`id:base64key,...` (32-byte AES keys); the first encrypts, "
        "all decrypt. Default: one derived from secret_key.",
    )
    codec_port: int = Field(default=8714, ge=0, description="The codec server's port.")
    metrics_port: int = Field(default=9464, ge=0, description="Prometheus metrics (0: off).")
    metrics_host: str = Field(
        default="127.0.0.1", description="Interface for metrics; 0.0.0.0 for a Prometheus."
    )

    # --- automatic cash-outs (the sweep of standing instructions, a Temporal Schedule)
    auto_sweep_minutes: int = Field(
        default=60, ge=1, description="How often the automatic cash-out sweep runs."
    )
    auto_sweep_rate: float = Field(
        default=50.0, gt=0, le=1000, description="Cash-outs the sweep starts per second, at most."
    )

    # --- reconciliation
    held_too_long_hours: int = Field(default=72, ge=1)

    # --- the sandboxes (the "outside world" of the embedded stack)
    sandbox_seed: int = Field(default=0, description="Seed of the sandboxes' injected faults.")
    sandbox_transient_rate: float = Field(
        default=0.0, ge=0, le=1, description="Wallet 503s and gift card provider refusals."
    )
    sandbox_throttle_rate: float = Field(default=0.0, ge=0, le=1, description="Wallet 429s.")
    sandbox_timeout_rate: float = Field(
        default=0.0, ge=0, le=1, description="Wallet answers that come too late."
    )
    sandbox_webhook_duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    sandbox_webhook_reorder_rate: float = Field(default=0.0, ge=0, le=1)
    sandbox_wallet_complete_seconds: float = Field(default=0.5, ge=0)
    sandbox_bank_ack_seconds: int = Field(default=5, ge=0)
    sandbox_bank_settle_seconds: int = Field(default=60, ge=0)
    sandbox_bank_return_seconds: int = Field(default=3 * 86_400, ge=0)
    sandbox_bank_reject_rate: float = Field(default=0.0, ge=0, le=1)
    sandbox_bank_return_rate: float = Field(default=0.0, ge=0, le=1)
    sandbox_identity_pending_seconds: int = Field(default=7200, ge=0)

    @property
    def ledger_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir.resolve() / 'ledger.sqlite3'}"

    @property
    def sandbox_path(self) -> Path:
        return self.data_dir.resolve() / "sandbox.sqlite3"

    @property
    def temporal_db_path(self) -> Path:
        return self.data_dir.resolve() / "temporal.sqlite3"

    @property
    def bank_dir(self) -> Path:
        """pain.001 files in `outbound/`, the bank's reports in `inbound/`."""
        return self.data_dir.resolve() / "bank"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir.resolve() / "reports"

    def load_policy(self) -> Policy:
        return load_policy(self.policy)
