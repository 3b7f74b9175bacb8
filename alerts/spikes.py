"""Spike detection: a burst of negative mentions per brand and language is one crisis.

The window's count of negative mentions is compared with the baseline's rate per window (the
`baseline` period just before it). A spike raises one crisis alert with examples; while it lasts,
the burst's negative mentions are folded into it instead of alerting one by one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, select

from alerts.outbox import CRISIS, CRITICAL
from alerts.rules import EXCERPT_CHARS, UNATTRIBUTED
from alerts.sinks import shorten
from config.schema import Settings
from listener.brands import brand_of
from listener.enums import Sentiment, Urgency
from listener.models import Alert, Classification, Mention

log = logging.getLogger(__name__)
EXAMPLE_CHARS = 200


@dataclass
class Burst:
    brand: str
    language: str
    recent: list[tuple[Mention, Classification]] = field(default_factory=list)
    baseline_count: int = 0


class SpikeDetector:
    """Asked once per negative mention while routing; remembers answers for the cycle."""

    def __init__(self, settings: Settings, now: datetime) -> None:
        self.settings = settings
        self.config = settings.slack.spike
        self.now = now
        self._active: dict[tuple[str, str], bool] = {}
        self.folded = 0

    def _burst(self, session: Session, brand: str, language: str) -> Burst:
        config = self.config
        window_start = self.now - config.window
        rows = session.exec(
            select(Mention, Classification)
            .join(Classification, Classification.mention_id == Mention.id)
            .where(
                Classification.language == language,
                Classification.sentiment == Sentiment.NEGATIVE,
                Mention.duplicate_of_id.is_(None),  # type: ignore[union-attr]
                Mention.created_at >= window_start - config.baseline,
                Mention.created_at <= self.now,
            )
        )
        burst = Burst(brand, language)
        for mention, classification in rows:
            if (brand_of(mention, self.settings) or UNATTRIBUTED) != brand:
                continue
            if mention.created_at >= window_start:
                burst.recent.append((mention, classification))
            else:
                burst.baseline_count += 1
        return burst

    def is_spike(self, burst: Burst) -> bool:
        config = self.config
        per_window = burst.baseline_count * (config.window / config.baseline)
        count = len(burst.recent)
        return count >= config.min_mentions and count >= config.ratio * max(per_window, 1.0)

    def fold(self, session: Session, mention: Mention, c: Classification) -> bool:
        """True when the mention belongs to a spike (its own alerts are then not raised)."""
        if not self.config.enabled or c.sentiment != Sentiment.NEGATIVE:
            return False
        if not self.now - self.config.window <= mention.created_at <= self.now:
            return False  # an old mention arriving late is no part of today's burst
        key = (brand_of(mention, self.settings) or UNATTRIBUTED, c.language)
        if key not in self._active:
            burst = self._burst(session, *key)
            self._active[key] = self.is_spike(burst)
            if self._active[key] and not self._recent_crisis(session, *key):
                session.add(self.crisis_alert(burst))
                log.warning(
                    "alerts: spike of %d negative mentions (%s, %s); one crisis alert",
                    len(burst.recent),
                    *key,
                )
        if self._active[key]:
            self.folded += 1
        return self._active[key]

    def _recent_crisis(self, session: Session, brand: str, language: str) -> bool:
        prefix = f"spike:{brand}:{language}:"
        query = select(Alert.id).where(
            Alert.kind == CRISIS,
            Alert.key.startswith(prefix),  # type: ignore[attr-defined]
            Alert.created_at >= self.now - self.config.window,
        )
        return session.exec(query).first() is not None

    def crisis_alert(self, burst: Burst) -> Alert:
        config = self.config
        examples = sorted(
            burst.recent,
            key=lambda row: (Urgency.parse(row[1].urgency), row[0].author_followers or 0),
            reverse=True,
        )[: config.examples]
        per_window = burst.baseline_count * (config.window / config.baseline)
        minutes = int(config.window.total_seconds() // 60)
        lines = [
            f"{len(burst.recent)} negative mentions of {burst.brand} in {burst.language} in the"
            f" last {minutes} min (usually about {per_window:.1f}).",
            "Examples:",
        ]
        for mention, classification in examples:
            author = f"@{mention.author_handle}" if mention.author_handle else "unknown"
            text = shorten(" ".join(mention.text.split()), EXAMPLE_CHARS)
            url = f" {mention.url}" if mention.url else ""
            lines.append(f"• {author} on {mention.source} ({classification.urgency}): {text}{url}")
        return Alert(
            key=f"spike:{burst.brand}:{burst.language}:{self.now:%Y%m%dT%H%M}",
            kind=CRISIS,
            level=CRITICAL,
            channel=config.channel,
            title=f"CRISIS: spike of negative mentions of {burst.brand} ({burst.language})",
            body=shorten("\n".join(lines), EXCERPT_CHARS * 4),
            notify=config.notify,
        )
