"""The digest's numbers, aggregated by the database (GROUP BY), per brand, for one ISO week.

Every count is one SQL query grouped by brand, so a week of 100,000 mentions costs a few table
scans, not 100,000 Python objects. What counts:

- mentions: posted (`created_at`) in the week, cross-posts (`duplicate_of_id`) and the brand's own
  posts left out, so a copied complaint is not counted twice and announcements do not dilute it;
- drafts approved / edited / rejected: reviewed in the week (`sent` drafts were approved first and
  count as approved); time to first draft: drafts written in the week; time to approval: drafts
  approved or edited in the week, both measured from the mention's `created_at`;
- alerts: raised (`alerts.created_at`) in the week.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, case, extract, func, literal, or_, select
from sqlalchemy.orm import Session

from alerts.digest.week import Week
from alerts.outbox import ALERT, CRISIS
from alerts.rules import UNATTRIBUTED
from config.schema import Settings
from listener.brands import brand_terms
from listener.enums import DeliveryState, DraftStatus, Sentiment
from listener.models import Alert, Classification, Mention, ReplyDraft

UNCLASSIFIED = "unclassified"
URGENT = ("high", "critical")
APPROVED = (DraftStatus.APPROVED, DraftStatus.SENT)
HISTORY_DAYS = 28  # the "usual" daily volume a spike is measured against
MIN_SPIKE = 5  # fewer mentions in a day is noise, however high the ratio
SPIKE_RATIO = 2.0
SPIKES_SHOWN = 5
ALERTS_SHOWN = 10


@dataclass(frozen=True)
class Headline:
    mentions: int = 0
    classified: int = 0
    negative: int = 0
    positive: int = 0
    urgent: int = 0
    approved: int = 0
    edited: int = 0
    rejected: int = 0
    median_to_draft_s: float | None = None
    median_to_approval_s: float | None = None

    @property
    def share_negative(self) -> float | None:
        """Percent of classified mentions that are negative."""
        return 100 * self.negative / self.classified if self.classified else None

    @property
    def net_sentiment(self) -> float | None:
        """Positive minus negative, in points of the classified mentions (-100 … +100)."""
        return 100 * (self.positive - self.negative) / self.classified if self.classified else None


@dataclass(frozen=True)
class Spike:
    day: date  # in the digest's time zone
    what: str  # an intent, or "all" for the total volume
    count: int
    usual: float  # mean per day over the previous weeks


@dataclass(frozen=True)
class AlertRow:
    level: str
    title: str
    channel: str
    state: str
    url: str | None
    created_at: datetime


@dataclass
class BrandFigures:
    brand: str
    current: Headline
    previous: Headline
    daily: dict[str, list[int]] = field(default_factory=dict)  # sentiment -> 7 counts
    by_language: dict[str, dict[str, int]] = field(default_factory=dict)  # lang -> sentiment
    by_source: dict[str, int] = field(default_factory=dict)
    complaints: dict[str, int] = field(default_factory=dict)  # intent -> negative mentions
    spikes: list[Spike] = field(default_factory=list)
    history_days: int = 0  # days of data before the week that spikes were measured against
    alerts_by_level: dict[str, int] = field(default_factory=dict)
    alerts: list[AlertRow] = field(default_factory=list)


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def brand_expression(settings: Settings) -> ColumnElement[Any]:
    """Which brand a mention is about: the only one, or the first whose name or keyword it holds."""
    if len(settings.brands) == 1:
        return literal(settings.brands[0].name)
    text = func.lower(Mention.text)
    whens = []
    for brand in settings.brands:
        terms = {term.lower() for term in brand_terms(brand)}
        matches = [text.like(f"%{_like_escape(t)}%", escape="\\") for t in sorted(terms)]
        whens.append((or_(*matches), brand.name))
    return case(*whens, else_=literal(UNATTRIBUTED))


def counted_mentions(settings: Settings) -> ColumnElement[bool]:
    """Mentions that count: not a cross-post of another, not the brand's own post."""
    own = sorted(set().union(*(brand.own_handles() for brand in settings.brands)))
    not_own = or_(
        Mention.author_handle.is_(None),  # type: ignore[union-attr]
        func.lower(Mention.author_handle).not_in(own),
    )
    return Mention.duplicate_of_id.is_(None) & not_own  # type: ignore[union-attr]


