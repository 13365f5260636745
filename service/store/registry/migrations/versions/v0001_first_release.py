"""The first release's article table, with the columns it grew before migrations existed."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _grew() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("published", sa.Integer, nullable=False, server_default="0"),
        sa.Column("category", sa.Text),
        sa.Column("feed_at", sa.Text),
        sa.Column("episode_bytes", sa.Integer),
        sa.Column("episode_ms", sa.Integer),
        sa.Column("degraded", sa.Text),
    )


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("articles"):
        op.create_table(
            "articles",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("title", sa.Text),
            sa.Column("url", sa.Text),
            sa.Column("voice", sa.Text, nullable=False),
            sa.Column("rate", sa.Text, nullable=False),
            sa.Column("pitch", sa.Text, nullable=False),
            sa.Column("status", sa.Text, nullable=False),
            sa.Column("duration_ms", sa.Integer),
            sa.Column("bytes", sa.Integer),
            sa.Column("error", sa.Text),
            sa.Column("sentences", sa.Text, nullable=False),
            sa.Column("published_at", sa.Text),
            sa.Column("created_at", sa.Text, nullable=False),
            sa.Column("updated_at", sa.Text, nullable=False),
            *_grew(),
        )
        return
    have = {column["name"] for column in inspector.get_columns("articles")}
    for column in _grew():
        if column.name not in have:
            op.add_column("articles", column)


def downgrade() -> None:
    raise NotImplementedError("langdu's schema only moves forward")
