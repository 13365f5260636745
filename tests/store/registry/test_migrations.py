"""The registry's schema history: Alembic migrations on both dialects, and databases made by
earlier releases (the first one's, and the last release's before Alembic) upgraded in place."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from service.store.registry import Priority, Status, connect
from service.store.registry.schema import metadata
from service.store.registry.sql import HEAD, SqlRegistry, alembic_config
from service.store.registry.sqlite import sqlite_engine
from tests.servers import fresh_postgres_database

RELEASE_DUMP = Path(__file__).with_name("data") / "release-fa8cb6e.sql"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request, tmp_path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path / "r.db")
        yield engine
        engine.dispose()
    else:
        for url in fresh_postgres_database():
            engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
            yield engine
            engine.dispose()


def test_head_is_the_newest_revision():
    with sa.create_engine("sqlite://").connect() as conn:
        script = ScriptDirectory.from_config(alembic_config(conn))
    assert script.get_current_head() == HEAD
    assert [r.revision for r in script.walk_revisions()] == [
        "0007",
        "0006",
        "0005",
        "0004",
        "0003",
        "0002",
        "0001",
    ]


def test_the_migrations_build_exactly_the_tables_a_new_database_gets(empty_engine):
    with empty_engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")  # the whole history, not the shortcut
    with empty_engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert MigrationContext.configure(conn).get_current_revision() == HEAD


def test_a_new_database_is_at_head_and_reopening_changes_nothing(empty_engine):
    registry = SqlRegistry(empty_engine)
    assert registry.revision == HEAD
    with empty_engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert SqlRegistry(empty_engine).revision == HEAD


def _open_into(url: str, opened: list[object]) -> None:
    try:
        opened.append(connect(url))
    except BaseException as exc:
        opened.append(exc)


def test_replicas_starting_together_migrate_once():
    for url in fresh_postgres_database():
        opened: list[object] = []
        threads = [threading.Thread(target=_open_into, args=(url, opened)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(opened) == 4 and all(isinstance(r, SqlRegistry) for r in opened), opened
        assert {r.revision for r in opened if isinstance(r, SqlRegistry)} == {HEAD}
        for r in opened:
            assert isinstance(r, SqlRegistry)
            r.close()


_V1_TABLE = """CREATE TABLE articles (
    id TEXT PRIMARY KEY, title TEXT, url TEXT, voice TEXT NOT NULL, rate TEXT NOT NULL,
    pitch TEXT NOT NULL, status TEXT NOT NULL, duration_ms INTEGER, bytes INTEGER,
    error TEXT, sentences TEXT NOT NULL, published_at TEXT, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, published INTEGER NOT NULL DEFAULT 0, category TEXT)"""


def _v1_database(path: Path) -> None:
    """A database as the first release wrote it: no version table, ISO text times, and
    only some of the columns it grew later."""
    db = sqlite3.connect(path)
    db.execute(_V1_TABLE)
    rows = [
        ("a" * 32, "ready", "2024-05-01T09:00:00+08:00", 1),
        ("b" * 32, "synthesizing", "2024-05-01T03:00:00+00:00", 0),
        ("c" * 32, "failed", "2024-05-01T02:00:00", 0),
    ]
    for article_id, status, published_at, published in rows:
        db.execute(
            "INSERT INTO articles (id, title, url, voice, rate, pitch, status, sentences,"
            " published_at, created_at, updated_at, published) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                article_id,
                "旧",
                None,
                "cmn-offline",
                "+0%",
                "+0Hz",
                status,
                json.dumps([[0, "旧文章。"]]),
                published_at,
                "2024-05-01T00:00:00+00:00",
                "2024-05-01T00:00:00+00:00",
                published,
            ),
        )
    db.commit()
    db.close()


def test_a_first_release_database_is_migrated(tmp_path):
    path = tmp_path / "old.db"
    _v1_database(path)
    reg = connect(f"sqlite:///{path}")
    assert isinstance(reg, SqlRegistry) and reg.revision == HEAD
    a, b, c = (reg.get(x * 32) for x in "abc")
    assert a is not None and b is not None and c is not None
    assert a.status is Status.EVICTED and a.published  # its audio was under an old path
    assert a.published_at == datetime(2024, 5, 1, 1, 0, tzinfo=UTC)
    assert b.status is Status.QUEUED and b.work is Priority.BACKGROUND
    assert c.status is Status.FAILED and c.published_at == datetime(2024, 5, 1, 2, tzinfo=UTC)
    assert {r.id for r in reg.unfinished()} == {"a" * 32, "b" * 32}
    reg.close()
    again = connect(f"sqlite:///{path}")
    assert isinstance(again, SqlRegistry) and again.revision == HEAD  # idempotent
    again.close()


def _release_database(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.executescript(RELEASE_DUMP.read_text(encoding="utf-8"))
    return db


def _rows(db: sqlite3.Connection, table: str) -> list[tuple[object, ...]]:
    return sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)


def test_the_last_release_before_alembic_upgrades_in_place_with_nothing_lost(tmp_path):
    path = tmp_path / "langdu.db"
    before = _release_database(path)
    articles, blobs = _rows(before, "articles"), _rows(before, "blobs")
    before.close()
    assert len(articles) == 5 and len(blobs) > 10

    reg = connect(f"sqlite:///{path}")
    assert isinstance(reg, SqlRegistry) and reg.revision == HEAD
    reg.close()
    after = sqlite3.connect(path)
    assert _rows(after, "articles") == articles  # every column of every row, as it was
    assert _rows(after, "blobs") == blobs
    tables = {r[0] for r in after.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    expected = {
        "articles",
        "blobs",
        "deployments",
        "sources",
        "source_items",
        "lexicon",
        "lexicon_revision",
        "listening_events",
        "listening_sessions",
        "listening_daily",
        "listening_rollup",
        "alembic_version",
    }
    assert tables == expected  # no schema_version
    after.close()

    reg = connect(f"sqlite:///{path}")
    by_title = {r.title: r for r in (reg.get(str(row[0])) for row in articles) if r}
    one, two, three, four, five = (by_title[t] for t in "一二三四五")
    assert one.status is Status.READY and one.published and one.category == "news"
    assert one.episode_rendering == one.rendering and one.episode_bytes
    assert one.published_at == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert two.degraded == "offline-a" and two.upgrade_at is not None
    assert reg.next_upgrade() == two.upgrade_at
    assert three.url == "https://example.com/3"
    assert four.status is Status.FAILED and four.error and "全坏" in four.error
    assert five.status is Status.SYNTHESIZING and five.work is Priority.LISTENER
    assert [r.id for r in reg.unfinished()] == [five.id]  # the interrupted reading resumes
    for key, size, _group, _evictable, _used, digest in blobs:
        assert reg.blob_digest(str(key)) == (size, digest)
    reg.close()


def _schema(db: sqlite3.Connection) -> dict[str, list[tuple[str, bool, bool]]]:
    """Each table's columns as (name, not null, primary key): what the data depends on (a
    key is not null either way; SQLite only enforces it when the table says so)."""
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    return {
        t: [(c[1], bool(c[3] or c[5]), bool(c[5])) for c in db.execute(f"PRAGMA table_info({t})")]
        for t in tables
        if t not in ("alembic_version", "schema_version")
    }


def test_todays_tables_hold_the_same_columns_as_the_last_release(tmp_path):
    """A database the release would have made is this one minus Alembic's bookkeeping."""
    release = _release_database(tmp_path / "release.db")
    connect(f"sqlite:///{tmp_path / 'today.db'}").close()
    today = sqlite3.connect(tmp_path / "today.db")
    now, then = _schema(today), _schema(release)
    assert {t: now[t] for t in then} == then
    # added since: deployments (revision 0004), sources and their items (0005), the
    # lexicon and its revision (0006), listening analytics (0007)
    assert set(now) - set(then) == {
        "deployments",
        "sources",
        "source_items",
        "lexicon",
        "lexicon_revision",
        "listening_events",
        "listening_sessions",
        "listening_daily",
        "listening_rollup",
    }
    indexes = "SELECT name FROM sqlite_master WHERE type='index' AND name NOT LIKE 'sqlite_%'"
    added = [  # (0006), (0007)
        ("source_items_article",),
        ("listening_events_received",),
        ("listening_sessions_last",),
        ("listening_daily_day",),
    ]
    assert sorted(today.execute(indexes)) == sorted([*release.execute(indexes), *added])


def as_release_database(path: Path) -> None:
    """Turn today's SQLite registry into the form the release before Alembic left: its
    version table at 3 instead of Alembic's (the tables are the same, as tested above)."""
    db = sqlite3.connect(path)
    db.execute("DROP TABLE alembic_version")
    for table in (
        "deployments",
        "sources",
        "source_items",
        "lexicon",
        "lexicon_revision",
        "listening_events",
        "listening_sessions",
        "listening_daily",
        "listening_rollup",
    ):
        db.execute(f"DROP TABLE {table}")
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (3)")
    db.commit()
    assert re.search(r"schema_version", RELEASE_DUMP.read_text(encoding="utf-8"))
    db.close()
