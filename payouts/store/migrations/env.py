"""Alembic's environment: migrations run on the connection `payouts.store.migrate` hands in
(it holds the lock that keeps two processes from migrating at once)."""

from alembic import context
from sqlmodel import SQLModel

from payouts.store import tables  # noqa: F401  (the models the migrations must produce)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
