"""Database tables: the only contract between stages.

Each stage reads the rows the previous one left and moves a mention's `stage` forward in the same
transaction that writes its own output, so a crash at any point redoes the step, never half of it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import IntEnum
from random import Random
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from listener.enums import DeliveryState, DraftStatus

MAX_BACKOFF = timedelta(hours=1)
PLATFORM_CHARS = 32  # a mention's platform label (`source`): the config's rss `platform` too


def utcnow() -> datetime:
    return datetime.now(UTC)


class Stage(IntEnum):
    """How far the pipeline has taken a mention."""

    COLLECTED = 0
    CLASSIFIED = 1
    RESPONDED = 2  # a draft was written, or the responder decided none is needed
    ROUTED = 3  # alert rows (if any) exist; delivery is the outbox's job


class Mention(SQLModel, table=True):
    __tablename__ = "mentions"
    __table_args__ = (
        UniqueConstraint("source", "native_id", name="uq_mentions_source_native_id"),
        Index("ix_mentions_created_at", "created_at"),
        Index("ix_mentions_stage", "stage"),
        Index("ix_mentions_content_hash", "content_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(
        max_length=PLATFORM_CHARS, description="Platform: twitter, reddit, appstore, ..."
    )
    collector: str = Field(max_length=64, description="Configured source that first found it")
    native_id: str = Field(max_length=256)
    url: str | None = None
    author_handle: str | None = Field(default=None, max_length=256, index=True)
    author_name: str | None = None
    author_followers: int | None = None
    engagement: int | None = Field(
        default=None,
        description="Likes, reposts, replies (and the platform's like) when collected; None where"
        " the platform shows none",
    )
    text: str
    language: str | None = Field(default=None, max_length=16, description="Platform's tag")
    created_at: datetime
    collected_at: datetime = Field(default_factory=utcnow)
    rating: int | None = None
    raw: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    content_hash: str | None = Field(default=None, max_length=64)
    duplicate_of_id: int | None = Field(default=None, foreign_key="mentions.id")
    stage: int = Field(default=Stage.COLLECTED)


class Classification(SQLModel, table=True):
    __tablename__ = "classifications"

    id: int | None = Field(default=None, primary_key=True)
    mention_id: int = Field(foreign_key="mentions.id", unique=True)
    language: str = Field(max_length=16)
    sentiment: str = Field(max_length=16)
    score_negative: float
    score_neutral: float
    score_positive: float
    urgency: str = Field(max_length=16)
    urgency_score: float
    urgency_reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    intent: str = Field(max_length=32)
    model_name: str = Field(max_length=128)
    # The weights' version and every rule a team changed (keywords, virality bars): ~100 at most.
    model_version: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow)


class ReplyDraft(SQLModel, table=True):
    __tablename__ = "reply_drafts"

    id: int | None = Field(default=None, primary_key=True)
    mention_id: int = Field(foreign_key="mentions.id", unique=True)
    text: str
    locale: str = Field(max_length=16)
    formality: str = Field(max_length=16, description="formal or informal register")
    intent: str = Field(max_length=32)
    channel: str = Field(max_length=16, description="public reply or dm")
    language_source: str = Field(
        max_length=16, description="mention, market or fallback: where the reply language came from"
    )
    status: str = Field(default=DraftStatus.PENDING, max_length=16, index=True)
    reviewer: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    reviewed_at: datetime | None = None
    sent_at: datetime | None = None
    original_text: str | None = Field(default=None, description="The drafter's text, once edited")
    reject_reason: str | None = None
    assignee: str | None = Field(default=None, description="Slack user id who took the draft")
    send_error: str | None = Field(
        default=None,
        description="Why posting the approved reply failed; cleared when it is retried",
    )


class Alert(SQLModel, table=True):
    """An outbox row: delivered only once the sink accepted it."""

    __tablename__ = "alerts"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True, description="Idempotency key")
    mention_id: int | None = Field(default=None, foreign_key="mentions.id", index=True)
    level: str = Field(max_length=16)
    channel: str = Field(max_length=128)
    title: str
    body: str
    notify: str | None = None
    state: str = Field(default=DeliveryState.PENDING, max_length=16, index=True)
    attempts: int = 0
    last_error: str | None = Field(
        default=None, description="Why it is not delivered: its last error, or what superseded it"
    )
    sink: str | None = Field(default=None, max_length=32)
    external_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None
    kind: str = Field(
        default="alert", max_length=16, description="alert, crisis, reraise or draft (review)"
    )
    draft_id: int | None = Field(default=None, foreign_key="reply_drafts.id", index=True)
    parent_id: int | None = Field(
        default=None, foreign_key="alerts.id", description="The alert a re-raise repeats"
    )
    next_attempt_at: datetime | None = Field(
        default=None, description="Not sent before this: Slack's Retry-After, or quiet hours"
    )
    external_channel: str | None = Field(default=None, description="Slack channel id posted to")
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    reraised_at: datetime | None = None
    failed_at: datetime | None = Field(default=None, description="When it was refused for good")


class SourceCursor(SQLModel, table=True):
    __tablename__ = "source_cursors"

    source: str = Field(primary_key=True, max_length=64)
    query_key: str = Field(primary_key=True, default="", max_length=200)
    cursor: str | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    next_attempt_at: datetime | None = Field(
        default=None, description="Backing off after failures: not fetched again before this"
    )
    updated_at: datetime = Field(default_factory=utcnow)

    def succeeded(self, now: datetime) -> None:
        self.last_success_at = now
        self.consecutive_failures = 0
        self.next_attempt_at = None
        self.updated_at = now

    def failed(self, message: str, now: datetime, interval: timedelta, rng: Random) -> None:
        """Record the error and back off: exponential in the failures in a row, capped, with
        ±20 % jitter so that sources failing together do not retry together."""
        self.consecutive_failures += 1
        self.last_error = message
        self.last_error_at = now
        delay = min(interval * 2 ** (self.consecutive_failures - 1), MAX_BACKOFF)
        self.next_attempt_at = now + delay * rng.uniform(0.8, 1.2)
        self.updated_at = now


class DigestDelivery(SQLModel, table=True):
    """One weekly digest per ISO week: sent once, retried while SMTP is down."""

    __tablename__ = "digest_deliveries"

    week: str = Field(primary_key=True, max_length=16, description="ISO week, like 2026-W47")
    state: str = Field(default=DeliveryState.PENDING, max_length=16, index=True)
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
