"""Bank files that cannot go or cannot be read are quarantined, with the reason.

A batch whose pain.001 fails the schema is `quarantined` (its reason kept); a report file
the pipeline cannot read is recorded `quarantined` instead of `applied`. Neither blocks
the batches and reports after it.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bank_batches") as batch:
        batch.add_column(sa.Column("reason", sa.String(500), nullable=True))
    with op.batch_alter_table("bank_report_files") as batch:
        batch.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default="applied")
        )
        batch.add_column(sa.Column("reason", sa.String(500), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("the ledger only moves forward; restore a backup to go back")
