"""One Alembic revision per module, oldest first (v0001 is the first release's table)."""
