"""Complaints that go viral after they were collected.

A mention's reactions are first counted when it is collected, usually minutes after it was
posted, when almost nothing has reacted yet. A complaint that draws hundreds of likes, reposts
and replies an hour later is the "complaint going viral" that the urgency levels call critical,
so the recent complaints of sources that can read reactions again (X, Reddit, Bluesky,
Mastodon) are re-read every `model.viral_recheck.every` while `window` lasts. One that reaches
`model.viral_reactions` becomes critical (its reasons say why) and raises its alerts at once,
keyed apart from its first ones; its stage stays ROUTED, so no other stage runs again.

Each source's recheck keeps its own state in `source_cursors` (query key `reactions`): when it
last ran, and its failures with a backoff, exactly as collection does.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from alerts.outbox import MAX_ERROR_CHARS, queue_alerts
from config.schema import Settings, ViralRecheck
from listener.enums import Sentiment, Urgency
from listener.models import Classification, Mention, SourceCursor, Stage
from listener.nlp.urgency import VIRAL_SCORE, reaction_reason
from listener.sources import Source

log = logging.getLogger(__name__)
STATE_KEY = "reactions"  # `SourceCursor.query_key` of a source's recheck state
OCCASION = "viral"  # names the escalation's alerts apart from the mention's first ones
_JITTER = random.Random()  # noqa: S311  (spreads retries, not cryptography)


@dataclass
class RecheckOutcome:
    watched: int = 0  # complaints whose reactions were asked for
    updated: int = 0  # whose count changed
    escalated: int = 0  # that became critical
    alerts: int = 0
    error: str | None = None
    skipped: str | None = None


def recheck_reactions(
    engine: Engine, sources: Sequence[Source], settings: Settings, now: datetime
) -> dict[str, RecheckOutcome]:
    """Re-read the watched complaints of every source that can, where a recheck is due."""
    config = settings.model.viral_recheck
    if not config.enabled:
        return {}
    return {
        source.name: _recheck_source(engine, source, settings, now)
        for source in sources
        if source.can_recheck
    }


def _recheck_source(
    engine: Engine, source: Source, settings: Settings, now: datetime
) -> RecheckOutcome:
    config = settings.model.viral_recheck
    with Session(engine) as session:
        state = _state(session, source)
        if state.next_attempt_at and state.next_attempt_at > now:
            until = state.next_attempt_at.isoformat(timespec="seconds")
            return RecheckOutcome(skipped=f"backing off after errors until {until}")
        if state.last_success_at and now - state.last_success_at < config.every:
            return RecheckOutcome(skipped="not due yet")
        watched = [mention.native_id for mention, _ in _watched(session, source, now, config)]
    try:
        counts = source.reactions(watched)
    except Exception as error:  # noqa: BLE001  (one source's fault must not stop the others)
        return _record_failure(engine, source, error, now, config.every)
    outcome = RecheckOutcome(watched=len(watched))
    with Session(engine) as session:
        # Read again: a row may have moved on (purged, escalated) while the platform answered.
        for mention, classification in _watched(session, source, now, config):
            count = counts.get(mention.native_id)
            if count is None:
                continue
            outcome.updated += count != mention.engagement
            if _escalate(mention, classification, count, settings.model.viral_reactions):
                outcome.escalated += 1
                outcome.alerts += queue_alerts(
                    session, mention, classification, settings, now, occasion=OCCASION
                )
                log.warning(
                    "source %s: complaint %s now has %d reactions: critical",
                    source.name,
                    mention.id,
                    count,
                )
            session.add(mention)
            session.add(classification)
        state = _state(session, source)
        state.succeeded(now)
        session.add(state)
        session.commit()
    return outcome


def _watched(
    session: Session, source: Source, now: datetime, config: ViralRecheck
) -> list[tuple[Mention, Classification]]:
    """The source's newest complaints within the window, routed but not critical."""
    query = (
        select(Mention, Classification)
        .join(Classification, col(Classification.mention_id) == col(Mention.id))
        .where(
            Mention.collector == source.name,
            Mention.stage == Stage.ROUTED,
            col(Mention.duplicate_of_id).is_(None),
            Mention.created_at >= now - config.window,
            Classification.sentiment == Sentiment.NEGATIVE.value,
            Classification.urgency != Urgency.CRITICAL.label,
        )
        .order_by(col(Mention.created_at).desc())
        .limit(source.RECHECK_BATCH)
    )
    return list(session.exec(query).all())


def _escalate(
    mention: Mention, classification: Classification, reactions: int, threshold: int
) -> bool:
    """Record the new count; make the complaint critical once it reaches the threshold."""
    mention.engagement = reactions
    if reactions < threshold:
        return False
    classification.urgency = Urgency.CRITICAL.label
    classification.urgency_score = max(classification.urgency_score, VIRAL_SCORE)
    classification.urgency_reasons = [*classification.urgency_reasons, reaction_reason(reactions)]
    return True


def _state(session: Session, source: Source) -> SourceCursor:
    return session.get(SourceCursor, (source.name, STATE_KEY)) or SourceCursor(
        source=source.name, query_key=STATE_KEY
    )


def _record_failure(
    engine: Engine, source: Source, error: Exception, now: datetime, every: timedelta
) -> RecheckOutcome:
    message = f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
    log.error("source %s: re-reading reactions failed: %s", source.name, message)
    with Session(engine) as session:
        state = _state(session, source)
        state.failed(message, now, every, _JITTER)
        session.add(state)
        session.commit()
    return RecheckOutcome(error=message)
