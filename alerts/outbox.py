"""What goes into the outbox besides per-mention alerts, and when a row may be sent.

- Review messages: one row per pending draft (key `draft:<id>`), posted to the review channel.
- Re-raises: an unacknowledged critical alert is posted again after `slack.reraise_after`; one
  repeat waits at a time while Slack is down, and is dropped if someone acknowledges meanwhile.
- Quiet hours: a non-critical alert for a market in its quiet hours waits until they end; if
  its mention's escalation went out meanwhile, it is superseded, never sent.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, update
from sqlmodel import Session, select
from sqlmodel.sql.expression import SelectOfScalar
from sqlmodel.sql.sqltypes import UTCDateTime

from alerts.review import Review, review_blocks, review_text
from alerts.rules import alerts_for
from config.schema import Settings, parse_time_range
from listener.enums import DeliveryState, DraftStatus
from listener.models import Alert, Classification, Mention, ReplyDraft

log = logging.getLogger(__name__)
ALERT = "alert"
DRAFT = "draft"
RERAISE = "reraise"
CRISIS = "crisis"
CRITICAL = "critical"
MAX_ERROR_CHARS = 500  # what an outbox row (alert or digest) keeps of a delivery error


def queue_reviews(session: Session, settings: Settings) -> int:
    """Add an outbox row for each pending draft that has none; idempotent by key."""
    query = (
        select(ReplyDraft, Mention, Classification)
        .join(Mention, Mention.id == ReplyDraft.mention_id)
        .join(Classification, Classification.mention_id == Mention.id)
        .outerjoin(Alert, Alert.draft_id == ReplyDraft.id)  # type: ignore[arg-type]
        .where(ReplyDraft.status == DraftStatus.PENDING, Alert.id.is_(None))  # type: ignore[union-attr]
        .order_by(ReplyDraft.id)
    )
    queued = 0
    for draft, mention, classification in session.exec(query):
        session.add(
            Alert(
                key=f"draft:{draft.id}",
                kind=DRAFT,
                draft_id=draft.id,
                mention_id=mention.id,
                level=classification.urgency,
                channel=settings.slack.review_channel,
                title=review_text(draft, mention),
                body=draft.text,
            )
        )
        queued += 1
    return queued


def draft_blocks(session: Session, alert: Alert) -> list:
    """The review message for a draft row, from the draft's state at the time of sending."""
    review = Review.load(session, alert.draft_id) if alert.draft_id is not None else None
    if review is None:
        raise LookupError(
            f"outbox row {alert.key}: draft {alert.draft_id} or its mention no longer exists"
        )
    return review_blocks(review.draft, review.mention, review.classification)


def reraise_due(session: Session, settings: Settings, now: datetime) -> int:
    """Queue a repeat of every critical alert nobody acknowledged within `reraise_after`."""
    after = settings.slack.reraise_after
    if after is None:
        return 0
    last_shown = func.coalesce(Alert.reraised_at, Alert.delivered_at, type_=UTCDateTime)
    query = select(Alert).where(
        Alert.level == CRITICAL,
        Alert.kind != DRAFT,
        Alert.kind != RERAISE,
        Alert.state == DeliveryState.DELIVERED,
        Alert.external_id.is_not(None),  # type: ignore[union-attr]  # a message to acknowledge
        Alert.acknowledged_at.is_(None),  # type: ignore[union-attr]
        last_shown <= now - after,
    )
    count = 0
    for alert in list(session.exec(query)):
        if _reraise_waiting(session, alert):  # Slack is down: one repeat waits, not one a cycle
            continue
        times = session.scalar(select(func.count()).where(Alert.parent_id == alert.id)) or 0
        age = _age(now, alert.delivered_at or now)
        session.add(
            Alert(
                key=f"{RERAISE}:{alert.id}:{times + 1}",
                kind=RERAISE,
                parent_id=alert.id,
                mention_id=alert.mention_id,
                level=alert.level,
                channel=alert.channel,
                title=f"Still unacknowledged after {age}: {alert.title}",
                body=alert.body,
                notify=alert.notify,
            )
        )
        alert.reraised_at = now
        session.add(alert)
        count += 1
        log.info("alerts: re-raising unacknowledged critical alert #%s", alert.id)
    return count


def _reraise_waiting(session: Session, alert: Alert) -> bool:
    query = select(func.count()).where(
        Alert.parent_id == alert.id, Alert.state == DeliveryState.PENDING
    )
    return bool(session.scalar(query))


def earlier_alert(session: Session, alert: Alert) -> Alert | None:
    """The first delivered alert about the same mention in the same channel, if `alert` follows
    it up (a complaint escalated after it was routed); None for a first alert.

    Only alerts queued before it count: a first alert that quiet hours held back until after
    its escalation went out is not a follow-up of the escalation (see `later_alert`).
    """
    query = _delivered_alerts_like(alert)
    if query is None:
        return None
    return session.exec(query.where(Alert.id < alert.id).order_by(Alert.id)).first()  # type: ignore[arg-type]


