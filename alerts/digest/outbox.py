"""The digest outbox: each week's digest is queued once, sent once, and retried while SMTP is down.

The scheduler queues the last complete week on its cron and then, like the retry job every
few minutes, delivers whatever is still waiting, oldest week first. A row is marked delivered only
after the SMTP server accepted the message, so an outage delays the digest but never loses or
repeats it.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, select

from alerts.digest.assemble import build_digest
from alerts.digest.send import DigestError, compose, send
from alerts.digest.week import Week
from alerts.outbox import MAX_ERROR_CHARS
from config.schema import Settings
from listener.enums import DeliveryState
from listener.models import DigestDelivery, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryOutcome:
    week: str
    delivered: bool
    error: str | None = None
    refused: tuple[str, ...] = ()  # recipients the server refused where others received it

    @property
    def refusal(self) -> str:
        """What to tell the team about refused recipients; empty when there were none."""
        if not self.refused:
            return ""
        return (
            f"the SMTP server refused {', '.join(self.refused)}: check those addresses in"
            " digest.recipients (the others received the digest)"
        )


def queue_week(engine: Engine, week: Week) -> bool:
    """Queue `week`'s digest unless it is queued or sent already; True if newly queued."""
    with Session(engine) as session:
        if session.get(DigestDelivery, week.label):
            return False
        session.add(DigestDelivery(week=week.label))
        session.commit()
    return True


def already_delivered(engine: Engine, week: Week) -> datetime | None:
    with Session(engine) as session:
        row = session.get(DigestDelivery, week.label)
        return row.delivered_at if row and row.state == DeliveryState.DELIVERED else None


def deliver_week(
    engine: Engine, settings: Settings, week: Week, context: ssl.SSLContext | None = None
) -> DeliveryOutcome:
    """Build and send one week's digest and record the attempt; a DigestError is recorded."""
    with Session(engine) as session:
        row = session.get(DigestDelivery, week.label) or DigestDelivery(week=week.label)
        row.attempts += 1
        row.last_attempt_at = utcnow()
        try:
            refused = send(
                compose(build_digest(engine, settings, week), settings.digest),
                settings.digest,
                context,
            )
        except DigestError as error:
            row.last_error = str(error)[:MAX_ERROR_CHARS]
            session.add(row)
            session.commit()
            log.warning("digest %s not delivered (attempt %d): %s", week.label, row.attempts, error)
            return DeliveryOutcome(week.label, delivered=False, error=row.last_error)
        outcome = DeliveryOutcome(week.label, delivered=True, refused=tuple(refused))
        row.state = DeliveryState.DELIVERED
        row.delivered_at = utcnow()
        row.last_error = outcome.refusal[:MAX_ERROR_CHARS] or None
        session.add(row)
        session.commit()
    if refused:
        log.warning("digest %s delivered, but %s", week.label, outcome.refusal)
    return outcome


def deliver_waiting(
    engine: Engine, settings: Settings, context: ssl.SSLContext | None = None
) -> list[DeliveryOutcome]:
    """Send every queued digest, oldest week first; stop at the first failure (same server)."""
    with Session(engine) as session:
        waiting = list(
            session.exec(
                select(DigestDelivery.week)
                .where(DigestDelivery.state == DeliveryState.PENDING)
                .order_by(DigestDelivery.week)
            )
        )
    outcomes = []
    for label in waiting:
        outcome = deliver_week(
            engine, settings, Week.parse(label, settings.digest.timezone), context
        )
        outcomes.append(outcome)
        if not outcome.delivered:
            break
    return outcomes
