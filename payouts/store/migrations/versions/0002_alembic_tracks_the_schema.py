"""Alembic's version table replaces release 0.1's own `schema_version` marker.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("schema_version")


def downgrade() -> None:
    raise NotImplementedError("the ledger only moves forward; restore a backup to go back")
