"""The SQLite registry: statuses, renderings, scheduled upgrades, migrations, UTC instants."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from service.errors import ConfigError
from service.store.registry import ArticleRecord, Finished, Priority, Status, connect
from service.store.registry.sqlite import MIGRATIONS, SqliteRegistry


def _record(article_id: str = "c" * 32, **kw: Any) -> ArticleRecord:
    return ArticleRecord(
        id=article_id,
        title="标题",
        url=None,
        voice="cmn-offline",
        rate="+0%",
        pitch="+0Hz",
        sentences=((0, "标题"), (1, "正文。")),
        **kw,
    )


def test_adds_once_and_follows_an_article_through_its_life(tmp_path):
    reg = connect(f"sqlite:///{tmp_path / 'r.db'}")
    rec, created = reg.add(_record())
    assert created and rec.status is Status.QUEUED and rec.created_at.tzinfo is UTC
    assert reg.add(_record())[1] is False
    reg.set_work(rec.id, Priority.LISTENER)
    reg.start(rec.id)
    got = reg.get(rec.id)
    assert got is not None and (got.status, got.work) == (Status.SYNTHESIZING, Priority.LISTENER)
    reg.finish(rec.id, Finished(rendering="r1", degraded=None, duration_ms=1234, size=999))
    got = reg.get(rec.id)
    assert got is not None
    assert (got.status, got.rendering, got.work, got.duration_ms) == (
        Status.READY,
        "r1",
        None,
        1234,
    )
    reg.start(rec.id)  # a re-render: the stored audio stays ready
    reg.fail(rec.id, "engine down")
    got = reg.get(rec.id)
    assert got is not None and got.status is Status.READY and got.error == "engine down"
    reg.forget_rendering(rec.id, "r0")  # not the current one: nothing changes
    assert reg.get(rec.id).status is Status.READY  # type: ignore[union-attr]
    reg.forget_rendering(rec.id, "r1")
    got = reg.get(rec.id)
    assert got is not None and got.status is Status.EVICTED and got.rendering is None
    assert reg.get("d" * 32) is None
    reg.close()


def test_upgrades_are_scheduled_in_the_database(tmp_path):
    reg = SqliteRegistry(tmp_path / "r.db")
    reg.add(_record())
    soon = datetime.now(UTC) + timedelta(seconds=5)
    reg.finish(
        "c" * 32,
        Finished(
            rendering="r1-offline",
            degraded="offline",
            duration_ms=1,
            size=1,
            upgrade_at=soon,
            upgrade_delay_s=5,
        ),
    )
    reg.close()
    reg = SqliteRegistry(tmp_path / "r.db")
    assert reg.next_upgrade() == soon.replace(microsecond=soon.microsecond // 1000 * 1000)
    assert reg.upgrades_due(datetime.now(UTC)) == []
    [due] = reg.upgrades_due(soon + timedelta(seconds=1))
    assert due.degraded == "offline" and due.upgrade_delay_s == 5
    reg.schedule_upgrade(due.id, None, None)
    assert reg.next_upgrade() is None


def test_unfinished_lists_interrupted_work_most_urgent_first(tmp_path):
    reg = SqliteRegistry(tmp_path / "r.db")
    for i, prio in enumerate([Priority.UPGRADE, None, Priority.LISTENER]):
        rec, _ = reg.add(_record(f"{i:032x}"))
        reg.finish(rec.id, Finished(rendering="r", degraded=None, duration_ms=1, size=1))
        reg.set_work(rec.id, prio)
    published, _ = reg.add(_record("e" * 32))
    reg.finish(published.id, Finished(rendering="r2", degraded=None, duration_ms=1, size=1))
    reg.publish(published.id, category=None)
    reg.set_episode(published.id, rendering="r1", size=1, duration_ms=1)  # made from older audio
    ids = [r.id for r in reg.unfinished()]
    assert ids == [f"{2:032x}", "e" * 32, f"{0:032x}"]


def test_feed_sorts_instants_not_strings(tmp_path):
    reg = SqliteRegistry(tmp_path / "r.db")
    shanghai = timezone(timedelta(hours=8))
    # 09:00+08:00 is 01:00 UTC: earlier than 03:00Z, though "09" sorts after "03" as text.
    early = datetime(2024, 5, 1, 9, 0, tzinfo=shanghai)
    late = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
    for article_id, when in (("a" * 32, early), ("b" * 32, late)):
        reg.add(_record(article_id, published_at=when))
        reg.publish(article_id, category=None)
        reg.set_episode(article_id, rendering="r", size=1, duration_ms=1)
    assert [r.id for r in reg.feed(category=None, limit=10)] == ["b" * 32, "a" * 32]
    assert reg.get("a" * 32).published_at == early  # type: ignore[union-attr]


def _v1_database(path):
    """A database as the first release wrote it (no schema_version, ISO text times)."""
    db = sqlite3.connect(path)
    MIGRATIONS[0](db)
    rows = [
        ("a" * 32, "ready", "2024-05-01T09:00:00+08:00", 1),
        ("b" * 32, "synthesizing", "2024-05-01T03:00:00+00:00", 0),
        ("c" * 32, "failed", "2024-05-01T02:00:00", 0),
    ]
    for article_id, status, published_at, published in rows:
        db.execute(
            "INSERT INTO articles (id, title, url, voice, rate, pitch, status, sentences,"
            " published_at, created_at, updated_at, published, episode_bytes)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
                100 if published else None,
            ),
        )
    db.commit()
    db.close()


def test_a_first_release_database_is_migrated(tmp_path):
    path = tmp_path / "old.db"
    _v1_database(path)
    reg = SqliteRegistry(path)
    assert reg.version == len(MIGRATIONS)
    a, b, c = (reg.get(x * 32) for x in "abc")
    assert a is not None and b is not None and c is not None
    assert a.status is Status.EVICTED and a.published  # its audio was under an old path
    assert a.published_at == datetime(2024, 5, 1, 1, 0, tzinfo=UTC)
    assert b.status is Status.QUEUED and b.work is Priority.BACKGROUND
    assert c.status is Status.FAILED and c.published_at == datetime(2024, 5, 1, 2, tzinfo=UTC)
    assert {r.id for r in reg.unfinished()} == {"a" * 32, "b" * 32}
    reg.close()
    assert SqliteRegistry(path).version == len(MIGRATIONS)  # idempotent


def test_only_known_schemes_are_accepted():
    with pytest.raises(ConfigError, match="unsupported database URL postgresql"):
        connect("postgresql://localhost/langdu")
    with pytest.raises(ConfigError, match="malformed"):
        connect("no scheme")
