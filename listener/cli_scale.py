"""`listener worker`: a Celery worker running the pipeline's stages (`executor: celery`)."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console

from listener.cli_nlp import ConfigOption, _config

errors = Console(stderr=True, soft_wrap=True)


class Pool(StrEnum):
    prefork = "prefork"  # processes: CPU-bound classification on many cores
    solo = "solo"  # one task at a time in the worker process: one model in (GPU) memory
    threads = "threads"  # I/O-bound collection and delivery


def worker(
    config: ConfigOption = None,
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues",
            "-Q",
            help="Comma-separated queues to consume (default: all of them). E.g. 'classify' on"
            " GPU machines, 'listener' on small ones; names from celery.queue/classify_queue.",
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Tasks run at once (processes/threads).")
    ] = 1,
    pool: Annotated[Pool, typer.Option("--pool", help="How tasks run in parallel.")] = Pool.prefork,
    log_level: Annotated[str, typer.Option("--log-level", envvar="LISTENER_LOG_LEVEL")] = "info",
) -> None:
    """Start a worker: it takes collect, classify, draft, route and deliver tasks from the broker.

    Needs `executor: celery`, DATABASE_URL (PostgreSQL) and the broker URL's variable set.
    """
    from listener.distributed import SchedulerLockError, require_postgresql
    from listener.tasks import CONFIG_ENV, POOL_ENV, WARM_ENV, BrokerNotConfigured, configure

    settings = _config(config)
    if settings.executor != "celery":
        errors.print(
            "listener worker: the config says executor: inprocess; set `executor: celery` (and"
            " run `listener run` as the scheduler) to spread the stages over workers",
            markup=False,
        )
        raise typer.Exit(code=2)
    try:
        require_postgresql(settings.database_url())
        app = configure(settings)
    except (SchedulerLockError, BrokerNotConfigured) as error:
        errors.print(f"listener worker: {error}", markup=False)
        raise typer.Exit(code=2) from None
    if config is not None:
        os.environ[CONFIG_ENV] = str(config.resolve())  # the pool's children load the same file
    names = queues or f"{settings.celery.queue},{settings.celery.classify_queue}"
    classifies = settings.celery.classify_queue in names.split(",")
    os.environ[WARM_ENV] = "model" if classifies else "pipeline"  # loaded before the first task
    os.environ[POOL_ENV] = pool.value
    app.worker_main(
        [
            "worker",
            f"--queues={names}",
            f"--concurrency={concurrency}",
            f"--pool={pool.value}",
            f"--loglevel={log_level.upper()}",
            f"--hostname={names.replace(',', '+')}-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )
