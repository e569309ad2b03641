"""Alembic environment: runs migrations on the connection `store.migrate` hands over.

Configured programmatically (no alembic.ini): `config.attributes["connection"]` is an open
SQLAlchemy connection already inside the transaction that holds the migration lock.
"""

from __future__ import annotations

from alembic import context

from conveyor.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
