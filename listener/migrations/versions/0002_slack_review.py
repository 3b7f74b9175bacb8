"""Slack review workflow: draft review state, outbox kinds, retry times, acknowledgements

Revision ID: 0002_slack_review
Revises: 0001
Create Date: 2026-11-27 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_slack_review"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_TIME = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("reply_drafts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("original_text", _TEXT(), nullable=True))
        batch_op.add_column(sa.Column("reject_reason", _TEXT(), nullable=True))
        batch_op.add_column(sa.Column("assignee", _TEXT(), nullable=True))

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", _TEXT(length=16), nullable=False, server_default="alert")
        )
        batch_op.add_column(sa.Column("draft_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("next_attempt_at", _TIME(), nullable=True))
        batch_op.add_column(sa.Column("external_channel", _TEXT(), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_at", _TIME(), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_by", _TEXT(), nullable=True))
        batch_op.add_column(sa.Column("reraised_at", _TIME(), nullable=True))
        batch_op.create_index(batch_op.f("ix_alerts_draft_id"), ["draft_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_alerts_draft_id_reply_drafts", "reply_drafts", ["draft_id"], ["id"]
        )
        batch_op.create_foreign_key("fk_alerts_parent_id_alerts", "alerts", ["parent_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_alerts_parent_id_alerts", type_="foreignkey")
        batch_op.drop_constraint("fk_alerts_draft_id_reply_drafts", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_alerts_draft_id"))
        for column in (
            "reraised_at",
            "acknowledged_by",
            "acknowledged_at",
            "external_channel",
            "next_attempt_at",
            "parent_id",
            "draft_id",
            "kind",
        ):
            batch_op.drop_column(column)

    with op.batch_alter_table("reply_drafts", schema=None) as batch_op:
        batch_op.drop_column("assignee")
        batch_op.drop_column("reject_reason")
        batch_op.drop_column("original_text")
