"""Sources: the feeds langdu follows, and the items taken from each (by GUID or link), so
that an item is read once across polls and restarts."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
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
    op.create_table(
        "source_items",
        sa.Column("source_id", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("article_id", sa.Text),
        sa.Column("seen_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("langdu's schema only moves forward")
