"""Alembic's entry: migrate the connection `migrate()` hands over, in its transaction."""

from __future__ import annotations

from alembic import context

from service.store.registry.schema import metadata

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters a table by copying it
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
