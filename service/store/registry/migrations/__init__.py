"""The registry's schema history as Alembic migrations (`versions/`), run by
`service.store.registry.sql.migrate` at start-up: one history for SQLite and PostgreSQL.

It may import `service.store.registry.schema` (the tables it builds) and nothing above.
"""
