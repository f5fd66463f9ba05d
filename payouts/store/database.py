"""The ledger database: engine, sessions and schema, on SQLite (default) or PostgreSQL.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
`BEGIN IMMEDIATE`, so writers queue for the database lock up front instead of failing on
upgrade (read transactions stay deferred and do not block writers). On PostgreSQL, writers
lock the rows they check (`SELECT ... FOR UPDATE`). The schema is created, or migrated, on
first use under a lock, so several processes may start at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.pool import NullPool
from sqlmodel import Session, SQLModel

from payouts.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

SCHEMA_VERSION = 1


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and route them to the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            path = self.url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                self.url,
                echo=echo,
                connect_args={"check_same_thread": False, "timeout": 60},
                poolclass=NullPool if path == ":memory:" else None,
            )
            _configure_sqlite(self.engine)
        else:
            self.engine = create_engine(
                self.url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_recycle=1800,
            )
        self._writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._ready = False

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def ensure_schema(self) -> None:
        """Create or migrate the schema once per process; safe across processes."""
        if self._ready:
            return
        with self._writer.begin() as conn:
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(7233001)"))
            SQLModel.metadata.create_all(conn)
            current = conn.execute(text("SELECT version FROM schema_version WHERE id = 1"))
            row = current.first()
            if row is None:
                conn.execute(
                    text("INSERT INTO schema_version (id, version) VALUES (1, :v)"),
                    {"v": SCHEMA_VERSION},
                )
            elif row[0] > SCHEMA_VERSION:
                raise RuntimeError(
                    f"ledger schema version {row[0]} is newer than this code ({SCHEMA_VERSION})"
                )
            # Future migrations: `for v in range(row[0] + 1, SCHEMA_VERSION + 1): MIGRATIONS[v]`.
        self._ready = True

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
        with Session(self._writer) as session, session.begin():
            yield session

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        self.ensure_schema()
        with self._writer.begin() as conn:
            yield conn

    def insert_new(self, table: Any) -> Any:
        """`INSERT ... ON CONFLICT DO NOTHING` in this database's dialect: a row whose key
        exists is skipped (rowcount 0); a racing writer of the same key waits for the first
        to commit instead of failing."""
        from sqlalchemy.dialects import postgresql, sqlite

        if self.is_sqlite:
            return sqlite.insert(table).on_conflict_do_nothing()
        return postgresql.insert(table).on_conflict_do_nothing()

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
