"""Schema migrations: every change of the ledger's schema is an Alembic revision.

`upgrade` brings a database to the newest revision (`HEAD`), under a lock so that several
processes starting at once (workers, `payouts up`, a CLI command) migrate it exactly once:
an advisory lock on PostgreSQL, the write lock of `BEGIN IMMEDIATE` on SQLite. The whole
upgrade is one transaction: it applies completely or not at all.

A database of release 0.1 (tables created on first start, no Alembic version) has exactly
the schema of revision 0001: it is stamped as such, then upgraded like any other.

Opening the ledger (`Database.ensure_schema`) reads the revision and upgrades only when it
is behind; a database newer than this code is refused.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from payouts.errors import InvalidState
from payouts.store.database import Database
from payouts.store.migrations import HEAD

BASELINE = "0001"  # release 0.1's schema
LOCK = 7233001  # the advisory lock id on PostgreSQL


def config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("payouts.store").joinpath("migrations"))
    )
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def revision(conn: Connection) -> str | None:
    """The database's revision; None when it has none yet."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database) -> tuple[str | None, str]:
    """Bring `db` to `HEAD`; returns (revision before, revision after)."""
    with db.writer.begin() as conn:
        if not db.dialect.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK})
        before = revision(conn)
        refuse_newer(before)
        if before is None and inspect(conn).has_table("accounts"):
            MigrationContext.configure(conn).stamp(ScriptDirectory.from_config(config()), BASELINE)
            before = BASELINE
        if before != HEAD:
            command.upgrade(config(conn), "head")
        return before, revision(conn) or ""


def refuse_newer(found: str | None) -> None:
    if found is None or found == HEAD:
        return
    known = {s.revision for s in ScriptDirectory.from_config(config()).walk_revisions()}
    if found not in known:
        raise InvalidState(
            f"the ledger database is at schema revision {found!r}, which this release does "
            f"not know (it knows up to {HEAD!r}): it was upgraded by a newer release"
        )
