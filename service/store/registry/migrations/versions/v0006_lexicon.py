"""The lexicon: the newsroom's pronunciations, for every article or for one source's, and a
revision bumped with each change (processes read the entries again when it moves)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lexicon",
        sa.Column("written", sa.Text, primary_key=True),
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("spoken", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "lexicon_revision",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.create_index("source_items_article", "source_items", ["article_id"])


def downgrade() -> None:
    raise NotImplementedError("langdu's schema only moves forward")
