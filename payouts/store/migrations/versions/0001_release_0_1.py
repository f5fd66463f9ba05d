"""The schema of release 0.1, as it created its tables on first start.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _text(length: int | None = None) -> sa.String:
    return sa.String(length)


def _time() -> sa.BigInteger:
    return sa.BigInteger()  # microseconds since the epoch (UTC)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", _text(128), nullable=False),
        sa.Column("kind", _text(32), nullable=False),
        sa.Column("currency", _text(3), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner", "kind", "currency", name="uq_account"),
    )
    op.create_table(
        "bank_batches",
        sa.Column("id", _text(35), nullable=False),
        sa.Column("currency", _text(3), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("file_name", _text(200), nullable=False),
        sa.Column("status", _text(16), nullable=False),
        sa.Column("unbatched_cost", sa.BigInteger(), nullable=False),
        sa.Column("batch_cost", sa.BigInteger(), nullable=False),
        sa.Column("fee_saved", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_bank_batches_created_at", "bank_batches", ["created_at"])
    op.create_table(
        "bank_items",
        sa.Column("end_to_end_id", _text(35), nullable=False),
        sa.Column("workflow_id", _text(200), nullable=False),
        sa.Column("request_id", _text(100), nullable=False),
        sa.Column("user_id", _text(128), nullable=False),
        sa.Column("currency", _text(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("iban", _text(34), nullable=False),
        sa.Column("bic", _text(11), nullable=True),
        sa.Column("holder_name", _text(140), nullable=False),
        sa.Column("status", _text(16), nullable=False),
        sa.Column("batch_id", _text(35), nullable=True),
        sa.Column("reason_code", _text(8), nullable=True),
        sa.Column("reason", _text(200), nullable=True),
        sa.Column("queued_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("signalled", _text(16), nullable=False),
        sa.PrimaryKeyConstraint("end_to_end_id"),
        sa.UniqueConstraint("workflow_id"),
    )
    op.create_index("ix_bank_items_batch_id", "bank_items", ["batch_id"])
    op.create_index("ix_bank_items_status", "bank_items", ["status", "currency", "queued_at"])
    op.create_table(
        "bank_report_files",
        sa.Column("name", _text(200), nullable=False),
        sa.Column("kind", _text(16), nullable=False),
        sa.Column("message_id", _text(35), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("received_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "earnings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", _text(200), nullable=False),
        sa.Column("user_id", _text(128), nullable=False),
        sa.Column("currency", _text(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("earned_at", _time(), nullable=False),
        sa.Column("matures_at", _time(), nullable=False),
        sa.Column("credit_tx_id", sa.Integer(), nullable=False),
        sa.Column("mature_tx_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index(
        "ix_earnings_due",
        "earnings",
        ["matures_at"],
        sqlite_where=sa.text("mature_tx_id IS NULL"),
        postgresql_where=sa.text("mature_tx_id IS NULL"),
    )
    op.create_index("ix_earnings_user_time", "earnings", ["user_id", "earned_at"])
    op.create_table(
        "gift_cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", _text(100), nullable=False),
        sa.Column("user_id", _text(128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("currency", _text(3), nullable=False),
        sa.Column("face_value", sa.BigInteger(), nullable=False),
        sa.Column("provider_ref", _text(64), nullable=False),
        sa.Column("code_ciphertext", _text(), nullable=False),
        sa.Column("last4", _text(4), nullable=False),
        sa.Column("issued_at", _time(), nullable=False),
        sa.Column("revealed_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "seq", name="uq_gift_card"),
    )
    op.create_index("ix_gift_cards_request_id", "gift_cards", ["request_id"])
    op.create_table(
        "holds",
        sa.Column("id", _text(200), nullable=False),
        sa.Column("user_id", _text(128), nullable=False),
        sa.Column("currency", _text(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", _text(16), nullable=False),
        sa.Column("gross", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("reason", _text(500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_holds_user_time", "holds", ["user_id", "created_at"])
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", _text(200), nullable=False),
        sa.Column("kind", _text(32), nullable=False),
        sa.Column("content_hash", _text(64), nullable=False),
        sa.Column("user_id", _text(128), nullable=True),
        sa.Column("hold_id", _text(200), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("result_json", _text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index("ix_ledger_transactions_hold_id", "ledger_transactions", ["hold_id"])
    op.create_index("ix_ledger_transactions_user_id", "ledger_transactions", ["user_id"])
    op.create_table(
        "notifications",
        sa.Column("event_id", _text(200), nullable=False),
        sa.Column("request_id", _text(100), nullable=False),
        sa.Column("user_id", _text(128), nullable=False),
        sa.Column("stage", _text(32), nullable=False),
        sa.Column("payload_json", _text(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("delivered_at", _time(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _time(), nullable=True),
        sa.Column("last_error", _text(500), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_notifications_request_id", "notifications", ["request_id"])
    op.create_table(
        "payout_destinations",
        sa.Column("user_id", _text(128), nullable=False),
        sa.Column("fingerprint", _text(64), nullable=False),
        sa.Column("first_used_at", _time(), nullable=False),
        sa.Column("last_used_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "fingerprint"),
    )
    op.create_index("ix_payout_destinations_fingerprint", "payout_destinations", ["fingerprint"])
    op.create_table(
        "review_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", _text(200), nullable=False),
        sa.Column("request_id", _text(100), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.Column("reviewer", _text(64), nullable=False),
        sa.Column("decision", _text(16), nullable=False),
        sa.Column("reason", _text(500), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("refusal", _text(200), nullable=False),
        sa.Column("via", _text(16), nullable=False),
        sa.Column("client", _text(64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workflow_id", "seq", name="uq_review_audit"),
    )
    op.create_index("ix_review_audit_at", "review_audit", ["at"])
    op.create_index("ix_review_audit_workflow_id", "review_audit", ["workflow_id"])
    op.create_table(
        "schema_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO schema_version (id, version) VALUES (1, 1)")
    op.create_table(
        "webhook_events",
        sa.Column("event_id", _text(100), nullable=False),
        sa.Column("source", _text(32), nullable=False),
        sa.Column("reference", _text(200), nullable=False),
        sa.Column("kind", _text(64), nullable=False),
        sa.Column("received_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_table(
        "ledger_legs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["transaction_id"], ["ledger_transactions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ledger_legs_account_id", "ledger_legs", ["account_id"])
    op.create_index("ix_ledger_legs_transaction_id", "ledger_legs", ["transaction_id"])


def downgrade() -> None:
    raise NotImplementedError("the ledger only moves forward; restore a backup to go back")
