"""Listening analytics: the players' events (append-only), each session's state as rolled
up, per-article per-day figures, and how far the roll-up has read."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "listening_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("article_id", sa.Text, nullable=False),
        sa.Column("session", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("position_ms", sa.BigInteger),
        sa.Column("listened_ms", sa.BigInteger),
        sa.Column("speed", sa.Float),
        sa.Column("heard", sa.Text),
        sa.Column("voice", sa.Text),
        sa.Column("degraded", sa.Boolean),
        sa.Column("client", sa.Text, nullable=False),
    )
    op.create_index("listening_events_received", "listening_events", ["received_at"])
    op.create_table(
        "listening_sessions",
        sa.Column("article_id", sa.Text, primary_key=True),
        sa.Column("session", sa.Text, primary_key=True),
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("last_at", sa.BigInteger, nullable=False),
        sa.Column("played", sa.Boolean, nullable=False),
        sa.Column("downloads", sa.Integer, nullable=False),
        sa.Column("listened_ms", sa.BigInteger, nullable=False),
        sa.Column("furthest_ms", sa.BigInteger, nullable=False),
        sa.Column("ended", sa.Boolean, nullable=False),
        sa.Column("quartile", sa.Integer, nullable=False),
        sa.Column("heard", sa.Text, nullable=False),
        sa.Column("speeds", sa.Text, nullable=False),
        sa.Column("voices", sa.Text, nullable=False),
        sa.Column("degraded", sa.Integer, nullable=False),
    )
    op.create_index("listening_sessions_last", "listening_sessions", ["last_at"])
    op.create_table(
        "listening_daily",
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
        sa.Column("reach", sa.Text, nullable=False),
        sa.Column("speeds", sa.Text, nullable=False),
        sa.Column("voices", sa.Text, nullable=False),
        sa.Column("degraded", sa.Integer, nullable=False),
    )
    op.create_index("listening_daily_day", "listening_daily", ["day"])
    op.create_table(
        "listening_rollup",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("upto", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("langdu's schema only moves forward")
