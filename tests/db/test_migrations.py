"""Schema migrations: a fresh database and a database of release 0.1 both end at the schema
the models declare, with every balance, hold and earning of the old one intact."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from payouts.errors import InvalidState
from payouts.ledger import Ledger
from payouts.ledger.reversals import ReversalRow
from payouts.store import migrate
from payouts.store.database import Database
from payouts.store.migrations import HEAD
from tests.support.databases import FakeClock

FIXTURES = Path(__file__).parent.parent / "fixtures" / "release_0_1"
RELEASE_0_6 = FIXTURES.parent / "release_0_6"  # revision 0006, before reversals


def schema_differences(db: Database) -> list[Any]:
    with db.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), SQLModel.metadata))


def load_release_0_1(url: str) -> None:
    """Create the tables and rows release 0.1 left behind (its own dump, loaded as is)."""
    load_release(FIXTURES, url)


def load_release(folder: Path, url: str) -> None:
    """Create the tables and rows a release left behind (its own dump, loaded as is)."""
    if url.startswith("sqlite"):
        import sqlite3

        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            conn.executescript((folder / "sqlite.sql").read_text())
        return
    schema = url.rsplit("%3D", 1)[1]
    lines = [
        line
        for line in (folder / "postgresql.sql").read_text().splitlines()
        if not line.startswith(("\\", "CREATE SCHEMA", "SELECT pg_catalog.set_config"))
    ]
    script = "\n".join(lines).replace("prevrel.", f"{schema}.")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(script)
    engine.dispose()


def snapshot(db: Database) -> dict[str, Any]:
    """Every balance, hold and earning, read straight from the tables."""
    with db.engine.connect() as conn:
        return {
            "balances": conn.execute(
                sa.text("SELECT owner, kind, currency, balance FROM accounts ORDER BY 1, 2, 3")
            ).all(),
            "holds": conn.execute(
                sa.text(
                    "SELECT id, user_id, currency, amount, status, gross, fee, reason "
                    "FROM holds ORDER BY id"
                )
            ).all(),
            "earnings": conn.execute(
                sa.text(
                    "SELECT event_id, user_id, currency, amount, earned_at, matures_at, "
                    "mature_tx_id IS NULL FROM earnings ORDER BY event_id"
                )
            ).all(),
            "legs": conn.execute(sa.text("SELECT COUNT(*), SUM(amount) FROM ledger_legs")).one(),
        }


def test_head_names_the_newest_revision() -> None:
    """`HEAD`, which opening a database checks against, is the newest revision on disk."""
    assert ScriptDirectory.from_config(migrate.config()).get_current_head() == HEAD


def test_an_empty_database_upgrades_to_the_models(db_url: str) -> None:
    """The revisions, applied to nothing, build exactly the schema the models declare."""
    db = Database(db_url)
    before, after = migrate.upgrade(db)
    assert (before, after) == (None, HEAD)
    assert schema_differences(db) == []
    assert migrate.upgrade(db) == (HEAD, HEAD)  # a second run changes nothing
    db.dispose()


def test_a_release_0_1_ledger_upgrades_with_its_data(db_url: str) -> None:
    """Release 0.1's database (its tables, no Alembic version) is upgraded in place: every
    balance, hold and earning is intact, the books still audit clean, and it is then
    exactly today's schema and works as a ledger."""
    load_release_0_1(db_url)
    db = Database(db_url)
    assert db.schema_revision() is None
    old = snapshot(db)
    assert len(old["holds"]) == 5 and len(old["earnings"]) == 343
    assert migrate.upgrade(db) == (migrate.BASELINE, HEAD)
    assert snapshot(db) == old
    assert schema_differences(db) == []
    ledger = Ledger(db, clock=FakeClock())
    assert ledger.audit() == []
    assert all(ledger.totals(c).conserved for c in ledger.currencies())
    assert ledger.balance("u2", "EUR").held == 30_000_000
    # the reserved hold of release 0.1 can still be posted, the posted one reversed
    post = ledger.post(key="cashout-r4:post", hold_id="cashout-r4", gross=30_000_000, fee=300_000)
    assert post.status == "posted"
    again = ledger.reserve(
        key="cashout-r3:reserve", hold_id="cashout-r3", user_id="u1", currency="USD",
        amount=40_000_000,
    )  # fmt: skip
    assert again.replayed  # its stored result answers a re-sent key, as before the upgrade
    assert ledger.audit() == []
    db.dispose()


