"""Classifications: model_version up to 255 characters

A version names the weights and every rule a team changed (its keywords, its virality bars):
e5-heads with both came to 88 characters, over the 64 that PostgreSQL enforced (SQLite does not),
so every classification of such a team failed to store.

Revision ID: 0005_longer_model_version
Revises: 0004_mention_engagement
Create Date: 2026-11-27 19:05:00
"""

from collections.abc import Sequence

import sqlmodel
from alembic import op

revision: str = "0005_longer_model_version"
down_revision: str | None = "0004_mention_engagement"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("classifications") as batch:  # SQLite alters by copying the table
        batch.alter_column(
            "model_version",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
            type_=sqlmodel.sql.sqltypes.AutoString(length=255),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("classifications") as batch:
        batch.alter_column(
            "model_version",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=255),
            type_=sqlmodel.sql.sqltypes.AutoString(length=64),
            existing_nullable=False,
        )
