"""The pipeline: collect → store → classify → respond → route → deliver.

Every stage finds its work in the database (mentions at the previous stage, alerts not yet
delivered) and commits its output together with the mention's new stage, batch by batch. A crash
or restart therefore loses nothing and repeats nothing; the next run picks up where it stopped.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import Engine, Select
from sqlmodel import Session, select

from alerts.outbox import (
    DRAFT,
    MAX_ERROR_CHARS,
    RATE_LIMITED,
    draft_blocks,
    earlier_alert,
    queue_alerts,
    queue_reviews,
    rate_limited_until,
    ready,
    reraise_due,
    supersede_if_stale,
)
from alerts.sinks import CHANNEL, MESSAGE, AlertSink, DeliveryError, build_sink
from alerts.spikes import SpikeDetector
from config.schema import Settings
from listener import failpoints
from listener.enums import DeliveryState
from listener.models import Alert, Classification, Mention, ReplyDraft, SourceCursor, Stage, utcnow
from listener.nlp import Classifier, Prediction, TextInput, load_classifier
from listener.nlp.language import LanguageIdentifier
from listener.recheck import RecheckOutcome, recheck_reactions
from listener.sources import Source, SourceSet, build_sources
from listener.sources.common import ItemError, fit_for_storage
from listener.storage import InsertResult, is_transient_db_error, store_mentions
from responders import ReplyDrafter

log = logging.getLogger(__name__)
Query = TypeVar("Query", bound=Select)


@dataclass
class SourceOutcome:
    fetched: int = 0
    stored: int = 0
    already_stored: int = 0
    cross_posts: int = 0
    rejected: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None


@dataclass
class CycleReport:
    sources: dict[str, SourceOutcome] = field(default_factory=dict)
    classified: int = 0
    drafted: int = 0
    no_reply: Counter[str] = field(default_factory=Counter)
    alerts_created: int = 0
    folded_into_spikes: int = 0
    reviews_queued: int = 0
    reraised: int = 0
    delivered: int = 0
    delivery_errors: list[str] = field(default_factory=list)  # rows that wait for a retry
    refused: list[str] = field(default_factory=list)  # rows failed for good, never retried
    classifier: str = ""
    rechecks: dict[str, RecheckOutcome] = field(default_factory=dict)


@dataclass
class DeliveryRun:
    """What one pass over the outbox did."""

    delivered: int = 0
    waiting: list[str] = field(default_factory=list)  # why rows wait for the next cycle
    refused: list[str] = field(default_factory=list)  # rows failed for good
    held_channels: set[str] = field(default_factory=set)  # channels Slack refuses this cycle


def classification_of(
    mention_id: int | None, language: str, prediction: Prediction, classifier: Classifier
) -> Classification:
    """The stored form of a prediction, naming the classifier that made it."""
    return Classification(
        mention_id=mention_id,
        language=language,
        sentiment=prediction.sentiment.value,
        score_negative=prediction.scores["negative"],
        score_neutral=prediction.scores["neutral"],
        score_positive=prediction.scores["positive"],
        urgency=prediction.urgency.label,
        urgency_score=prediction.urgency_score,
        urgency_reasons=prediction.reasons,
        intent=prediction.intent.value,
        model_name=classifier.name,
        model_version=classifier.version,
    )


def _storable(mentions: list[Mention]) -> tuple[list[Mention], list[str]]:
    """The mentions fitted to their columns, and why each that cannot be was left out."""
    kept: list[Mention] = []
    rejected: list[str] = []
    for mention in mentions:
        try:
            kept.append(fit_for_storage(mention))
        except ItemError as error:
            rejected.append(f"item {mention.native_id[:80]!r}: {error}")
    return kept, rejected


def _record_refusal(session: Session, alert: Alert, error: Exception, now: datetime) -> str:
    """A row that can never be sent (a message Slack refuses, a draft deleted since): failed,
    not retried; what to report."""
    alert.state, alert.last_error = DeliveryState.FAILED, str(error)[:MAX_ERROR_CHARS]
    alert.failed_at = now
    session.add(alert)
    session.commit()
    message = f"alert #{alert.id} to {alert.channel} not sent: {alert.last_error}"
    log.error("alerts: %s", message)
    return message


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        sources: SourceSet,
        classifier: Classifier,
        sink: AlertSink,
        clock: Callable[[], datetime] = utcnow,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sources = sources
        self.classifier = classifier
        self.sink = sink
        self.clock = clock
        self.stop = stop or threading.Event()
        self.languages = LanguageIdentifier(settings.languages)
        self.drafter = ReplyDrafter(settings, clock=clock)
        self.batch_size = settings.model.batch_size
        self._rng = random.Random()  # noqa: S311  (jitter, not cryptography)
        self._intervals = {s.name: s.interval for s in settings.sources}

    @classmethod
    def build(cls, settings: Settings, engine: Engine, **kwargs) -> Pipeline:  # type: ignore[no-untyped-def]
        """Wire the configured sources, classifier and sink; each logs whether it is enabled."""
        return cls(
            settings,
            engine,
            sources=kwargs.pop("sources", None) or build_sources(settings),
            classifier=kwargs.pop("classifier", None) or load_classifier(settings.model),
            sink=kwargs.pop("sink", None) or build_sink(settings),
            **kwargs,
        )

    # -- collect ---------------------------------------------------------------------------

    def collect(self, source: Source, *, respect_backoff: bool = True) -> SourceOutcome:
        """Fetch one source and commit its mentions together with the advanced cursor.

        A fetch or a store that fails is recorded as this source's failure (last error, back
        off); a database that is briefly unavailable propagates, for the caller to retry.
        """
        with Session(self.engine) as session:
            state = session.get(SourceCursor, (source.name, "")) or SourceCursor(source=source.name)
            now = self.clock()
            if respect_backoff and state.next_attempt_at and state.next_attempt_at > now:
                until = state.next_attempt_at.isoformat(timespec="seconds")
                return SourceOutcome(skipped=f"backing off after errors until {until}")
            cursor = state.cursor
        try:
            result = source.fetch(cursor)
        except Exception as error:  # noqa: BLE001  (any fault of one source must not stop the others)
            return self._record_failure(source, error, "fetch")
        failpoints.hit("after_fetch")
        mentions, rejected = _storable(result.mentions)
        rejected = result.rejected + rejected
        try:
            inserted = self._store(source, mentions, result.cursor)
        except Exception as error:  # one bad item of this source must not stop the others
            if is_transient_db_error(error):
                raise  # the database, not this source: the caller retries the step
            return self._record_failure(source, error, "store")
        for problem in rejected:
            log.warning("source %s: skipped a malformed item: %s", source.name, problem)
        return SourceOutcome(
            fetched=len(result.mentions),
            stored=inserted.inserted,
            already_stored=inserted.duplicates,
            cross_posts=inserted.cross_posts,
            rejected=rejected,
        )

    def _store(self, source: Source, mentions: list[Mention], cursor: str | None) -> InsertResult:
        with Session(self.engine) as session:
            inserted = store_mentions(session, mentions)
            state = session.get(SourceCursor, (source.name, "")) or SourceCursor(source=source.name)
            state.cursor = cursor
            state.succeeded(self.clock())
            session.add(state)
            session.commit()
        return inserted

    def _record_failure(self, source: Source, error: Exception, step: str) -> SourceOutcome:
        message = f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
        log.error("source %s: %s failed: %s", source.name, step, message, exc_info=error)
        with Session(self.engine) as session:
            state = session.get(SourceCursor, (source.name, "")) or SourceCursor(source=source.name)
            interval = self._intervals.get(source.name, timedelta(minutes=5))
            state.failed(message, self.clock(), interval, self._rng)
            session.add(state)
            session.commit()
        return SourceOutcome(error=message)

    def collect_all(self, *, respect_backoff: bool = True) -> dict[str, SourceOutcome]:
        outcomes = {}
        for source in self.sources.enabled:
            if self.stop.is_set():
                break
            outcomes[source.name] = self.collect(source, respect_backoff=respect_backoff)
        return outcomes

    # -- process ---------------------------------------------------------------------------

    def _claiming(self, query: Query, table: type) -> Query:
        """On PostgreSQL, lock the rows taken until commit and skip rows another worker holds.

        Workers on many machines then share a stage without ever taking the same mention; a
        worker killed mid-batch loses its connection, its transaction rolls back and the rows
        unlock for the next claim. SQLite (one process) is left exactly as it was.
        """
        if self.engine.dialect.name == "postgresql":
            return query.with_for_update(skip_locked=True, of=table)
        return query

    def _batch(self, session: Session, stage: Stage) -> list[Mention]:
        query = select(Mention).where(Mention.stage == stage).order_by(Mention.id)
        return list(session.exec(self._claiming(query.limit(self.batch_size), Mention)))

    def _classified_batch(
        self, session: Session, stage: Stage
    ) -> list[tuple[Mention, Classification]]:
        query = (
            select(Mention, Classification)
            .join(Classification, Classification.mention_id == Mention.id)
            .where(Mention.stage == stage)
            .order_by(Mention.id)
        )
        return list(session.exec(self._claiming(query.limit(self.batch_size), Mention)))

    def _more(self, batches: int, max_batches: int | None) -> bool:
        """Go on until stopped or, for a worker's task, after `max_batches` (None: no limit)."""
        return not self.stop.is_set() and (max_batches is None or batches < max_batches)

    def classify(self, max_batches: int | None = None) -> int:
        done = batches = 0
        while self._more(batches, max_batches):
            batches += 1
            with Session(self.engine) as session:
                mentions = self._batch(session, Stage.COLLECTED)
                if not mentions:
                    break
                languages = [self.languages.identify(m.text, m.language) for m in mentions]
                inputs = [
                    TextInput(m.text, lang, m.rating, m.author_followers, m.source, m.engagement)
                    for m, lang in zip(mentions, languages, strict=True)
                ]
                predictions = self.classifier.classify(inputs)
                for mention, language, prediction in zip(
                    mentions, languages, predictions, strict=True
                ):
                    session.add(
                        classification_of(mention.id, language, prediction, self.classifier)
                    )
                    mention.stage = Stage.CLASSIFIED
                    session.add(mention)
                failpoints.hit("mid_classify_batch")
                session.commit()
                done += len(mentions)
            failpoints.hit("classify_batch")
        return done

    def respond(self, max_batches: int | None = None) -> tuple[int, Counter[str]]:
        drafted = batches = 0
        no_reply: Counter[str] = Counter()
        while self._more(batches, max_batches):
            batches += 1
            with Session(self.engine) as session:
                batch = self._classified_batch(session, Stage.CLASSIFIED)
                if not batch:
                    break
                for mention, classification in batch:
                    decision = self.drafter.decide(mention, classification)
                    if decision.draft:
                        session.add(ReplyDraft(mention_id=mention.id, **vars(decision.draft)))
                        drafted += 1
                    else:
                        no_reply[decision.reason.split(":")[0]] += 1
                    mention.stage = Stage.RESPONDED
                    session.add(mention)
                session.commit()
        return drafted, no_reply

    def route(self, report: CycleReport | None = None, max_batches: int | None = None) -> int:
        """Alerts per matching route; a spike's mentions fold into one crisis alert instead."""
        created = 0
        now = self.clock()
        spikes = SpikeDetector(self.settings, now)
        batches = 0
        while self._more(batches, max_batches):
            batches += 1
            with Session(self.engine) as session:
                batch = self._classified_batch(session, Stage.RESPONDED)
                if not batch:
                    break
                for mention, classification in batch:
                    folded = mention.duplicate_of_id is None and spikes.fold(
                        session, mention, classification
                    )
                    if not folded:
                        created += queue_alerts(
                            session, mention, classification, self.settings, now
                        )
                    mention.stage = Stage.ROUTED
                    session.add(mention)
                session.commit()
        if report is not None:
            report.folded_into_spikes = spikes.folded
        return created

    def queue_reviews(self) -> int:
        """Outbox rows for pending drafts, where the sink offers review (Slack)."""
        if not (self.sink.interactive and self.settings.slack.review.post_drafts):
            return 0
        with Session(self.engine) as session:
            queued = queue_reviews(session, self.settings)
            session.commit()
        return queued

    def reraise(self) -> int:
        """Repeat unacknowledged critical alerts, where they can be acknowledged at all."""
        if not self.sink.interactive:
            return 0
        with Session(self.engine) as session:
            count = reraise_due(session, self.settings, self.clock())
            session.commit()
        return count

    def deliver(self) -> DeliveryRun:
        """Send pending rows in order, alerts before review messages.

        Rows still waiting (quiet hours, Slack's Retry-After) are left for later; while a
        Retry-After runs, nothing is sent at all, and an outage stops the run. A channel Slack
        refuses (not found, the app not in it) holds only that channel's rows until the next
        cycle; a message it refuses for good (too long) is marked failed; the others go on.
        """
        run = DeliveryRun()
        while not self.stop.is_set():
            with Session(self.engine) as session:
                now = self.clock()
                until = rate_limited_until(session, now)
                if until is not None:
                    run.waiting.append(f"Slack rate limit: waiting until {until.isoformat()}")
                    return run
                query = (
                    select(Alert)
                    .where(Alert.state == DeliveryState.PENDING, ready(now))
                    .where(Alert.channel.not_in(run.held_channels))  # type: ignore[attr-defined]
                    .order_by(Alert.kind == DRAFT, Alert.id)
                )
                alert = session.exec(self._claiming(query.limit(1), Alert)).first()
                if alert is None:
                    return run
                if supersede_if_stale(session, alert):
                    session.commit()
                    continue
                if not self._attempt(session, alert, now, run):
                    return run
        return run

    def _attempt(self, session: Session, alert: Alert, now: datetime, run: DeliveryRun) -> bool:
        """Send one row and record the outcome in the database and `run`; False: stop the run."""
        alert.attempts += 1
        alert.sink = self.sink.name
        try:
            blocks = draft_blocks(session, alert) if alert.kind == DRAFT else None
        except LookupError as error:  # its draft is gone: nothing left to review
            _record_refusal(session, alert, error, now)
            return True
        try:
            earlier = earlier_alert(session, alert)
            alert.external_id = self.sink.deliver(alert, blocks, earlier)
        except DeliveryError as error:
            return self._record_delivery_error(session, alert, error, now, run)
        except Exception as error:
            if is_transient_db_error(error):
                raise  # the database, not the sink: the caller retries the step
            log.exception("alerts: the %s sink failed on alert #%s", self.sink.name, alert.id)
            fault = DeliveryError(f"{type(error).__name__}: {error}")  # counted: status shows it
            return self._record_delivery_error(session, alert, fault, now, run)
        alert.state = DeliveryState.DELIVERED
        alert.delivered_at = self.clock()
        alert.last_error = None
        alert.next_attempt_at = None
        session.add(alert)
        session.commit()
        run.delivered += 1
        return True

    def _record_delivery_error(
        self, session: Session, alert: Alert, error: DeliveryError, now: datetime, run: DeliveryRun
    ) -> bool:
        if error.scope == MESSAGE:  # this message can never be sent; the others still go out
            run.refused.append(_record_refusal(session, alert, error, now))
            return True
        self._record_delivery_failure(session, alert, error, now)
        if error.scope == CHANNEL:  # a setup mistake to fix: that channel waits, the rest go on
            run.held_channels.add(alert.channel)
            run.waiting.append(f"{alert.channel}: {error}")
            return True
        run.waiting.append(str(error))
        return False

    def _record_delivery_failure(
        self, session: Session, alert: Alert, error: DeliveryError, now: datetime
    ) -> None:
        alert.last_error = str(error)[:MAX_ERROR_CHARS]
        if error.retry_after is not None:
            alert.next_attempt_at = now + timedelta(seconds=error.retry_after)
            alert.last_error = f"{RATE_LIMITED} for {error.retry_after:g}s: {alert.last_error}"
        session.add(alert)
        session.commit()
        log.warning("alerts: delivery failed, will retry later: %s", alert.last_error)

    def process(self, report: CycleReport) -> CycleReport:
        report.classifier = f"{self.classifier.name} {self.classifier.version}"
        report.classified = self.classify()
        failpoints.hit("after_classify")
        report.drafted, report.no_reply = self.respond()
        failpoints.hit("after_respond")
        report.alerts_created = self.route(report)
        failpoints.hit("after_route")
        return self.send_outbox(report)

    def send_outbox(self, report: CycleReport) -> CycleReport:
        """Queue review messages and re-raises, then deliver every row that is due."""
        report.reviews_queued = self.queue_reviews()
        report.reraised = self.reraise()
        run = self.deliver()
        report.delivered, report.delivery_errors, report.refused = (
            run.delivered,
            run.waiting,
            run.refused,
        )
        return report

    def recheck(self) -> dict[str, RecheckOutcome]:
        """Re-read recent complaints' reactions where due; escalate and alert the viral ones."""
        return recheck_reactions(self.engine, self.sources.enabled, self.settings, self.clock())

    def run_cycle(self, *, respect_backoff: bool = False) -> CycleReport:
        report = CycleReport(sources=self.collect_all(respect_backoff=respect_backoff))
        failpoints.hit("after_collect")
        report.rechecks = self.recheck()
        return self.process(report)
