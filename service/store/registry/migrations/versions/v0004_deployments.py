"""Deployments: each configuration of code and settings that shapes audio, by when it was
first seen, so that during a rolling deploy the newest one's renderings win."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("fingerprint", sa.Text, primary_key=True),
        sa.Column("first_seen", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("langdu's schema only moves forward")
