"""The database locked or briefly unavailable: the step waits or retries, and the daemon goes on."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

from config.schema import load_settings
from listener.models import Alert, Mention, Stage
from listener.pipeline import Pipeline
from listener.storage import open_database, retry_database
from scheduler import Daemon


def _hold_write_lock(path: str, seconds: float, locked: threading.Event) -> None:
    connection = sqlite3.connect(path, timeout=0)
    connection.execute("BEGIN IMMEDIATE")  # another process writing: everyone else must wait
    locked.set()
    time.sleep(seconds)
    connection.rollback()
    connection.close()


def _locked_for(database_url: str, seconds: float) -> threading.Thread:
    locked = threading.Event()
    path = database_url.removeprefix("sqlite:///")
    holder = threading.Thread(target=_hold_write_lock, args=(path, seconds, locked), daemon=True)
    holder.start()
    locked.wait(5)
    return holder


def test_a_lock_longer_than_the_busy_timeout_is_retried_and_the_cycle_completes(
    database_url, config_file, caplog
):
    engine = open_database(database_url, busy_timeout_s=0.5)
    pipeline = Pipeline.build(load_settings(config_file), engine)
    daemon = Daemon(pipeline.settings, pipeline)
    pipeline.collect_all()  # mentions are waiting to be classified
    holder = _locked_for(database_url, seconds=2.5)

    daemon.process()  # first attempt fails after 0.5 s; a later one gets through

    holder.join()
    assert "processing: database unavailable (OperationalError); retry 1/3" in caplog.text
    with Session(engine) as session:
        waiting = session.scalar(select(func.count()).where(Mention.stage < Stage.ROUTED))
        total = session.scalar(select(func.count()).select_from(Mention))
    assert total > 0
    assert waiting == 0


def test_a_database_that_stays_down_fails_the_step_after_bounded_retries():
    calls = []

    def always_down() -> None:
        calls.append(1)
        raise OperationalError("SELECT 1", {}, Exception("could not connect to server"))

    with pytest.raises(OperationalError):
        retry_database(always_down, what="test", attempts=3, initial_wait_s=0.01)
    assert len(calls) == 3


def test_other_errors_are_not_retried():
    calls = []

    def bug() -> None:
        calls.append(1)
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        retry_database(bug, what="test", initial_wait_s=0.01)
    assert len(calls) == 1


def test_a_lock_while_alerts_are_delivered_is_the_database_s_not_the_sink_s(
    database_url, config_file
):
    engine = open_database(database_url, busy_timeout_s=0.3)
    pipeline = Pipeline.build(load_settings(config_file), engine)  # the console sink
    pipeline.collect_all()
    pipeline.classify()
    pipeline.respond()
    assert pipeline.route(None) > 0  # alerts wait in the outbox
    holder = _locked_for(database_url, seconds=1.5)

    with pytest.raises(OperationalError, match="database is locked"):
        pipeline.deliver()  # for the step's retry, not recorded as a failed delivery

    holder.join()
    with Session(engine) as session:
        tried = session.scalar(select(func.max(Alert.attempts)))
    assert tried == 0
