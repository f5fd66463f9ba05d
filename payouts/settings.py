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

from payouts.policy import Policy, load_policy


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
        default="dev-only-change-me",
        description="Keys the destination fingerprints (HMAC); set a real secret in production.",
    )
    worker_threads: int = Field(default=32, ge=1, description="Threads for database activities.")
    # The sandbox rails and identity provider (the "outside world" of the embedded stack).
    sandbox_seed: int = Field(default=0, description="Seed of the sandbox's injected faults.")
    sandbox_transient_rate: float = Field(default=0.0, ge=0, le=1)
    sandbox_timeout_rate: float = Field(default=0.0, ge=0, le=1)
    sandbox_latency_ms: int = Field(default=0, ge=0)
    sandbox_bank_settle_seconds: int = Field(default=60, ge=0)
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

    def load_policy(self) -> Policy:
        return load_policy(self.policy)
