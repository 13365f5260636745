"""The real servers of the cluster tests, found through the environment that
`scripts/servers.py` sets: a fresh PostgreSQL database, Redis database or S3 prefix per test.

Without the servers these fixtures skip (and under CI=1 a skip fails: `.ci/run` starts them).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest


def server_env(name: str) -> str:
    """A server's address from the environment, or a skip naming what is missing."""
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set: run under `python3 scripts/servers.py run -- ...`")
    return value


def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (dropped afterwards); yields its URL."""
    import sqlalchemy as sa

    admin_url = server_env("LANGDU_TEST_POSTGRES_URL")
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def s3_environment(monkeypatch: pytest.MonkeyPatch) -> str:
    """The standard AWS variables pointed at the test S3 server; returns a fresh
    s3://bucket/prefix URL under which nothing is stored yet."""
    endpoint = server_env("LANGDU_TEST_S3_ENDPOINT")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ["LANGDU_TEST_S3_KEY"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ["LANGDU_TEST_S3_SECRET"])
    return f"s3://{os.environ['LANGDU_TEST_S3_BUCKET']}/t-{uuid.uuid4().hex[:16]}"


def redis_url() -> str:
    """The test Redis server's URL (one database, shared: keys carry a per-test prefix)."""
    url = server_env("LANGDU_TEST_REDIS_URL")
    assert urlparse(url).hostname == "127.0.0.1"
    return url
