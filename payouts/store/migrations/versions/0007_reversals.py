"""Reversals: an earning can be taken back (in part), and what a payee owes is an account
of its own.

- `earnings.reversed`: what reversals took back of an earning; never below 0 nor above
  its amount (PostgreSQL: a CHECK constraint; SQLite: a trigger on update, so the big
  table is not rebuilt; `Ledger.audit()` checks every row on both).
- `earning_reversals`: one row per reversal, keyed by the platform's reversal id, with
  where its money came from (pending, available, owed) and the amount asked for;
- `reversal_requests`: the outcome (applied or refused) of every signed reversal the worker
  decided, so that running one again answers its first outcome.
- An `owed` account (kind `owed`, per payee and currency) holds what the payee owes as a
  balance at or below zero; the database refuses a positive one (inserted or updated).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

REVERSED_OUT_OF_BOUNDS = "NEW.reversed < 0 OR NEW.reversed > NEW.amount"
OWED_ABOVE_ZERO = "NEW.kind = 'owed' AND NEW.balance > 0"
# (earnings: on update only. A BEFORE INSERT trigger made SQLite's bulk insert of a million
# earnings many times slower, and the ledger inserts `reversed` as 0; `Ledger.audit()`
# checks every row's bounds.)
SQLITE = [
    f"""CREATE TRIGGER earnings_reversed_bounds BEFORE UPDATE OF reversed ON earnings
    FOR EACH ROW WHEN {REVERSED_OUT_OF_BOUNDS}
    BEGIN SELECT RAISE(ABORT, 'ledger invariant: reversed beyond the earning'); END"""
] + [
    f"""CREATE TRIGGER accounts_owed_not_positive{name} BEFORE {event} ON accounts
    FOR EACH ROW WHEN {OWED_ABOVE_ZERO}
    BEGIN SELECT RAISE(ABORT, 'ledger invariant: an owed balance above zero'); END"""
    for name, event in (("", "UPDATE OF balance"), ("_new", "INSERT"))
]

# NOT VALID, then VALIDATE: the check of existing rows takes no lock that stops writers
# (a big earnings table is not locked for the length of a scan)
POSTGRESQL = [
    """ALTER TABLE earnings ADD CONSTRAINT ck_earnings_reversed_bounds
    CHECK (reversed >= 0 AND reversed <= amount) NOT VALID""",
    "ALTER TABLE earnings VALIDATE CONSTRAINT ck_earnings_reversed_bounds",
    """ALTER TABLE accounts ADD CONSTRAINT ck_accounts_owed_not_positive
    CHECK (kind <> 'owed' OR balance <= 0) NOT VALID""",
    "ALTER TABLE accounts VALIDATE CONSTRAINT ck_accounts_owed_not_positive",
]


def upgrade() -> None:
    op.add_column(
        "earnings", sa.Column("reversed", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.create_table(
        "earning_reversals",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("from_pending", sa.BigInteger(), nullable=False),
        sa.Column("from_available", sa.BigInteger(), nullable=False),
        sa.Column("owed", sa.BigInteger(), nullable=False),
        sa.Column("owed_after", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("requested", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "reversal_requests",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("refusal", sa.String(500), nullable=False),
        sa.Column("decided_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_earning_reversals_event_id", "earning_reversals", ["event_id"])
    op.create_index(
        "ix_earning_reversals_user_time", "earning_reversals", ["user_id", "created_at"]
    )
    for statement in SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the ledger only moves forward; restore a backup to go back")
