"""Databases for tests: a settable clock, and PostgreSQL when it is reachable.

PostgreSQL tests run against PAYOUTS_TEST_POSTGRES_URL (default: the local server at
127.0.0.1:5432, database `test`), each in a schema of its own. When the server is
unreachable they are skipped, unless PAYOUTS_REQUIRE_POSTGRES=1 (CI), where that fails.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get(
    "PAYOUTS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_PG = os.environ.get("PAYOUTS_REQUIRE_POSTGRES") == "1"


class FakeClock:
    """A settable clock for the ledger (maturation, daily limits)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


_pg_state: dict[str, object] = {}


def postgres_available() -> bool:
    if "ok" not in _pg_state:
        try:
            engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            engine.dispose()
            _pg_state["ok"] = True
        except Exception as exc:
            _pg_state["ok"] = False
            _pg_state["why"] = str(exc).splitlines()[0]
    return bool(_pg_state["ok"])


def require_postgres() -> None:
    if postgres_available():
        return
    message = f"PostgreSQL at {PG_URL} is not reachable: {_pg_state.get('why')}"
    if REQUIRE_PG:
        pytest.fail(message + " (PAYOUTS_REQUIRE_POSTGRES=1)", pytrace=False)
    pytest.skip(message)


def test_server_payload_key() -> str:
    """The payload key the session's Temporal test server client encrypts with (release
    0.1's, derived from the default secret): embedded stacks in the tests share it, so the
    CLI, worker processes and that client read each other's payloads."""
    from payouts.config.settings import DEV_SECRET
    from payouts.security.deployment import derived_payload_key

    return derived_payload_key(DEV_SECRET)
