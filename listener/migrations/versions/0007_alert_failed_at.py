"""Alerts: failed_at, when Slack refused a message for good (status shows a day of them)

Revision ID: 0007_alert_failed_at
Revises: 0006_draft_send_error
Create Date: 2026-11-30 03:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007_alert_failed_at"
down_revision: str | None = "0006_draft_send_error"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "alerts",
        sa.Column("failed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:  # SQLite drops columns by copying the table
        batch.drop_column("failed_at")
