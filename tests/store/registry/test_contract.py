"""The registry's contract, run against every backend: SQLite (embedded) and PostgreSQL.

Statuses, renderings, scheduled upgrades, the feed's order, the blob index; UTC instants.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from service.errors import ConfigError
from service.store.registry import (
    ArticleRecord,
    Finished,
    Priority,
    Registry,
    SourceRecord,
    Status,
    connect,
)


@pytest.fixture
def reg(db_url) -> Iterator[Registry]:
    registry = connect(db_url)
    yield registry
    registry.close()


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


def test_adds_once_and_follows_an_article_through_its_life(reg):
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
    assert reg.get(rec.id).status is Status.READY
    reg.forget_rendering(rec.id, "r1")
    got = reg.get(rec.id)
    assert got is not None and got.status is Status.EVICTED and got.rendering is None
    assert reg.get("d" * 32) is None


def test_upgrades_are_scheduled_in_the_database(db_url):
    reg = connect(db_url)
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
    reg = connect(db_url)  # another process (or replica) sees the same schedule
    assert reg.next_upgrade() == soon.replace(microsecond=soon.microsecond // 1000 * 1000)
    assert reg.upgrades_due(datetime.now(UTC)) == []
    [due] = reg.upgrades_due(soon + timedelta(seconds=1))
    assert due.degraded == "offline" and due.upgrade_delay_s == 5
    reg.schedule_upgrade(due.id, None, None)
    assert reg.next_upgrade() is None
    reg.close()


def test_unfinished_lists_interrupted_work_most_urgent_first(reg):
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


def test_feed_sorts_instants_not_strings(reg):
    shanghai = timezone(timedelta(hours=8))
    # 09:00+08:00 is 01:00 UTC: earlier than 03:00Z, though "09" sorts after "03" as text.
    early = datetime(2024, 5, 1, 9, 0, tzinfo=shanghai)
    late = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
    for article_id, when in (("a" * 32, early), ("b" * 32, late)):
        reg.add(_record(article_id, published_at=when))
        reg.publish(article_id, category=None)
        reg.set_episode(article_id, rendering="r", size=1, duration_ms=1)
    assert [r.id for r in reg.feed(category=None, limit=10)] == ["b" * 32, "a" * 32]
    assert reg.get("a" * 32).published_at == early


def test_only_known_schemes_are_accepted():
    with pytest.raises(ConfigError, match="unsupported database URL mysql"):
        connect("mysql://localhost/langdu")
    with pytest.raises(ConfigError, match="malformed"):
        connect("no scheme")


def test_the_blob_index_groups_recency_sizes_and_digests(reg):
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    reg.blob_added("renders/a/r1.mp3", size=100, group="renders/a/r1", evictable=True, sha256="1")
    reg.blob_added("renders/a/r1.json", size=10, group="renders/a/r1", evictable=True, sha256="2")
    reg.blob_added("parts/ab/ab.part", size=5, group="parts/ab/ab.part", evictable=True)
    reg.blob_added("episodes/a/r1.mp3", size=1000, group="episodes/a/r1", evictable=False)
    assert reg.blob_bytes() == 115  # episodes are not evictable
    reg.blobs_used(["renders/a/r1.mp3"], t0)
    reg.blobs_used(["renders/a/r1.json"], t0)
    groups = reg.least_recent(limit=10)
    assert [g.group for g in groups] == ["renders/a/r1", "parts/ab/ab.part"]
    assert sorted(groups[0].keys) == ["renders/a/r1.json", "renders/a/r1.mp3"]
    assert groups[0].size == 110
    assert reg.least_recent(limit=1) == groups[:1]
    # Replacing a blob updates its length and digest, never its group.
    reg.blob_added("renders/a/r1.mp3", size=120, group="other", evictable=True, sha256="3")
    assert reg.blob_digest("renders/a/r1.mp3") == (120, "3")
    assert reg.blob_digest("parts/ab/ab.part") == (5, None)
    assert reg.blob_digest("nothing") is None
    assert reg.blob_bytes() == 135
    assert reg.blobs_to_scrub("", 10) == [
        ("renders/a/r1.json", 10, "2"),
        ("renders/a/r1.mp3", 120, "3"),
    ]
    assert reg.blobs_to_scrub("renders/a/r1.json", 10) == [("renders/a/r1.mp3", 120, "3")]
    reg.blob_removed(["renders/a/r1.mp3", "renders/a/r1.json"])
    reg.blob_removed([])
    assert [g.group for g in reg.least_recent(limit=10)] == ["parts/ab/ab.part"]
    assert reg.blob_bytes() == 5


def test_instants_keep_their_moment_and_the_first_publication(reg):
    reg.add(_record())
    reg.publish("c" * 32, category="news")
    first = reg.get("c" * 32)
    assert first is not None and first.published and first.category == "news"
    reg.publish("c" * 32, category=None)  # a second publication keeps time and category
    again = reg.get("c" * 32)
    assert again is not None and (again.feed_at, again.category) == (first.feed_at, "news")
    assert again.feed_at is not None and again.feed_at.tzinfo is UTC
    assert reg.feed(category="sport", limit=10) == []
    assert reg.feed(category="news", limit=10) == []  # no episode yet
    reg.set_episode("c" * 32, rendering="r", size=2, duration_ms=3)
    [item] = reg.feed(category="news", limit=10)
    assert (item.episode_rendering, item.episode_bytes, item.episode_ms) == ("r", 2, 3)


def test_a_blob_found_is_indexed_only_if_nobody_indexed_it(reg):
    long_ago = datetime(1971, 1, 1, tzinfo=UTC)
    reg.blob_added("parts/ab/ab.part", size=5, group="parts/ab/ab.part", evictable=True, sha256="d")
    assert not reg.blob_found(
        "parts/ab/ab.part", size=5, group="parts/ab/ab.part", used_at=long_ago
    )
    assert reg.blob_digest("parts/ab/ab.part") == (5, "d")  # the writer's digest stays
    assert reg.blob_found("parts/cd/cd.part", size=7, group="parts/cd/cd.part", used_at=long_ago)
    assert reg.blob_digest("parts/cd/cd.part") == (7, None)
    assert reg.least_recent(limit=1)[0].group == "parts/cd/cd.part"  # found: evicted first


def test_sources_their_polls_and_items(db_url):
    a, b = connect(db_url), connect(db_url)  # two processes of one deployment
    try:
        feed = "https://news.example/rss.xml"
        source, added = a.add_source(SourceRecord("s" * 32, feed, publish=True, voice="v"))
        assert added and source.publish and source.voice == "v" and source.items == 0
        again, added = b.add_source(SourceRecord("t" * 32, feed))
        assert not added and again.id == "s" * 32, "one source per feed URL"
        now = datetime.now(UTC)
        due = a.sources_due(now + timedelta(seconds=1))
        assert [s.id for s in due] == [source.id]
        # Exactly one process takes a due poll.
        until = now + timedelta(minutes=10)
        taken = [r.claim_poll(source.id, due[0].next_poll_at, until) for r in (a, b, a)]
        assert taken == [True, False, False]
        assert a.sources_due(now + timedelta(minutes=5)) == []
        a.poll_done(
            source.id,
            etag='"v1"',
            last_modified="Sat, 05 Dec 2026 10:00:00 GMT",
            error="boom",
            failures=2,
            next_poll_at=now + timedelta(seconds=30),
        )
        a.add_item(source.id, "guid-1", "c" * 32)
        b.add_item(source.id, "guid-1", "d" * 32)  # once per key: the first stays
        a.add_item(source.id, "guid-2", None)
        got = b.source(source.id)
        assert got is not None and got.items == 2 and got.etag == '"v1"'
        assert got.last_error == "boom" and got.failures == 2 and got.polled_at is not None
        assert a.item_known(source.id, "guid-1") and not a.item_known(source.id, "guid-3")
        assert [s.id for s in b.sources()] == [source.id]
        assert a.remove_source(source.id) and not a.remove_source(source.id)
        assert b.sources() == [] and not b.item_known(source.id, "guid-1")
    finally:
        a.close()
        b.close()


def test_the_lexicon_its_revision_and_the_articles_saying_a_word(reg):
    assert reg.lexicon_revision() == 0 and reg.lexicon_entries() == (0, [])
    source, _ = reg.add_source(SourceRecord(id="s" * 32, feed_url="https://news.example/rss"))
    said = "_".join(["行长", "100%"])  # LIKE's wildcards are matched as written
    fed, _ = reg.add(replace(_record("a" * 32), sentences=((0, "标题"), (1, f"行长说：{said}。"))))
    posted, _ = reg.add(replace(_record("b" * 32), sentences=((0, "标题"), (1, "银行x100%。"))))
    reg.add_item(source.id, "guid-1", fed.id)
    for rec in (fed, posted):
        reg.finish(rec.id, Finished(rendering="r1", degraded=None, duration_ms=1, size=1))
    assert reg.put_lexicon("行长", "hang2 zhang3", None) is True
    assert reg.put_lexicon("行长", "hang2 zhang3", None) is False  # the same: no change
    assert reg.lexicon_revision() == 1
    assert reg.put_lexicon("行长", "墨独", source.id) is True
    assert reg.put_lexicon("行长", "hang2 zhang3", None) is False
    revision, entries = reg.lexicon_entries()
    assert revision == 2
    assert [(e.written, e.spoken, e.source) for e in entries] == [
        ("行长", "hang2 zhang3", None),
        ("行长", "墨独", source.id),
    ]
    assert entries[0].updated_at.tzinfo is UTC
    assert reg.articles_saying("行长", None) == [fed.id]
    assert reg.articles_saying(said, None) == [fed.id]  # not 银行x100%
    assert reg.articles_saying("100%", None) == sorted([fed.id, posted.id])
    assert reg.articles_saying("100%", [source.id]) == [fed.id]
    assert reg.articles_saying("100%", ["t" * 32]) == []
    assert reg.sources_of() == {fed.id: frozenset({source.id})}
    assert reg.sources_of([posted.id]) == {}
    assert reg.delete_lexicon("行长", None) is True and reg.delete_lexicon("行长", None) is False
    assert reg.lexicon_revision() == 3
    assert reg.remove_source(source.id)  # its entries go with it
    assert reg.lexicon_entries() == (4, [])
