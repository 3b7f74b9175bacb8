"""Operational state for `listener status`: source health, backlog, outbox, review queue."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from alerts.review import OPEN_STATUSES, UNSENT
from config.schema import Settings
from listener.enums import DeliveryState
from listener.models import (
    Alert,
    DigestDelivery,
    Mention,
    ReplyDraft,
    SourceCursor,
    Stage,
    utcnow,
)
from listener.recheck import STATE_KEY as RECHECK_STATE
from listener.sources import build_sources

# How long an alert refused for good (a channel that does not exist) keeps status not healthy.
FAILED_SHOWN = timedelta(days=1)
# A source is overdue when it has not succeeded for this many of its intervals (plus the slack):
# the daemon is down or stuck, which no error of its own would say.
OVERDUE_INTERVALS = 3
OVERDUE_SLACK = timedelta(minutes=15)
# Mentions waiting this long at a stage mean processing is stuck (it runs every minute).
BACKLOG_STUCK_AFTER = timedelta(hours=1)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _collected_since(session: Session, since: datetime) -> dict[str, int]:
    """Mentions collected since `since`, per collector (one query for all sources)."""
    query = (
        select(Mention.collector, func.count())
        .where(Mention.collected_at >= since)
        .group_by(Mention.collector)
    )
    return dict(session.exec(query).all())


def _overdue(cursor: SourceCursor | None, interval: timedelta, now: datetime) -> bool:
    """Succeeded once, not failing, yet silent for several intervals: nothing is running it."""
    if cursor is None or cursor.last_success_at is None or cursor.consecutive_failures:
        return False
    return now - cursor.last_success_at > OVERDUE_INTERVALS * interval + OVERDUE_SLACK


def _source_rows(session: Session, settings: Settings, now: datetime) -> dict[str, Any]:
    built = build_sources(settings)
    states = list(session.exec(select(SourceCursor)))
    cursors = {c.source: c for c in states if c.query_key == ""}
    rechecks = {c.source: c for c in states if c.query_key == RECHECK_STATE}
    last_hour = _collected_since(session, now - timedelta(hours=1))
    last_day = _collected_since(session, now - timedelta(days=1))
    rows: dict[str, Any] = {}
    for config in settings.sources:
        cursor = cursors.get(config.name)
        backing_off = bool(cursor and cursor.next_attempt_at and cursor.next_attempt_at > now)
        rows[config.name] = {
            "type": config.type,
            "enabled": config.name not in built.disabled,
            "disabled_reason": built.disabled.get(config.name),
            "last_success_at": _iso(cursor.last_success_at) if cursor else None,
            "last_error": cursor.last_error if cursor and cursor.consecutive_failures else None,
            "last_error_at": _iso(cursor.last_error_at) if cursor else None,
            "consecutive_failures": cursor.consecutive_failures if cursor else 0,
            "backing_off_until": _iso(cursor.next_attempt_at) if backing_off and cursor else None,
            "items_last_hour": last_hour.get(config.name, 0),
            "items_per_hour_24h": round(last_day.get(config.name, 0) / 24, 1),
            "overdue": config.name not in built.disabled and _overdue(cursor, config.interval, now),
        }
        if config.name in rechecks:  # complaints' reactions re-read (X, Reddit, Bluesky, Mastodon)
            recheck = rechecks[config.name]
            rows[config.name]["reactions_rechecked_at"] = _iso(recheck.last_success_at)
            rows[config.name]["reactions_recheck_error"] = (
                recheck.last_error if recheck.consecutive_failures else None
            )
    return rows


def _outbox(session: Session, now: datetime) -> dict[str, Any]:
    """Rows still to send, and rows that never can be (refused for good) of the last day."""
    waiting = Alert.state == DeliveryState.PENDING
    by_channel = dict(
        session.exec(
            select(Alert.channel, func.count()).where(waiting).group_by(Alert.channel)
        ).all()
    )
    oldest = session.scalar(select(func.min(Alert.created_at)).where(waiting))
    failures = session.scalar(select(func.max(Alert.attempts)).where(waiting)) or 0
    tried = select(Alert.last_error).where(waiting, Alert.attempts > 0).order_by(Alert.id.desc())  # type: ignore[union-attr]
    last_error = session.exec(tried.limit(1)).first()
    failed = list(
        session.exec(
            select(Alert.last_error)
            .where(Alert.state == DeliveryState.FAILED, Alert.failed_at >= now - FAILED_SHOWN)  # type: ignore[operator]
            .order_by(Alert.id)
        )
    )
    return {
        "alerts_waiting": sum(by_channel.values()),
        "by_channel": by_channel,
        "oldest_waiting_since": _iso(oldest),
        "most_attempts": failures,
        "last_error": last_error,
        "alerts_failed_24h": len(failed),
        "last_failure": failed[-1] if failed else None,
    }


def _digests(session: Session) -> dict[str, Any]:
    waiting = list(
        session.exec(
            select(DigestDelivery)
            .where(DigestDelivery.state != DeliveryState.DELIVERED)
            .order_by(DigestDelivery.week)
        )
    )
    return {
        "waiting": [row.week for row in waiting],
        "attempts": max((row.attempts for row in waiting), default=0),
        "last_error": waiting[-1].last_error if waiting else None,
    }


def _replies_not_sent(session: Session) -> dict[str, Any]:
    """Approved drafts whose reply failed to post (Slack's Retry sending button posts them)."""
    unsent = list(session.exec(select(ReplyDraft).where(UNSENT).order_by(ReplyDraft.updated_at)))
    return {
        "drafts": [draft.id for draft in unsent],
        "last_error": unsent[-1].send_error if unsent else None,
    }


def _failing(settings: Settings, sources: dict[str, Any]) -> list[str]:
    """Sources failing now; one the config switched off is not (its row still shows its error).

    A source whose reactions cannot be re-read misses complaints going viral: failing too.
    """
    switched_off = {config.name for config in settings.sources if not config.enabled}
    return sorted(
        name
        for name, row in sources.items()
        if name not in switched_off
        and (row["consecutive_failures"] or row.get("reactions_recheck_error"))
    )


def collect_status(engine: Engine, settings: Settings, now: datetime | None = None) -> dict:
    """The `listener status --json` document."""
    now = now or utcnow()
    with Session(engine) as session:
        stages = dict(
            session.exec(select(Mention.stage, func.count()).group_by(Mention.stage)).all()
        )
        backlog = {
            stage.name.lower(): stages.get(stage, 0) for stage in Stage if stage is not Stage.ROUTED
        }
        review = session.scalar(
            select(func.count()).where(ReplyDraft.status.in_(OPEN_STATUSES))  # type: ignore[attr-defined]
        )
        waiting_since = session.scalar(
            select(func.min(Mention.collected_at)).where(Mention.stage < Stage.ROUTED)
        )
        sources = _source_rows(session, settings, now)
        outbox = _outbox(session, now)
        digests = _digests(session)
        unsent = _replies_not_sent(session)
    failing = _failing(settings, sources)
    overdue = sorted(
        name for name, row in sources.items() if row["overdue"] and name not in failing
    )
    stuck = waiting_since is not None and now - waiting_since > BACKLOG_STUCK_AFTER
    data = {
        "checked_at": _iso(now),
        "healthy": not (
            failing
            or overdue
            or stuck
            or outbox["most_attempts"]
            or outbox["alerts_failed_24h"]
            or digests["attempts"]
            or unsent["drafts"]
        ),
        "failing_sources": failing,
        "overdue_sources": overdue,
        "sources": sources,
        "backlog": backlog,
        "backlog_waiting_since": _iso(waiting_since),
        "backlog_stuck": stuck,
        "outbox": outbox,
        "drafts_awaiting_review": review or 0,
        "replies_not_sent": unsent,
        "digests": digests,
    }
    if settings.executor == "celery":
        from listener.distributed import celery_status

        data["celery"] = celery_status(settings)
        queues = data["celery"].get("queues", {})
        data["healthy"] = (
            data["healthy"] and bool(queues) and all(q["workers"] for q in queues.values())
        )
    return data
