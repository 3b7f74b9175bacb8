"""Mentions: engagement (likes, reposts, replies) when collected

Revision ID: 0004_mention_engagement
Revises: 0003_digest_deliveries
Create Date: 2026-11-27 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_mention_engagement"
down_revision: str | None = "0003_digest_deliveries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("mentions", sa.Column("engagement", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mentions") as batch:  # SQLite drops columns by copying the table
        batch.drop_column("engagement")
