"""Celery tasks: the pipeline's stages on many machines (`executor: celery`).

The broker is only a doorbell. Every task claims its work from the database (row locks with
SKIP LOCKED on PostgreSQL, see `Pipeline._claiming`) and commits batch by batch, so a task
delivered twice, a worker killed mid-batch or a broker that lost its queues costs time, never a
duplicate or a lost mention: the scheduler's dispatch enqueues every stage that has a backlog.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_ready
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlmodel import Session, select

from config.schema import ModelConfig, Settings, load_settings
from listener.models import Mention, Stage
from listener.nlp import Classifier, Prediction, TextInput, load_classifier
from listener.pipeline import CycleReport, Pipeline
from listener.storage import create_db_engine

log = logging.getLogger(__name__)
CONFIG_ENV = "LISTENER_CONFIG"  # the CLI's --config variable: worker children read it too
WARM_ENV = "LISTENER_WORKER_WARM"  # set by `listener worker`: "model", "pipeline" or unset
POOL_ENV = "LISTENER_WORKER_POOL"
COLLECT, CLASSIFY, RESPOND, ROUTE, DELIVER = (
    f"listener.{name}" for name in ("collect", "classify", "respond", "route", "deliver")
)
# A lost race on a unique key (another worker committed first) or a database blip: try again;
# the retried task claims only what is still undone.
RETRY_ON = (IntegrityError, OperationalError, InterfaceError)
# Batches per task: bounds a task's run (a warm shutdown waits for it) and lets a worker that
# consumes several queues turn to other stages between them.
TASK_BATCHES = 20
RETRY = {
    "autoretry_for": RETRY_ON,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 10,
}

app = Celery("listener")


class BrokerNotConfigured(Exception):
    """executor: celery without a broker URL in the named environment variable."""


def broker_url(settings: Settings) -> str:
    name = settings.celery.broker_url_env
    url = os.environ.get(name, "").strip()
    if not url:
        raise BrokerNotConfigured(
            f"executor: celery needs a broker: set the environment variable {name}"
            " (e.g. redis://redis.internal:6379/0), or set celery.broker_url_env to the"
            " variable that holds it"
        )
    return url


def configure(settings: Settings, target: Celery = app) -> Celery:
    """Point an app at the configured broker and queues: this module's (workers) by default."""
    target.conf.update(
        broker_url=broker_url(settings),
        task_acks_late=True,  # a task whose worker dies is delivered again
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a long classify batch never holds others' tasks
        task_ignore_result=True,
        task_default_queue=settings.celery.queue,
        task_routes={CLASSIFY: {"queue": settings.celery.classify_queue}},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return target


def client(settings: Settings) -> Celery:
    """A fresh app that sends tasks by name and inspects workers (scheduler, status, tests)."""
    return configure(settings, Celery("listener-client"))


class LazyClassifier:
    """Loads the model on first use: delivery-only workers and the scheduler never load it."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self._loaded: Classifier | None = None

    @property
    def loaded(self) -> Classifier:
        if self._loaded is None:
            self._loaded = load_classifier(self.config)
        return self._loaded

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def version(self) -> str:
        return self.loaded.version

    def classify(self, items: list[TextInput]) -> list[Prediction]:
        return self.loaded.classify(items)


_worker = threading.local()  # one pipeline per pool process or thread (--pool threads)


def worker_pipeline() -> Pipeline:
    """This process's (or thread's) pipeline, built after any fork: connections are not shared."""
    if getattr(_worker, "pid", None) != os.getpid():
        settings = load_settings(os.environ.get(CONFIG_ENV) or None)
        engine = create_db_engine(settings.database_url())  # the scheduler runs migrations
        _worker.pipeline = Pipeline.build(
            settings, engine, classifier=LazyClassifier(settings.model)
        )
        _worker.pid = os.getpid()
    return _worker.pipeline


def warm_up() -> None:
    """Build the pipeline (and load the model on classify workers) before the first task."""
    warm = os.environ.get(WARM_ENV)
    if not warm:
        return
    pipeline = worker_pipeline()
    if warm == "model":
        log.info("classifier %s loaded", pipeline.classifier.name)
        pipeline.languages.identify("warm up the language detector")


@worker_process_init.connect
def _warm_pool_process(**_: Any) -> None:  # prefork: each child runs tasks
    warm_up()


@worker_ready.connect
def _warm_main_process(**_: Any) -> None:  # solo and threads: the main process runs them
    if os.environ.get(POOL_ENV) != "prefork":
        warm_up()


def _send(name: str, *args: Any) -> None:
    app.send_task(name, args=args)


@app.task(name=COLLECT, **RETRY)
def collect(source_name: str) -> dict[str, Any]:
    pipeline = worker_pipeline()
    source = next((s for s in pipeline.sources.enabled if s.name == source_name), None)
    if source is None:
        log.warning("collect %s: not an enabled source in this worker's config", source_name)
        return {"error": "not enabled"}
    outcome = pipeline.collect(source)
    if outcome.stored:
        _send(CLASSIFY)
    return {"stored": outcome.stored, "error": outcome.error, "skipped": outcome.skipped}


def _continue(task: str, stage: Stage) -> None:
    """A bounded task hands over to a fresh one while its stage still has work."""
    pipeline = worker_pipeline()
    with Session(pipeline.engine) as session:
        left = session.exec(select(Mention.id).where(Mention.stage == stage).limit(1)).first()
    if left is not None and not pipeline.stop.is_set():
        _send(task)


@app.task(name=CLASSIFY, **RETRY)
def classify() -> int:
    """Classify up to TASK_BATCHES batches; several of these share the backlog."""
    done = worker_pipeline().classify(max_batches=TASK_BATCHES)
    if done:
        _send(RESPOND)
        _continue(CLASSIFY, Stage.COLLECTED)
    return done


@app.task(name=RESPOND, **RETRY)
def respond() -> int:
    drafted, no_reply = worker_pipeline().respond(max_batches=TASK_BATCHES)
    done = drafted + sum(no_reply.values())
    if done:
        _send(ROUTE)
        _continue(RESPOND, Stage.CLASSIFIED)
    return done


@app.task(name=ROUTE, **RETRY)
def route() -> int:
    created = worker_pipeline().route(max_batches=TASK_BATCHES)
    _send(DELIVER)  # drafts may await review messages even when no alert was raised
    _continue(ROUTE, Stage.RESPONDED)
    return created


@app.task(name=DELIVER, **RETRY)
def deliver() -> int:
    report = worker_pipeline().send_outbox(CycleReport())
    for error in report.delivery_errors:
        log.warning("delivery pending, will retry: %s", error)
    for refusal in report.refused:
        log.error("alert refused for good, not retried: %s", refusal)
    return report.delivered
