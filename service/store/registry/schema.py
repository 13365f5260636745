"""The registry's tables, as SQLAlchemy Core metadata: one definition for every dialect.

Instants are integer milliseconds since the epoch (UTC), so they sort as time does in any
database; an article's sentences are JSON text. The migrations in `migrations/versions/`
build exactly these tables; `tests/store/registry/test_migrations.py` checks that they agree.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

metadata = sa.MetaData()

articles = sa.Table(
    "articles",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("title", sa.Text),
    sa.Column("url", sa.Text),
    sa.Column("voice", sa.Text, nullable=False),
    sa.Column("rate", sa.Text, nullable=False),
    sa.Column("pitch", sa.Text, nullable=False),
    sa.Column("sentences", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("rendering", sa.Text),
    sa.Column("degraded", sa.Text),
    sa.Column("duration_ms", sa.BigInteger),
    sa.Column("bytes", sa.BigInteger),
    sa.Column("work", sa.Integer),
    sa.Column("upgrade_at", sa.BigInteger),
    sa.Column("upgrade_delay_s", sa.Float),
    sa.Column("published", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("category", sa.Text),
    sa.Column("feed_at", sa.BigInteger),
    sa.Column("published_at", sa.BigInteger),
    sa.Column("episode_rendering", sa.Text),
    sa.Column("episode_bytes", sa.BigInteger),
    sa.Column("episode_ms", sa.BigInteger),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

sa.Index(
    "articles_work",
    articles.c.work,
    sqlite_where=articles.c.work.is_not(None),
    postgresql_where=articles.c.work.is_not(None),
)
sa.Index(
    "articles_upgrade",
    articles.c.upgrade_at,
    sqlite_where=articles.c.upgrade_at.is_not(None),
    postgresql_where=articles.c.upgrade_at.is_not(None),
)
sa.Index("articles_feed", articles.c.published, articles.c.category)

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("grp", sa.Text, nullable=False),
    sa.Column("evictable", sa.Boolean, nullable=False),
    sa.Column("used_at", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.Text),
)

sa.Index("blobs_lru", blobs.c.evictable, blobs.c.used_at)

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("feed_url", sa.Text, nullable=False, unique=True),
    sa.Column("publish", sa.Boolean, nullable=False),
    sa.Column("voice", sa.Text),
    sa.Column("category", sa.Text),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("next_poll_at", sa.BigInteger, nullable=False),
    sa.Column("polled_at", sa.BigInteger),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("last_error", sa.Text),
    sa.Column("failures", sa.Integer, nullable=False),
)

source_items = sa.Table(
    "source_items",
    metadata,
    sa.Column("source_id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),  # the item's GUID, else its link
    sa.Column("article_id", sa.Text),
    sa.Column("seen_at", sa.BigInteger, nullable=False),
)

sa.Index("source_items_article", source_items.c.article_id)

# The newsroom's pronunciations: scope "" for every article, else a source's id (its articles).
lexicon = sa.Table(
    "lexicon",
    metadata,
    sa.Column("written", sa.Text, primary_key=True),
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("spoken", sa.Text, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# One row: bumped with every change to the lexicon, so each process knows when to read it.
lexicon_revision = sa.Table(
    "lexicon_revision",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
)

# Listening analytics. Events as the players posted them, append-only (deleted only when
# older than LANGDU_EVENTS_KEEP_DAYS, after they are rolled up); no address, no cookie: a
# session is a random id the player made for one page view.
_EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: the rowid

listening_events = sa.Table(
    "listening_events",
    metadata,
    sa.Column("id", _EVENT_ID, primary_key=True, autoincrement=True),
    sa.Column("article_id", sa.Text, nullable=False),
    sa.Column("session", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("received_at", sa.BigInteger, nullable=False),
    sa.Column("position_ms", sa.BigInteger),
    sa.Column("listened_ms", sa.BigInteger),
    sa.Column("speed", sa.Float),
    sa.Column("heard", sa.Text),  # JSON: sentence indexes heard since the last report
    sa.Column("voice", sa.Text),
    sa.Column("degraded", sa.Boolean),
    sa.Column("client", sa.Text, nullable=False),  # player, app, podcast
)

sa.Index("listening_events_received", listening_events.c.received_at)

# One row per page view (or feed download) of an article: what the roll-up knows of it,
# so that a session's later events add only what is new to its day's figures.
listening_sessions = sa.Table(
    "listening_sessions",
    metadata,
    sa.Column("article_id", sa.Text, primary_key=True),
    sa.Column("session", sa.Text, primary_key=True),
    sa.Column("day", sa.Text, nullable=False),  # YYYY-MM-DD (UTC) of its first event
    sa.Column("last_at", sa.BigInteger, nullable=False),
    sa.Column("played", sa.Boolean, nullable=False),
    sa.Column("downloads", sa.Integer, nullable=False),
    sa.Column("listened_ms", sa.BigInteger, nullable=False),
    sa.Column("furthest_ms", sa.BigInteger, nullable=False),
    sa.Column("ended", sa.Boolean, nullable=False),
    sa.Column("quartile", sa.Integer, nullable=False),  # 0..4: quarters of the audio reached
    sa.Column("heard", sa.Text, nullable=False),  # JSON: sorted sentence indexes
    sa.Column("speeds", sa.Text, nullable=False),  # JSON: {speed: listened ms}
    sa.Column("voices", sa.Text, nullable=False),  # JSON: {voice: plays}
    sa.Column("degraded", sa.Integer, nullable=False),  # plays in a fallback voice
)

sa.Index("listening_sessions_last", listening_sessions.c.last_at)

# Per article, per day: the figures the stats and the dashboard read.
listening_daily = sa.Table(
    "listening_daily",
    metadata,
    sa.Column("article_id", sa.Text, primary_key=True),
    sa.Column("day", sa.Text, primary_key=True),
    sa.Column("sessions", sa.Integer, nullable=False),
    sa.Column("plays", sa.Integer, nullable=False),
    sa.Column("downloads", sa.Integer, nullable=False),
    sa.Column("listened_ms", sa.BigInteger, nullable=False),
    sa.Column("q25", sa.Integer, nullable=False),
    sa.Column("q50", sa.Integer, nullable=False),
    sa.Column("q75", sa.Integer, nullable=False),
    sa.Column("q100", sa.Integer, nullable=False),
    sa.Column("reach", sa.Text, nullable=False),  # JSON: sessions that heard each sentence
    sa.Column("speeds", sa.Text, nullable=False),
    sa.Column("voices", sa.Text, nullable=False),
    sa.Column("degraded", sa.Integer, nullable=False),
)

sa.Index("listening_daily_day", listening_daily.c.day)

# One row: the last event id rolled up (a roll-up moves it by a conditional update).
listening_rollup = sa.Table(
    "listening_rollup",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("upto", sa.BigInteger, nullable=False),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("fingerprint", sa.Text, primary_key=True),
    sa.Column("first_seen", sa.BigInteger, nullable=False),
)


def _ms(when: datetime | None) -> int | None:
    """An aware instant as integer milliseconds since the epoch (UTC): sorts as time does."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _instant(ms: object) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if isinstance(ms, int) else None
