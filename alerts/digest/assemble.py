"""One digest: every brand's figures for a week and the week before, spikes, complaints, alerts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from alerts.digest.complaints import ComplaintGroup, complaint_groups
from alerts.digest.figures import (
    HISTORY_DAYS,
    MIN_SPIKE,
    SPIKE_RATIO,
    SPIKES_SHOWN,
    UNCLASSIFIED,
    BrandFigures,
    FigureQueries,
    Headline,
    Spike,
)
from alerts.digest.week import Week
from alerts.rules import UNATTRIBUTED
from config.schema import Settings
from listener.enums import Sentiment
from listener.models import utcnow

SENTIMENTS = (Sentiment.NEGATIVE.value, Sentiment.NEUTRAL.value, Sentiment.POSITIVE.value)
MIN_HISTORY_DAYS = 7  # fewer days before the week make every busy day look like a spike


@dataclass
class BrandDigest(BrandFigures):
    complaint_groups: list[ComplaintGroup] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.current.mentions == 0 and not self.alerts_by_level


@dataclass
class Digest:
    week: Week
    brands: list[BrandDigest]
    generated_at: datetime
    complaints_sampled: bool = False

    @property
    def empty(self) -> bool:
        return all(brand.empty for brand in self.brands)


def _series(daily: dict[tuple[int, str, str], int]) -> dict[str, list[int]]:
    """Sentiment -> count per day of the week (days HISTORY_DAYS … HISTORY_DAYS+6)."""
    series = {name: [0] * 7 for name in SENTIMENTS}
    for (day, sentiment, _intent), count in daily.items():
        if day >= HISTORY_DAYS:
            series.setdefault(sentiment, [0] * 7)[day - HISTORY_DAYS] += count
    if not any(series.get(UNCLASSIFIED, [])):
        series.pop(UNCLASSIFIED, None)
    return series


def _spikes(daily: dict[tuple[int, str, str], int], week: Week) -> tuple[list[Spike], int]:
    """Days of the week whose volume (all, or negative per intent) beat the usual per-day mean."""
    per: dict[tuple[str, int], int] = {}
    for (day, sentiment, intent), count in daily.items():
        per[("all", day)] = per.get(("all", day), 0) + count
        if sentiment == Sentiment.NEGATIVE and intent:
            per[(intent, day)] = per.get((intent, day), 0) + count
    history = [day for (_what, day) in per if day < HISTORY_DAYS]
    history_days = HISTORY_DAYS - min(history) if history else 0
    if history_days < MIN_HISTORY_DAYS:
        return [], history_days
    found = []
    for what in {what for what, _day in per}:
        usual = sum(per.get((what, d), 0) for d in range(HISTORY_DAYS)) / history_days
        for offset, day in enumerate(week.days):
            count = per.get((what, HISTORY_DAYS + offset), 0)
            if count >= MIN_SPIKE and count >= SPIKE_RATIO * max(usual, 1.0):
                found.append(Spike(day, what, count, usual))
    found.sort(key=lambda spike: (-(spike.count - spike.usual), spike.day, spike.what))
    return found[:SPIKES_SHOWN], history_days


def build_digest(engine: Engine, settings: Settings, week: Week) -> Digest:
    """Query everything the digest shows for `week` (in the digest's time zone)."""
    with Session(engine) as session:
        queries = FigureQueries(session, settings)
        current = queries.headline(week)
        previous = queries.headline(week.previous())
        languages = queries.by_language(week)
        sources = queries.by_source(week)
        daily = queries.daily(week)
        alert_counts, alert_rows = queries.alerts(week)
        complaints = queries.complaints(week)
        groups, sampled = complaint_groups(queries, week, complaints)
    names = [brand.name for brand in settings.brands]
    if any(UNATTRIBUTED in found for found in (current, previous, alert_counts)):
        names.append(UNATTRIBUTED)
    brands = []
    for name in names:
        spikes, history_days = _spikes(daily.get(name, {}), week)
        brands.append(
            BrandDigest(
                brand=name,
                current=current.get(name, Headline()),
                previous=previous.get(name, Headline()),
                daily=_series(daily.get(name, {})),
                by_language=dict(languages.get(name, {})),
                by_source=sources.get(name, {}),
                complaints=complaints.get(name, {}),
                spikes=spikes,
                history_days=history_days,
                alerts_by_level=alert_counts.get(name, {}),
                alerts=alert_rows.get(name, []),
                complaint_groups=groups.get(name, []),
            )
        )
    return Digest(week=week, brands=brands, generated_at=utcnow(), complaints_sampled=sampled)