def in_range(column: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return (column >= start) & (column < end)


def day_bucket(column: Any, bounds: list[datetime]) -> ColumnElement[int]:
    """Index of the local day holding `column`, given the UTC instants of each local midnight."""
    whens = [(column < bound, index) for index, bound in enumerate(bounds[1:-1])]
    return case(*whens, else_=len(bounds) - 2)


def seconds_between(later: Any, earlier: Any, dialect: str) -> ColumnElement[float]:
    if dialect == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return extract("epoch", later - earlier)


def _medians(session: Session, query: Select[Any]) -> dict[str, float]:
    """Per key, the median of a (key, value) query, in one SQL query: each key's middle row(s)."""
    sub = query.subquery()
    key, value = sub.c[0], sub.c[1]
    ranked = select(
        key.label("key"),
        value.label("value"),
        func.row_number().over(partition_by=key, order_by=value).label("n"),
        func.count().over(partition_by=key).label("total"),
    ).subquery()
    n, total = ranked.c.n, ranked.c.total
    middle = or_(n == (total + 1) // 2, n == total // 2 + 1)  # one row if odd, two if even
    query = select(ranked.c.key, func.avg(ranked.c.value)).where(middle).group_by(ranked.c.key)
    return {found: float(median) for found, median in session.execute(query)}


class FigureQueries:
    """The grouped queries behind one digest; each returns rows keyed by brand."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.brand = brand_expression(settings).label("brand")
        self.counted = counted_mentions(settings)
        self.dialect = session.get_bind().dialect.name

    def _week_mentions(self, week: Week, *columns: Any) -> Select[Any]:
        return (
            select(self.brand, *columns, func.count())
            .select_from(Mention)
            .outerjoin(Classification, Classification.mention_id == Mention.id)
            .where(self.counted, in_range(Mention.created_at, week.start, week.end))
        )

    def headline(self, week: Week) -> dict[str, Headline]:
        sentiment = Classification.sentiment
        query = (
            select(
                self.brand,
                func.count(),
                func.count(Classification.id),
                func.sum(case((sentiment == Sentiment.NEGATIVE, 1), else_=0)),
                func.sum(case((sentiment == Sentiment.POSITIVE, 1), else_=0)),
                func.sum(case((Classification.urgency.in_(URGENT), 1), else_=0)),  # type: ignore[attr-defined]
            )
            .select_from(Mention)
            .outerjoin(Classification, Classification.mention_id == Mention.id)
            .where(self.counted, in_range(Mention.created_at, week.start, week.end))
            .group_by(self.brand)
        )
        counts = {
            row[0]: {
                "mentions": row[1],
                "classified": row[2],
                "negative": row[3] or 0,
                "positive": row[4] or 0,
                "urgent": row[5] or 0,
            }
            for row in self.session.execute(query)
        }
        for brand, reviews in self._reviews(week).items():
            counts.setdefault(brand, {}).update(reviews)
        for name, medians in self._medians(week).items():
            for brand, median in medians.items():
                if brand in counts:
                    counts[brand][name] = median
        return {brand: Headline(**values) for brand, values in counts.items()}

    def _reviews(self, week: Week) -> dict[str, dict[str, int]]:
        query = (
            select(self.brand, ReplyDraft.status, func.count())
            .select_from(ReplyDraft)
            .join(Mention, Mention.id == ReplyDraft.mention_id)
            .where(in_range(ReplyDraft.reviewed_at, week.start, week.end))
            .group_by(self.brand, ReplyDraft.status)
        )
        reviews: dict[str, dict[str, int]] = defaultdict(dict)
        for brand, status, count in self.session.execute(query):
            key = "approved" if status in APPROVED else status
            if key in ("approved", "edited", "rejected"):
                reviews[brand][key] = reviews[brand].get(key, 0) + count
        return reviews

    def _medians(self, week: Week) -> dict[str, dict[str, float]]:
        """Headline field -> brand -> median seconds, for the brands that have any."""

        def durations(until: Any) -> Select[Any]:
            return (
                select(self.brand, seconds_between(until, Mention.created_at, self.dialect))
                .select_from(ReplyDraft)
                .join(Mention, Mention.id == ReplyDraft.mention_id)
                .where(in_range(until, week.start, week.end))
            )

        approved = (*APPROVED, DraftStatus.EDITED)
        return {
            "median_to_draft_s": _medians(self.session, durations(ReplyDraft.created_at)),
            "median_to_approval_s": _medians(
                self.session,
                durations(ReplyDraft.reviewed_at).where(ReplyDraft.status.in_(approved)),  # type: ignore[attr-defined]
            ),
        }

    def by_language(self, week: Week) -> dict[str, dict[str, dict[str, int]]]:
        language = func.coalesce(Classification.language, Mention.language, "unknown")
        sentiment = func.coalesce(Classification.sentiment, UNCLASSIFIED)
        query = self._week_mentions(week, language, sentiment).group_by(
            self.brand, language, sentiment
        )
        result: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        for brand, lang, feeling, count in self.session.execute(query):
            result[brand][lang][feeling] = count
        return result

    def by_source(self, week: Week) -> dict[str, dict[str, int]]:
        query = self._week_mentions(week, Mention.source).group_by(self.brand, Mention.source)
        result: dict[str, dict[str, int]] = defaultdict(dict)
        for brand, source, count in self.session.execute(query):
            result[brand][source] = count
        return result

    def complaints(self, week: Week) -> dict[str, dict[str, int]]:
        query = (
            self._week_mentions(week, Classification.intent)
            .where(Classification.sentiment == Sentiment.NEGATIVE)
            .group_by(self.brand, Classification.intent)
        )
        result: dict[str, dict[str, int]] = defaultdict(dict)
        for brand, intent, count in self.session.execute(query):
            result[brand][intent] = count
        return result

    def daily(self, week: Week) -> dict[str, dict[tuple[int, str, str], int]]:
        """(day index, sentiment, intent) -> count, over HISTORY_DAYS before the week and the week.

        Day 0 is HISTORY_DAYS before the Monday; the week is days HISTORY_DAYS … HISTORY_DAYS+6.
        """
        bounds = week.day_bounds(HISTORY_DAYS)
        day = day_bucket(Mention.created_at, bounds).label("day")
        sentiment = func.coalesce(Classification.sentiment, UNCLASSIFIED)
        intent = func.coalesce(Classification.intent, "")
        query = (
            select(self.brand, day, sentiment, intent, func.count())
            .select_from(Mention)
            .outerjoin(Classification, Classification.mention_id == Mention.id)
            .where(self.counted, in_range(Mention.created_at, bounds[0], bounds[-1]))
            .group_by(self.brand, day, sentiment, intent)
        )
        result: dict[str, dict[tuple[int, str, str], int]] = defaultdict(dict)
        for brand, index, feeling, purpose, count in self.session.execute(query):
            result[brand][(index, feeling, purpose)] = count
        return result

    def alerts(self, week: Week) -> tuple[dict[str, dict[str, int]], dict[str, list[AlertRow]]]:
        """Alerts raised in `week` per brand: per-mention and crisis alerts, not the outbox's
        review messages and re-raises, nor alerts superseded or dropped before anyone saw them."""
        base = (
            select()
            .select_from(Alert)
            .outerjoin(Mention, Mention.id == Alert.mention_id)
            .where(
                in_range(Alert.created_at, week.start, week.end),
                Alert.kind.in_((ALERT, CRISIS)),  # type: ignore[attr-defined]
                Alert.state.not_in((DeliveryState.SUPERSEDED, DeliveryState.DROPPED)),  # type: ignore[attr-defined]
            )
        )
        by_level: dict[str, dict[str, int]] = defaultdict(dict)
        grouped = base.add_columns(self.brand, Alert.level, func.count()).group_by(
            self.brand, Alert.level
        )
        for brand, level, count in self.session.execute(grouped):
            by_level[brand][level] = count
        rank = case({"critical": 0, "high": 1, "medium": 2}, value=Alert.level, else_=3)
        order = func.row_number().over(
            partition_by=self.brand, order_by=(rank, Alert.created_at, Alert.id)
        )
        columns = (Alert.level, Alert.title, Alert.channel, Alert.state, Mention.url)
        ranked = base.add_columns(self.brand, *columns, Alert.created_at, order.label("n"))
        sub = ranked.subquery()
        top = select(sub).where(sub.c.n <= ALERTS_SHOWN).order_by(sub.c.brand, sub.c.n)
        rows: dict[str, list[AlertRow]] = defaultdict(list)
        for row in self.session.execute(top):
            brand, level, title, channel, state, url, created = row[:7]
            rows[brand].append(AlertRow(level, title, channel, state, url, created))
        return by_level, rows
