"""Raw SQL on a registry's database, for tests that set what only time would (recency)."""

from __future__ import annotations

from typing import Any

from service.store.registry import Registry
from service.store.registry.sql import SqlRegistry


def run_sql(registry: Registry, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement (qmark parameters on SQLite, %s on PostgreSQL); its rows, if any.
    It takes its turn like the registry's own calls: SQLite's one connection may be in a
    background job's transaction."""
    assert isinstance(registry, SqlRegistry)
    with registry._begin() as conn:
        result = conn.exec_driver_sql(sql, params)
        return [tuple(row) for row in result] if result.returns_rows else []
