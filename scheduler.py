"""The listener daemon: `python scheduler.py [--config FILE]`.

APScheduler runs each enabled source on its own interval, the processing stages right after
every collection, a re-read of recent complaints' reactions (X, Reddit, Bluesky, Mastodon:
`listener.recheck`) and a daily retention purge. SIGTERM or Ctrl-C stops it after the current step.
One failing source is logged and backs off (exponentially, with jitter) while the others go on.
The weekly digest, when enabled, is mailed on its own cron in its own time zone.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from types import FrameType
from zoneinfo import ZoneInfo

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlmodel import Session

from config.schema import ConfigError, Settings, load_settings
from listener.models import utcnow
from listener.nlp import ModelLoadError
from listener.pipeline import CycleReport, Pipeline
from listener.sources import Source
from listener.storage import (
    DatabaseUnavailable,
    PurgeResult,
    open_database_when_up,
    purge_before,
    retry_database,
)

log = logging.getLogger("listener.scheduler")
PURGE_HOUR = 3
DIGEST_GRACE_S = 6 * 3600
DIGEST_RETRY_MINUTES = 10
RECHECK_POLL_S = 60


class Daemon:
    def __init__(self, settings: Settings, pipeline: Pipeline) -> None:
        self.settings = settings
        self.pipeline = pipeline
        # Stages run one at a time; sources may finish collecting while another cycle processes.
        self._processing = threading.Lock()

    def collect_and_process(self, source: Source) -> None:
        outcome = retry_database(
            lambda: self.pipeline.collect(source), what=f"collect {source.name}"
        )
        if outcome.error or outcome.skipped:
            log.info("source %s: %s", source.name, outcome.error or outcome.skipped)
        else:
            log.info("source %s: %d new mentions", source.name, outcome.stored)
        self.process()

    def process(self) -> None:
        """One processing pass, unless one is running: it, or the minute's next pass, takes what
        was just collected. Waiting for it instead would hold a worker thread per source and
        starve the other jobs of the pool (the nightly purge among them)."""
        if not self._processing.acquire(blocking=False):
            log.debug("processing: a pass is running; the next one takes the new mentions")
            return
        try:
            report = retry_database(lambda: self.pipeline.process(CycleReport()), what="processing")
        finally:
            self._processing.release()
        log.info(
            "processed: %d classified, %d drafted, %d alerts raised, %d delivered",
            report.classified,
            report.drafted,
            report.alerts_created,
            report.delivered,
        )

    def purge(self) -> None:
        now = utcnow()
        cutoff = now - timedelta(days=self.settings.storage.retention_days)
        per_source = {
            source.name: now - timedelta(days=source.retention_days)
            for source in self.settings.sources
            if source.retention_days
        }

        def purge_once() -> PurgeResult:
            with Session(self.pipeline.engine) as session:
                result = purge_before(session, cutoff, per_source)
                session.commit()
                return result

        result = retry_database(purge_once, what="retention purge")
        log.info(
            "retention purge before %s (per source: %s): %s", cutoff.date(), per_source, result
        )

    def send_digest(self) -> None:
        """Queue the last complete week's digest, then deliver whatever is waiting."""
        from alerts.digest.outbox import queue_week
        from alerts.digest.week import Week

        week = Week.last_complete(utcnow(), self.settings.digest.timezone)
        if queue_week(self.pipeline.engine, week):
            log.info("weekly digest %s queued", week.label)
        self.deliver_digests()

    def deliver_digests(self) -> None:
        from alerts.digest.outbox import deliver_waiting

        for outcome in deliver_waiting(self.pipeline.engine, self.settings):
            if outcome.delivered:
                log.info("weekly digest %s sent", outcome.week)
            else:
                log.error("weekly digest %s not sent yet: %s", outcome.week, outcome.error)

    def schedule(self, scheduler: BaseScheduler) -> None:
        self.schedule_collection(scheduler, self.collect_and_process)
        # Alerts left pending by an outage are retried even when no source brings news.
        scheduler.add_job(
            self.process, "interval", id="process", minutes=1, max_instances=1, coalesce=True
        )
        self.schedule_housekeeping(scheduler)

    def schedule_collection(
        self, scheduler: BaseScheduler, collect: Callable[[Source], None]
    ) -> None:
        """`collect(source)` for every enabled source on its interval, the first run at once."""
        for source in self.pipeline.sources.enabled:
            interval = next(s.interval for s in self.settings.sources if s.name == source.name)
            scheduler.add_job(
                collect,
                "interval",
                args=[source],
                id=f"collect:{source.name}",
                seconds=interval.total_seconds(),
                next_run_time=utcnow(),
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,  # late rather than skipped until the next interval
            )

    def recheck(self) -> None:
        outcomes = retry_database(self.pipeline.recheck, what="re-reading reactions")
        for name, outcome in outcomes.items():
            if outcome.escalated:
                log.info(
                    "source %s: %d of %d recent complaints now viral (critical), %d alerts",
                    name,
                    outcome.escalated,
                    outcome.watched,
                    outcome.alerts,
                )

    def schedule_housekeeping(self, scheduler: BaseScheduler) -> None:
        """The daily retention purge, the complaints' reactions re-read and, when enabled, the
        weekly digest."""
        # However late (a suspended host, a busy pool): retention is a promise, not a best effort.
        scheduler.add_job(
            self.purge, "cron", id="purge", hour=PURGE_HOUR, coalesce=True, misfire_grace_time=None
        )
        self.schedule_recheck(scheduler)
        self.schedule_digest(scheduler)

    def schedule_recheck(self, scheduler: BaseScheduler) -> None:
        config = self.settings.model.viral_recheck
        watching = [s.name for s in self.pipeline.sources.enabled if s.can_recheck]
        if not (config.enabled and watching):
            return
        # Each source's own state says when it is due (`every`); the job only asks often.
        scheduler.add_job(
            self.recheck,
            "interval",
            id="recheck",
            seconds=min(config.every.total_seconds(), RECHECK_POLL_S),
            max_instances=1,
            coalesce=True,
        )
        log.info(
            "complaints on %s: reactions re-read every %s for %s after posting",
            ", ".join(watching),
            config.every,
            config.window,
        )

    def schedule_digest(self, scheduler: BaseScheduler) -> None:
        digest = self.settings.digest
        if not digest.enabled:
            log.info("weekly digest: disabled (digest.enabled is false)")
            return
        trigger = CronTrigger.from_crontab(digest.cron, timezone=ZoneInfo(digest.timezone))
        # A run delayed by busy workers (or a suspended host) still goes out within the grace time.
        scheduler.add_job(
            self.send_digest,
            trigger,
            id="digest",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=DIGEST_GRACE_S,
        )
        # A digest held back by an SMTP outage goes out once the server answers again.
        scheduler.add_job(
            self.deliver_digests,
            "interval",
            id="digest-retry",
            minutes=DIGEST_RETRY_MINUTES,
            max_instances=1,
            coalesce=True,
        )
        log.info(
            "weekly digest: enabled, %r in %s to %d recipient(s)",
            digest.cron,
            digest.timezone,
            len(digest.recipients),
        )


