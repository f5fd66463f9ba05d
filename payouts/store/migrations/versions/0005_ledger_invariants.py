"""The database enforces the ledger's invariants too, not only the code.

- A user's `pending`, `available` and `held` balances are never negative (PostgreSQL: a
  CHECK constraint; SQLite: a trigger).
- A balance beyond int64 is refused (PostgreSQL's BIGINT does so itself; SQLite would
  silently turn the sum into a REAL: a trigger refuses any balance or leg that is not an
  INTEGER).
- Legs are append-only (no UPDATE, no DELETE), and a transaction's legs sum to zero per
  currency. `Books.post` seals each transaction with its leg count
  (`ledger_transactions.legs`) once its legs are written; a seal is taken once and only
  if it counts the legs, and no leg is added to a sealed transaction. The balance itself
  is checked on PostgreSQL by a statement trigger over every transaction an INSERT of
  legs touched (our legs are written in one statement), on SQLite (no statement
  triggers) when the transaction is sealed.

The upgrade first checks the existing rows and refuses, naming them, if any breaks a rule.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

USER_KINDS = "('pending', 'available', 'held')"
UNBALANCED = (
    "SELECT l.transaction_id, a.currency, SUM(l.amount) FROM ledger_legs l "
    "JOIN accounts a ON a.id = l.account_id {where} GROUP BY l.transaction_id, a.currency "
    "HAVING SUM(l.amount) <> 0"
)

SQLITE = [
    f"""CREATE TRIGGER accounts_invariants BEFORE UPDATE OF balance ON accounts
    FOR EACH ROW BEGIN
        SELECT RAISE(ABORT, 'ledger invariant: a balance beyond int64')
        WHERE typeof(NEW.balance) <> 'integer';
        SELECT RAISE(ABORT, 'ledger invariant: a negative user balance')
        WHERE NEW.kind IN {USER_KINDS} AND NEW.balance < 0;
    END""",
    f"""CREATE TRIGGER accounts_invariants_new BEFORE INSERT ON accounts
    FOR EACH ROW WHEN typeof(NEW.balance) <> 'integer'
        OR (NEW.kind IN {USER_KINDS} AND NEW.balance < 0)
    BEGIN SELECT RAISE(ABORT, 'ledger invariant: a new account with a bad balance'); END""",
    """CREATE TRIGGER ledger_legs_insert BEFORE INSERT ON ledger_legs
    FOR EACH ROW BEGIN
        SELECT RAISE(ABORT, 'ledger invariant: a leg amount beyond int64')
        WHERE typeof(NEW.amount) <> 'integer';
        SELECT RAISE(ABORT, 'ledger invariant: the transaction is sealed')
        WHERE (SELECT legs FROM ledger_transactions WHERE id = NEW.transaction_id) <> 0;
    END""",
    """CREATE TRIGGER ledger_legs_no_update BEFORE UPDATE ON ledger_legs
    BEGIN SELECT RAISE(ABORT, 'ledger invariant: legs are append-only'); END""",
    """CREATE TRIGGER ledger_legs_no_delete BEFORE DELETE ON ledger_legs
    BEGIN SELECT RAISE(ABORT, 'ledger invariant: legs are append-only'); END""",
    f"""CREATE TRIGGER ledger_transactions_seal BEFORE UPDATE OF legs ON ledger_transactions
    FOR EACH ROW BEGIN
        SELECT RAISE(ABORT, 'ledger invariant: a transaction is sealed once')
        WHERE OLD.legs <> 0;
        SELECT RAISE(ABORT, 'ledger invariant: the seal does not count the legs written')
        WHERE NEW.legs <> (SELECT COUNT(*) FROM ledger_legs WHERE transaction_id = NEW.id);
        SELECT RAISE(ABORT, 'ledger invariant: legs that do not sum to zero')
        WHERE EXISTS ({UNBALANCED.format(where="WHERE l.transaction_id = NEW.id")});
    END""",
]

POSTGRESQL = [
    f"""ALTER TABLE accounts ADD CONSTRAINT ck_accounts_user_balance_not_negative
    CHECK (kind NOT IN {USER_KINDS} OR balance >= 0)""",
    """CREATE FUNCTION ledger_legs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'ledger invariant: legs are append-only'
            USING ERRCODE = 'integrity_constraint_violation';
    END $$""",
    """CREATE TRIGGER ledger_legs_append_only BEFORE UPDATE OR DELETE ON ledger_legs
    FOR EACH ROW EXECUTE FUNCTION ledger_legs_append_only()""",
    f"""CREATE FUNCTION ledger_legs_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE bad record;
    BEGIN
        SELECT * INTO bad FROM ({
        UNBALANCED.format(
            where="WHERE l.transaction_id IN (SELECT DISTINCT transaction_id FROM new_legs)"
        )
    }) AS unbalanced LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'ledger invariant: legs that do not sum to zero'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF EXISTS (SELECT 1 FROM ledger_transactions WHERE legs <> 0
                   AND id IN (SELECT DISTINCT transaction_id FROM new_legs)) THEN
            RAISE EXCEPTION 'ledger invariant: the transaction is sealed'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER ledger_legs_balanced AFTER INSERT ON ledger_legs
    REFERENCING NEW TABLE AS new_legs
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_legs_balanced()""",
    """CREATE FUNCTION ledger_transactions_seal() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.legs <> 0 THEN
            RAISE EXCEPTION 'ledger invariant: a transaction is sealed once'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF NEW.legs <> (SELECT COUNT(*) FROM ledger_legs WHERE transaction_id = NEW.id) THEN
            RAISE EXCEPTION 'ledger invariant: the seal does not count the legs written'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER ledger_transactions_seal BEFORE UPDATE OF legs ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_transactions_seal()""",
]


def upgrade() -> None:
    bind = op.get_bind()
    negative = bind.execute(
        sa.text(f"SELECT owner, kind, currency FROM accounts WHERE kind IN {USER_KINDS} "
                "AND balance < 0 ORDER BY 1, 2, 3 LIMIT 5")
    ).all()  # fmt: skip
    unbalanced = bind.execute(sa.text(UNBALANCED.format(where="") + " LIMIT 5")).all()
    if negative or unbalanced:
        raise RuntimeError(
            "the ledger breaks its own invariants; fix these rows before upgrading: "
            f"negative user balances {negative}, unbalanced transactions {unbalanced}"
        )
    with op.batch_alter_table("ledger_transactions") as batch:
        batch.add_column(sa.Column("legs", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE ledger_transactions SET legs = "
        "(SELECT COUNT(*) FROM ledger_legs WHERE transaction_id = ledger_transactions.id)"
    )
    for statement in SQLITE if bind.dialect.name == "sqlite" else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the ledger only moves forward; restore a backup to go back")
