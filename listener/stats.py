"""Counts of what the database holds, for `listener stats`, the demo summary and monitoring."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from alerts.outbox import DRAFT
from listener.models import Alert, Classification, Mention, ReplyDraft

UNCLASSIFIED = "unclassified"


def _grouped(session: Session, column: Any, *joins: Any) -> dict[str, int]:
    query = select(column, func.count()).select_from(Mention)
    for target, condition in joins:
        query = query.outerjoin(target, condition)
    rows = session.exec(query.group_by(column))
    return {str(key) if key is not None else UNCLASSIFIED: count for key, count in rows}


def _pairs(session: Session, column: Any, *group_by: Any, where: Any = True) -> dict[str, int]:
    query = select(column, func.count()).where(where).group_by(*(group_by or (column,)))
    return {str(key): count for key, count in session.exec(query)}


def collect_stats(engine: Engine) -> dict[str, Any]:
    """The `listener stats --json` document (a stable shape: scripts read it)."""
    classified = (Classification, Classification.mention_id == Mention.id)
    with Session(engine) as session:
        mentions = {
            "total": session.scalar(select(func.count()).select_from(Mention)) or 0,
            "by_source": _grouped(session, Mention.source),
            "by_language": _grouped(session, Classification.language, classified),
            "by_sentiment": _grouped(session, Classification.sentiment, classified),
            "by_urgency": _grouped(session, Classification.urgency, classified),
            "cross_posts": session.scalar(
                select(func.count()).where(Mention.duplicate_of_id.is_not(None))  # type: ignore[union-attr]
            )
            or 0,
        }
        drafts = _pairs(session, ReplyDraft.status)
        alerts = _pairs(session, Alert.state, where=Alert.kind != DRAFT)
        reviews = _pairs(session, Alert.state, where=Alert.kind == DRAFT)
        model = Classification.model_name + " " + Classification.model_version
        models = _pairs(session, model, Classification.model_name, Classification.model_version)
    return {
        "mentions": mentions,
        "classifiers": models,
        "drafts": {"total": sum(drafts.values()), "by_status": drafts},
        "alerts": {"total": sum(alerts.values()), "by_state": alerts},
        # Drafts posted to the review channel: outbox rows too, but not alerts.
        "review_messages": {"total": sum(reviews.values()), "by_state": reviews},
    }
