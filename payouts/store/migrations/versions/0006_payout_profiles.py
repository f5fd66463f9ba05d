"""Payout profiles: saved destinations (sealed), and standing instructions to pay out
automatically.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payout_profiles",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("sealed", sa.String(), nullable=False),
        sa.Column("shown", sa.String(80), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.BigInteger(), nullable=False),
        sa.Column("cooloff_until", sa.BigInteger(), nullable=False),
        sa.Column("verification", sa.String(16), nullable=True),
        sa.Column("verified_name", sa.String(140), nullable=True),
        sa.Column("verified_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_payout_profiles_user_id", "payout_profiles", ["user_id"])
    op.create_index("ix_payout_profiles_fingerprint", "payout_profiles", ["fingerprint"])
    active_default = sa.text("is_default AND status = 'active'")
    op.create_index(
        "ux_payout_profiles_default",
        "payout_profiles",
        ["user_id", "method"],
        unique=True,
        sqlite_where=active_default,
        postgresql_where=active_default,
    )
    op.create_table(
        "auto_cashouts",
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("destination_id", sa.String(32), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=True),
        sa.Column("every", sa.String(16), nullable=True),
        sa.Column("minimum", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "currency"),
    )


def downgrade() -> None:
    raise NotImplementedError("the ledger only moves forward; restore a backup to go back")