def later_alert(session: Session, alert: Alert) -> Alert | None:
    """A delivered alert about the same mention in the same channel that was queued after
    `alert`: its escalation, which went out while quiet hours still held `alert` back.

    Such an `alert` is stale (it rates the mention below what the channel already saw), so it
    is superseded instead of sent.
    """
    query = _delivered_alerts_like(alert)
    if query is None:
        return None
    return session.exec(query.where(Alert.id > alert.id).order_by(Alert.id)).first()  # type: ignore[arg-type]


def supersede_if_stale(session: Session, alert: Alert) -> bool:
    """Mark `alert` superseded, never to be sent, if it is stale by now: its escalation already
    went out to the same channel (`later_alert`), or it re-raises an alert someone acknowledged
    while it waited (Slack was down). The caller commits."""
    reason = _why_stale(session, alert)
    if reason is None:
        return False
    alert.state = DeliveryState.SUPERSEDED
    alert.last_error = reason
    alert.next_attempt_at = None
    session.add(alert)
    log.info("alerts: alert #%s not sent: %s", alert.id, reason)
    return True


def _why_stale(session: Session, alert: Alert) -> str | None:
    if alert.kind == RERAISE:
        repeated = session.get(Alert, alert.parent_id) if alert.parent_id else None
        if repeated is None or repeated.acknowledged_at is None:
            return None
        return f"alert #{repeated.id} was acknowledged by {repeated.acknowledged_by} meanwhile"
    later = later_alert(session, alert)
    if later is None:
        return None
    return f"superseded by alert #{later.id} ({later.level}), which went out first"


def _delivered_alerts_like(alert: Alert) -> SelectOfScalar[Alert] | None:
    """Delivered per-mention alerts of `alert`'s mention and channel; None if it is not one."""
    if alert.kind != ALERT or alert.mention_id is None or alert.id is None:
        return None
    return select(Alert).where(
        Alert.mention_id == alert.mention_id,
        Alert.channel == alert.channel,
        Alert.kind == ALERT,
        Alert.state == DeliveryState.DELIVERED,
    )


def move_waiting(session: Session, old: str, new: str) -> int:
    """Send the rows still waiting for channel `old` to `new` instead (a route corrected after
    Slack refused the old channel); their attempts start again. The caller commits.

    One UPDATE of pending rows only: a row a delivery takes meanwhile is left as it is sent.
    """
    moved = update(Alert).where(_waiting_in(old))
    values = {"channel": new, "attempts": 0, "last_error": None, "next_attempt_at": None}
    return session.execute(moved.values(**values)).rowcount  # type: ignore[attr-defined]


def drop_waiting(session: Session, channel: str, now: datetime) -> int:
    """Never send the rows still waiting for `channel` (state dropped). The caller commits."""
    note = f"dropped by an operator on {now:%Y-%m-%d %H:%M} UTC"
    dropped = update(Alert).where(_waiting_in(channel))
    values = {"state": DeliveryState.DROPPED, "next_attempt_at": None, "last_error": note}
    return session.execute(dropped.values(**values)).rowcount  # type: ignore[attr-defined]


def _waiting_in(channel: str) -> ColumnElement[bool]:
    return and_(Alert.state == DeliveryState.PENDING, Alert.channel == channel)


def _age(now: datetime, then: datetime) -> str:
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    minutes = max(int((now - then).total_seconds() // 60), 0)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes} min"


def queue_alerts(
    session: Session,
    mention: Mention,
    classification: Classification,
    settings: Settings,
    now: datetime,
    *,
    occasion: str = "",
) -> int:
    """Outbox rows for the routes this mention matches (`alerts_for`), timed for quiet hours."""
    alerts = alerts_for(mention, classification, settings, occasion)
    for alert in alerts:
        wait = quiet_until(settings, classification.language, alert.level, now)
        session.add(Alert(mention_id=mention.id, next_attempt_at=wait, **vars(alert)))
    return len(alerts)


def quiet_until(
    settings: Settings, language: str | None, level: str, now: datetime
) -> datetime | None:
    """When a non-critical alert for this language's market may go out, if it must wait."""
    if level == CRITICAL:
        return None
    market = settings.market_for_language(language)
    if not market.quiet_hours:
        return None
    start, end = parse_time_range(market.quiet_hours)
    local = now.astimezone(ZoneInfo(market.timezone))
    clock = local.time().replace(tzinfo=None)
    inside = start <= clock < end if start < end else clock >= start or clock < end
    if not inside:
        return None
    ends = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return ends.astimezone(UTC)


def ready(now: datetime):  # type: ignore[no-untyped-def]
    """The SQL condition for rows whose wait (Retry-After, quiet hours) is over."""
    return or_(Alert.next_attempt_at.is_(None), Alert.next_attempt_at <= now)  # type: ignore[union-attr, operator]


RATE_LIMITED = "rate limited"


def rate_limited_until(session: Session, now: datetime) -> datetime | None:
    """While Slack's Retry-After runs for one row, the whole outbox waits (it is per app)."""
    query = select(func.max(Alert.next_attempt_at)).where(
        Alert.state == DeliveryState.PENDING,
        Alert.last_error.startswith(RATE_LIMITED),  # type: ignore[union-attr]
        Alert.next_attempt_at > now,  # type: ignore[operator]
    )
    until = session.scalar(query)
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return until
