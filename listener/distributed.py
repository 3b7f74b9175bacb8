"""The scheduler's side of `executor: celery`: one lock, enqueue instead of run, queue status.

APScheduler stays the one scheduler. It takes a PostgreSQL advisory lock first, so a second
scheduler started by mistake waits on standby (and takes over when the first one dies) instead of
scheduling everything twice. Its jobs enqueue Celery tasks; every `dispatch_every` it enqueues a
task for each stage with a backlog, which also rebuilds the queues after a broker restart.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import Connection, Engine, func, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlmodel import Session, select

from config.schema import Settings
from listener.enums import DeliveryState
from listener.models import Alert, Mention, Stage, utcnow
from listener.sources import Source
from listener.storage import open_database_when_up

log = logging.getLogger("listener.scheduler")
# pg_advisory_lock's key: any constant shared by all schedulers of one database.
SCHEDULER_LOCK_KEY = 0x4C53_4348  # "LSCH"
STANDBY_POLL_S = 5.0
STAGE_TASKS = {Stage.COLLECTED: "classify", Stage.CLASSIFIED: "respond", Stage.RESPONDED: "route"}


class SchedulerLockError(Exception):
    """The lock cannot work here (e.g. SQLite, which cannot be shared between machines)."""


def require_postgresql(url: str) -> None:
    if make_url(url).get_backend_name() != "postgresql":
        raise SchedulerLockError(
            "executor: celery needs a PostgreSQL database shared by the scheduler and the"
            " workers: set DATABASE_URL=postgresql+psycopg://USER@HOST/DB (SQLite is for one"
            " machine: use executor: inprocess)"
        )


def try_scheduler_lock(connection: Connection) -> bool:
    """Take the scheduler lock on this connection; held until the connection closes."""
    taken = connection.scalar(
        text("SELECT pg_try_advisory_lock(:key)"), {"key": SCHEDULER_LOCK_KEY}
    )
    connection.commit()
    return bool(taken)


def lock_connection(engine: Engine) -> Connection:
    """A connection of its own, out of the pool: closing it ends the session and its lock."""
    connection = engine.connect()
    connection.detach()
    return connection


def wait_for_scheduler_lock(engine: Engine, stop: threading.Event) -> Connection | None:
    """Block until this process is the one scheduler; None when stopped while on standby."""
    connection = lock_connection(engine)
    announced = False
    while not stop.is_set():
        if try_scheduler_lock(connection):
            log.info("scheduler lock taken: this is the active scheduler")
            return connection
        if not announced:
            log.warning(
                "another scheduler holds the lock on this database: standing by (nothing is"
                " scheduled twice); this one takes over if that one stops"
            )
            announced = True
        stop.wait(STANDBY_POLL_S)
    connection.close()
    return None


def backlog(engine: Engine) -> dict[str, int]:
    """Mentions waiting per stage task, and alerts waiting for delivery."""
    with Session(engine) as session:
        stages = dict(
            session.exec(select(Mention.stage, func.count()).group_by(Mention.stage)).all()
        )
        pending = session.scalar(select(func.count()).where(Alert.state == DeliveryState.PENDING))
    waiting = {task: stages.get(stage, 0) for stage, task in STAGE_TASKS.items()}
    waiting["deliver"] = pending or 0
    return waiting


class Dispatcher:
    """The scheduler's jobs when the stages run on workers: enqueue, never run."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        lock: Connection | None = None,
        on_lock_lost: Callable[[], None] = lambda: None,
    ) -> None:
        from listener.tasks import client

        self.settings = settings
        self.engine = engine
        self.lock = lock
        self.on_lock_lost = on_lock_lost
        self.app = client(settings)

    def _send(self, task: str, *args: Any) -> None:
        self.app.send_task(f"listener.{task}", args=args)

    def dispatch(self) -> dict[str, int]:
        """Enqueue up to `tasks_per_stage` tasks for every stage with a backlog.

        Tasks already waiting in the stage's queue count against that number, so a slow
        cluster's queues do not fill with tasks that will find nothing left to do.
        """
        celery = self.settings.celery
        depths = queue_depths(self.settings)
        sent: dict[str, int] = {}
        for task, waiting in backlog(self.engine).items():
            queued = depths.get(celery.classify_queue if task == "classify" else celery.queue)
            wanted = 1 if task == "deliver" else math.ceil(waiting / self.settings.model.batch_size)
            sent[task] = max(min(wanted, celery.tasks_per_stage) - (queued or 0), 0)
            for _ in range(sent[task]):
                self._send(task)
        log.debug("dispatched %s", sent)
        return sent

    def lock_held(self) -> bool:
        if self.lock is None:
            return True
        try:
            self.lock.execute(text("SELECT 1"))
            self.lock.rollback()  # never left idle in a transaction, which servers may cut off
        except DBAPIError:
            return False
        return True

    def safe_dispatch(self) -> None:
        """A broker or database that is down is retried on the next tick; work waits in the DB."""
        if not self.lock_held():
            log.error(
                "scheduler lock lost with its database connection: stopping, so that exactly one"
                " scheduler runs (a standby takes over; restart this one to stand by)"
            )
            self.on_lock_lost()
            return
        try:
            self.dispatch()
        except Exception as error:  # noqa: BLE001  (the next tick tries again)
            every = self.settings.celery.dispatch_every
            log.warning("dispatch failed, next try in %s: %s", every, error)

    def safe_collect(self, source: Source) -> None:
        try:
            self._send("collect", source.name)
        except Exception as error:  # noqa: BLE001  (the next interval enqueues it again)
            log.warning("collect %s: not enqueued (broker unavailable?): %s", source.name, error)


