"""Blobs carry their SHA-256, checked whenever they are read."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("blobs", sa.Column("sha256", sa.Text))


def downgrade() -> None:
    raise NotImplementedError("langdu's schema only moves forward")