def test_opening_an_old_database_upgrades_it(db_url: str) -> None:
    """Any process that opens the ledger (a worker, `payouts up`, a CLI command) brings an
    old schema up to date first."""
    load_release_0_1(db_url)
    db = Database(db_url)
    Ledger(db).balance("u0", "USD")
    assert db.schema_revision() == HEAD
    db.dispose()


def test_several_processes_upgrade_at_once(db_url: str, tmp_path: Path) -> None:
    """Three `payouts db upgrade` started together: one migrates, the others wait for its
    lock and find the schema current; none fails."""
    load_release_0_1(db_url)
    env = {"PAYOUTS_DATABASE_URL": db_url, "PAYOUTS_DATA_DIR": str(tmp_path), "PATH": ""}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "payouts", "db", "upgrade", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    befores = sorted(json.loads(out)["before"] for out, _ in results)
    assert befores == [migrate.BASELINE, HEAD, HEAD], results
    assert Database(db_url).schema_revision() == HEAD


def test_a_newer_database_is_refused(db_url: str) -> None:
    """A database a newer release upgraded is refused, naming its revision, not written."""
    db = Database(db_url)
    db.ensure_schema()
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0999'"))
    fresh = Database(db_url)
    with pytest.raises(InvalidState, match="'0999'"):
        fresh.ensure_schema()
    db.dispose()
    fresh.dispose()


def test_the_previous_release_upgrades_to_reversals(db_url: str) -> None:
    """The database the release before reversals wrote (revision 0006, its own dump) is
    upgraded in place: every balance, hold, earning and saved destination intact, the books
    audit clean, exactly today's schema; its old earnings can then be reversed, and the
    reversal of one already paid out leaves the payee owing, which old-style maturation
    settles."""
    load_release(RELEASE_0_6, db_url)
    db = Database(db_url)
    assert db.schema_revision() == "0006"
    old = snapshot(db)
    assert len(old["holds"]) == 4 and len(old["earnings"]) == 433
    with db.engine.connect() as conn:
        profiles_before = conn.execute(
            sa.text("SELECT id, user_id, method, is_default, status FROM payout_profiles")
        ).all()
        rules_before = conn.execute(sa.text("SELECT * FROM auto_cashouts")).all()
    assert len(profiles_before) == 1 and len(rules_before) == 1
    assert migrate.upgrade(db) == ("0006", HEAD)
    assert snapshot(db) == old
    assert schema_differences(db) == []
    with db.engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT id, user_id, method, is_default, status FROM payout_profiles")
            ).all()
            == profiles_before
        )
        assert conn.execute(sa.text("SELECT * FROM auto_cashouts")).all() == rules_before
        assert conn.execute(sa.text("SELECT SUM(reversed) FROM earnings")).scalar_one() == 0
    clock = FakeClock(datetime(2026, 11, 30, 10, 0, tzinfo=UTC))  # when the release wrote it
    ledger = Ledger(db, hold_hours=72, clock=clock)
    assert ledger.audit() == []
    assert ledger.balance("u2", "EUR").held == 25_000_000
    u0 = ledger.balance("u0", "USD")
    # u0 cashed out 30.00 USD; taking back more than it has left leaves it owing
    big = 800_000_000
    done = ledger.reverse_earnings([ReversalRow("rv-1", "big-u0", None, "fraud")])
    assert done.amount["USD"] == big
    after = ledger.balance("u0", "USD")
    assert after.available == 0 and after.owed == big - u0.available
    assert ledger.totals("USD").conserved and ledger.audit() == []
    # its pending earnings of the old release mature and pay part of it back
    clock.advance(hours=80)
    ledger.mature_due()
    settled = ledger.balance("u0", "USD")
    assert settled.pending == 0 and settled.available == 0
    assert settled.owed == after.owed - u0.pending
    assert ledger.audit() == []
    db.dispose()