def queue_depths(settings: Settings) -> dict[str, int | None]:
    """Messages waiting per queue (Redis LLEN); None where the broker cannot say."""
    import redis

    from listener.tasks import broker_url

    names = dict.fromkeys([settings.celery.queue, settings.celery.classify_queue])
    url = broker_url(settings)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return dict.fromkeys(names)
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        return {name: int(client.llen(name)) for name in names}
    finally:
        client.close()


def celery_status(settings: Settings, timeout_s: float = 2.0) -> dict[str, Any]:
    """Queue depths and the workers alive, per queue they consume: for `listener status`."""
    from listener.tasks import BrokerNotConfigured, broker_url, client

    try:
        url = broker_url(settings)
    except BrokerNotConfigured as error:
        return {"broker": None, "error": str(error)}
    try:
        safe_url = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        safe_url = "(unparseable URL)"
    try:
        depths = queue_depths(settings)
        replies = client(settings).control.inspect(timeout=timeout_s).active_queues() or {}
    except Exception as error:  # noqa: BLE001  (status reports an unreachable broker, never crashes)
        return {"broker": safe_url, "error": f"{type(error).__name__}: {error}"[:300]}
    consumers: dict[str, list[str]] = {name: [] for name in depths}
    for worker, queues in replies.items():
        for queue in queues:
            consumers.setdefault(queue["name"], []).append(worker)
    return {
        "broker": safe_url,
        "workers_alive": sorted(replies),
        "queues": {
            name: {"depth": depths.get(name), "workers": sorted(workers)}
            for name, workers in consumers.items()
        },
    }


def run_scheduler(settings: Settings) -> None:
    """`listener run` with `executor: celery`: the one scheduler, enqueueing stage tasks."""
    from listener.pipeline import Pipeline
    from listener.tasks import BrokerNotConfigured, LazyClassifier, broker_url
    from scheduler import Daemon

    url = settings.database_url()
    try:
        require_postgresql(url)
        broker_url(settings)
    except (SchedulerLockError, BrokerNotConfigured) as error:
        log.error("%s", error)
        raise SystemExit(2) from None
    engine = open_database_when_up(url)  # migrations run here, once, before any worker needs them
    pipeline = Pipeline.build(settings, engine, classifier=LazyClassifier(settings.model))
    stop = pipeline.stop
    scheduler = BlockingScheduler(timezone="UTC")

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()
        if scheduler.running:
            scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    lock = wait_for_scheduler_lock(engine, stop)
    if lock is None:
        return
    failed = threading.Event()

    def lock_lost() -> None:
        failed.set()
        on_signal(signal.SIGTERM, None)

    dispatcher = Dispatcher(settings, engine, lock, on_lock_lost=lock_lost)
    daemon = Daemon(settings, pipeline)
    daemon.schedule_collection(scheduler, dispatcher.safe_collect)
    scheduler.add_job(
        dispatcher.safe_dispatch,
        "interval",
        id="dispatch",
        seconds=settings.celery.dispatch_every.total_seconds(),
        next_run_time=utcnow(),
        max_instances=1,
        coalesce=True,
    )
    daemon.schedule_housekeeping(scheduler)
    log.info(
        "listener scheduler (celery) started: %d source(s), dispatch every %s",
        len(pipeline.sources.enabled),
        settings.celery.dispatch_every,
    )
    try:
        scheduler.start()
    finally:
        lock.close()
    log.info("listener scheduler stopped")
    if failed.is_set():
        raise SystemExit(1)
