"""The registry in one SQLite file (the embedded default): WAL, one connection per process."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from service.store.registry.sql import SqlRegistry


def sqlite_engine(path: Path) -> sa.Engine:
    """An engine over one SQLite file: a single connection (calls take turns), each
    transaction `BEGIN IMMEDIATE` so a writer never has to upgrade a read lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        f"sqlite:///{path}",
        poolclass=StaticPool,
        connect_args={"check_same_thread": False, "isolation_level": None},
    )

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _: object) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class SqliteRegistry(SqlRegistry):
    """The registry in the SQLite file at `path`."""

    def __init__(self, path: Path) -> None:
        super().__init__(sqlite_engine(path), serialize=True)


def connect(url: str) -> SqliteRegistry:
    """sqlite:///absolute/path.db (or sqlite:///relative.db from the working directory)."""
    return SqliteRegistry(Path(unquote(urlparse(url).path)))
