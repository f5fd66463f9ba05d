"""The database refuses what breaks the ledger's invariants, whoever writes (migration
0005): a negative user balance, legs that do not balance, changing or deleting a leg,
adding one to a sealed transaction, and a balance beyond int64. Each is tried with raw
SQL, as a bug or a hand-typed fix would; through the ledger the same refusal is an
`InvalidState` naming the rule, and nothing is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from payouts.errors import InvalidState
from payouts.ledger import Ledger
from payouts.store.database import Database

INT64_MAX = 2**63 - 1


def seeded(ledger: Ledger) -> None:
    """One matured earning for ana: a transaction with two legs, sealed."""
    ledger.credit_earning(
        event_id="e1", user_id="ana", currency="USD", amount=5_000_000,
        earned_at=datetime.now(UTC) - timedelta(days=30),
    )  # fmt: skip


def refused(db: Database, *statements: str) -> str:
    """Run raw statements in one transaction; the database must refuse. Returns why."""

    def run() -> None:
        with db.engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))

    with pytest.raises(DBAPIError) as exc:
        run()
    return str(exc.value.orig)


def account(db: Database, kind: str) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT id FROM accounts WHERE owner = 'ana' AND kind = :k"), {"k": kind}
            ).scalar_one()
        )


def new_transaction(key: str) -> str:
    return (
        "INSERT INTO ledger_transactions (idempotency_key, kind, content_hash, created_at, "
        f"result_json) VALUES ('{key}', 'manual', '', 0, '')"
    )


def test_a_negative_user_balance_is_refused(ledger: Ledger, db: Database) -> None:
    seeded(ledger)
    why = refused(db, "UPDATE accounts SET balance = -1 WHERE owner = 'ana'")
    assert "negative" in why or "ck_accounts_user_balance_not_negative" in why
    assert ledger.balance("ana", "USD").available == 5_000_000


def test_legs_that_do_not_balance_are_refused(ledger: Ledger, db: Database) -> None:
    seeded(ledger)
    available = account(db, "available")
    tx = "(SELECT id FROM ledger_transactions WHERE idempotency_key = 'k-odd')"
    why = refused(
        db,
        new_transaction("k-odd"),
        f"INSERT INTO ledger_legs (transaction_id, account_id, amount) "
        f"VALUES ({tx}, {available}, 1000000)",
        "UPDATE ledger_transactions SET legs = 1 WHERE idempotency_key = 'k-odd'",
    )
    assert "do not sum to zero" in why


def test_legs_are_append_only(ledger: Ledger, db: Database) -> None:
    seeded(ledger)
    assert "append-only" in refused(db, "UPDATE ledger_legs SET amount = amount + 1")
    assert "append-only" in refused(db, "DELETE FROM ledger_legs")


def test_a_sealed_transaction_takes_no_more_legs(ledger: Ledger, db: Database) -> None:
    """Even a balanced pair added later to a booked transaction is refused, and a seal is
    taken once."""
    seeded(ledger)
    available, pending = account(db, "available"), account(db, "pending")
    first = "(SELECT MIN(id) FROM ledger_transactions)"
    why = refused(
        db,
        f"INSERT INTO ledger_legs (transaction_id, account_id, amount) "
        f"VALUES ({first}, {available}, -1), ({first}, {pending}, 1)",
    )
    assert "sealed" in why
    assert "sealed once" in refused(db, "UPDATE ledger_transactions SET legs = legs + 1")


def test_a_balance_beyond_int64_is_refused_and_nothing_is_written(
    ledger: Ledger, db: Database
) -> None:
    """SQLite would have turned the sum into a REAL; PostgreSQL's BIGINT overflows: both
    refuse, and through the ledger it is an InvalidState, with no earning recorded."""
    old = datetime.now(UTC) - timedelta(days=30)
    ledger.credit_earning(
        event_id="big-1", user_id="ana", currency="USD", amount=INT64_MAX - 10, earned_at=old
    )
    with pytest.raises(InvalidState, match="the ledger database refused the write: .*int64"):
        ledger.credit_earning(
            event_id="big-2", user_id="ana", currency="USD", amount=100, earned_at=old
        )
    assert ledger.balance("ana", "USD").available == INT64_MAX - 10
    with db.engine.connect() as conn:
        kinds = (
            conn.execute(sa.text("SELECT typeof(balance) FROM accounts")).scalars().all()
            if db.dialect.is_sqlite
            else ["integer"]
        )
        events = conn.execute(sa.text("SELECT COUNT(*) FROM earnings")).scalar_one()
    assert set(kinds) == {"integer"} and events == 1
