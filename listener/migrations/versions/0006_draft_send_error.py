"""Reply drafts: send_error, why posting an approved reply failed (retried from Slack)

Revision ID: 0006_draft_send_error
Revises: 0005_longer_model_version
Create Date: 2026-11-28 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006_draft_send_error"
down_revision: str | None = "0005_longer_model_version"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "reply_drafts",
        sa.Column("send_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("reply_drafts") as batch:  # SQLite drops columns by copying the table
        batch.drop_column("send_error")
