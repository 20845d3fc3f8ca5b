"""Alembic environment: migrations run on the connection that storage.sql.migrate hands over."""

from __future__ import annotations

from alembic import context

from mdmserver.storage.sql import dialect
from mdmserver.storage.sql.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=dialect.is_sqlite(connection),
)
with context.begin_transaction():
    context.run_migrations()
