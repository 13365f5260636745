"""The registry on PostgreSQL (the cluster configuration), through psycopg 3.

Every replica and worker shares it; the migrations run once, under an advisory lock.
Needs the `cluster` extra: `pip install 'langdu[cluster]'`.
"""

from __future__ import annotations

import importlib.util

import sqlalchemy as sa

from service.errors import BackendUnavailableError, ConfigError
from service.store.registry.sql import SqlRegistry


def postgresql_engine(url: str, *, pool_size: int = 5) -> sa.Engine:
    """An engine over psycopg 3 for a postgresql://user[:password]@host[:port]/db URL.

    Raises:
        ConfigError: psycopg is not installed, or the URL is malformed.
    """
    if importlib.util.find_spec("psycopg") is None:
        raise ConfigError("a postgresql:// database needs psycopg: pip install 'langdu[cluster]'")
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"malformed database URL: {exc}") from None
    if not parsed.database:
        raise ConfigError("a postgresql:// database URL names its database: .../langdu")
    return sa.create_engine(
        parsed.set(drivername="postgresql+psycopg"),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,  # a connection the server dropped is replaced, not used
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
    )


def connect(url: str) -> SqlRegistry:
    """postgresql://user[:password]@host[:port]/database.

    Raises:
        ConfigError: psycopg missing, or a malformed URL.
        BackendUnavailableError: the server cannot be reached.
    """
    engine = postgresql_engine(url)
    try:
        return SqlRegistry(engine)
    except BackendUnavailableError:
        engine.dispose()
        raise
