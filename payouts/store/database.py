"""The ledger database: engine, connections and sessions, on SQLite (default) or PostgreSQL.

Writers use `write_connection()` (or `write()`): one transaction that commits on success
and rolls back on any exception. On SQLite it starts with `BEGIN IMMEDIATE`, so writers
queue for the database lock up front instead of failing on upgrade (readers stay deferred
and never block writers). What else differs between the two is in `store.dialect`.

The schema is brought up to date on first use (`ensure_schema`), under a lock, so several
processes may start at once (`store.migrate`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from payouts.errors import InvalidState
from payouts.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from payouts.store.dialect import Dialect, create_engine_for
from payouts.store.migrations import HEAD


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and route them to the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = normalize_url(url)
        self.engine: Engine = create_engine_for(self.url, pool_size=pool_size)
        self.dialect = Dialect(self.engine.dialect.name)
        self.writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._ready = False

    @property
    def is_sqlite(self) -> bool:
        return self.dialect.is_sqlite

    def ensure_schema(self) -> None:
        """Bring the schema to the newest revision, once per process (one query when it
        is there already)."""
        if self._ready:
            return
        if self.schema_revision() != HEAD:
            from payouts.store import migrate  # Alembic is loaded only when there is work

            migrate.upgrade(self)
        self._ready = True

    def schema_revision(self) -> str | None:
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return None if found is None else str(found)

    @contextmanager
    def read(self) -> Iterator[Session]:
        self.ensure_schema()
        with Session(self.engine) as session:
            yield session

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        self.ensure_schema()
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: commits on success, rolls back on any exception."""
        self.ensure_schema()
        with Session(self.writer) as session, session.begin():
            yield session

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A write transaction. A write the database refuses for a ledger invariant
        (migrations 0005, 0007) raises `InvalidState` naming the rule, and nothing is written."""
        self.ensure_schema()
        try:
            with self.writer.begin() as conn:
                yield conn
        except DBAPIError as exc:
            why = invariant_broken(exc)
            if why is None:
                raise
            raise InvalidState(f"the ledger database refused the write: {why}") from None

    def dispose(self) -> None:
        self.engine.dispose()


def invariant_broken(exc: DBAPIError) -> str | None:
    """Which ledger invariant the database enforced, if that is why it refused."""
    text = str(exc.orig)
    if "ledger invariant: " in text:
        return text.split("ledger invariant: ", 1)[1].splitlines()[0].strip()
    if "ck_accounts_user_balance_not_negative" in text:
        return "a negative user balance"
    if "ck_accounts_owed_not_positive" in text:
        return "an owed balance above zero"
    if "ck_earnings_reversed_bounds" in text:
        return "reversed beyond the earning"
    if "bigint out of range" in text or "integer out of range" in text:
        return "a balance beyond int64"
    return None
