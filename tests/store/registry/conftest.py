"""The registry's backends for its tests: SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'r.db'}"
    else:
        yield from fresh_postgres_database()