def run_daemon(settings: Settings) -> None:
    if settings.executor == "celery":  # many machines: enqueue the stages for workers
        from listener.distributed import run_scheduler

        run_scheduler(settings)
        return
    engine = open_database_when_up(settings.database_url())
    pipeline = Pipeline.build(settings, engine)
    if not pipeline.sources.enabled:
        log.warning("no source is enabled: only processing and purges will run")
    scheduler = BlockingScheduler(timezone="UTC")
    Daemon(settings, pipeline).schedule(scheduler)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping after the current step", signal.Signals(signum).name)
        pipeline.stop.set()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("listener daemon started with %d source(s)", len(pipeline.sources.enabled))
    scheduler.start()
    log.info("listener daemon stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", "-c", help="YAML config (default: the bundled example)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    return serve(settings)


def serve(settings: Settings) -> int:
    """`run_daemon` for a command line (this script's and `listener run`'s): a model or a
    database that cannot be used ends it with the reason on stderr and an exit status for the
    supervisor (2 = fix the configuration, 1 = the database may come back: start again later)."""
    try:
        run_daemon(settings)
    except ModelLoadError as error:
        print(f"model.name: {error}", file=sys.stderr)
        return 2
    except DatabaseUnavailable as error:
        print(error, file=sys.stderr)
        return error.exit_status
    return 0


if __name__ == "__main__":
    sys.exit(main())
