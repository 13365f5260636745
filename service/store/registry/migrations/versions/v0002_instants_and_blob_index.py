"""Instants as UTC milliseconds, renderings, queued work, persisted upgrades, blob index.

Audio stored by the first release lived under paths, not blob keys: its articles are
marked evicted (read again on the next request, published ones right away).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BACKGROUND = 1  # Priority.BACKGROUND


def _iso_ms(raw: object) -> int | None:
    """An ISO-8601 string with any (or no) offset -> UTC milliseconds."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def upgrade() -> None:
    bind = op.get_bind()
    # Read the old rows first: the new table takes the old one's name (and its key's).
    old = sa.table("articles", *(sa.column(c) for c in _V1_COLUMNS))
    rows = []
    for row in bind.execute(sa.select(old)).mappings():
        was = str(row["status"])
        status = "evicted" if was == "ready" else ("failed" if was == "failed" else "queued")
        created = _iso_ms(row["created_at"]) or 0
        rows.append(
            {
                "id": row["id"],
                "title": row["title"],
                "url": row["url"],
                "voice": row["voice"],
                "rate": row["rate"],
                "pitch": row["pitch"],
                "sentences": row["sentences"],
                "status": status,
                "error": row["error"],
                "work": _BACKGROUND if status == "queued" else None,
                "published": bool(row["published"]),
                "category": row["category"],
                "feed_at": _iso_ms(row["feed_at"]),
                "published_at": _iso_ms(row["published_at"]),
                "created_at": created,
                "updated_at": _iso_ms(row["updated_at"]) or created,
            }
        )
    op.drop_table("articles")
    articles = op.create_table(
        "articles",
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
    assert articles is not None
    where_work = articles.c.work.is_not(None)
    where_upgrade = articles.c.upgrade_at.is_not(None)
    op.create_index(
        "articles_work", "articles", ["work"], sqlite_where=where_work, postgresql_where=where_work
    )
    op.create_index(
        "articles_upgrade",
        "articles",
        ["upgrade_at"],
        sqlite_where=where_upgrade,
        postgresql_where=where_upgrade,
    )
    op.create_index("articles_feed", "articles", ["published", "category"])
    if rows:
        op.bulk_insert(articles, rows)
    op.create_table(
        "blobs",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("grp", sa.Text, nullable=False),
        sa.Column("evictable", sa.Boolean, nullable=False),
        sa.Column("used_at", sa.BigInteger, nullable=False),
    )
    op.create_index("blobs_lru", "blobs", ["evictable", "used_at"])


_V1_COLUMNS = (
    "id",
    "title",
    "url",
    "voice",
    "rate",
    "pitch",
    "status",
    "error",
    "sentences",
    "published",
    "category",
    "feed_at",
    "published_at",
    "created_at",
    "updated_at",
)


def downgrade() -> None:
    raise NotImplementedError("langdu's schema only moves forward")
