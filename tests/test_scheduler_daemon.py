from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from listener.models import Mention
from listener.storage import open_database
from tests.conftest import FEED

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 60


@pytest.mark.slow
def test_daemon_collects_then_stops_cleanly_on_sigterm(database_url, config_file):
    daemon = subprocess.Popen(
        [sys.executable, str(ROOT / "scheduler.py"), "--config", str(config_file)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        log: list[str] = []
        while time.monotonic() < deadline:
            line = daemon.stderr.readline()
            log.append(line)
            if "processed:" in line:
                break
        else:
            pytest.fail("the daemon never finished a cycle:\n" + "".join(log))
        daemon.send_signal(signal.SIGTERM)
        _, rest = daemon.communicate(timeout=30)
    finally:
        daemon.kill()
    assert daemon.returncode == 0, rest
    assert "SIGTERM received: stopping after the current step" in rest
    assert "listener daemon stopped" in rest
    assert any("source feed (replay): enabled" in line for line in log)
    with Session(open_database(database_url)) as session:
        assert session.scalar(select(func.count()).select_from(Mention)) == len(FEED)


def test_the_nightly_purge_runs_however_late_it_starts(database_url, config_file):
    from datetime import UTC, datetime, timedelta

    from apscheduler.events import EVENT_JOB_EXECUTED
    from apscheduler.executors.base import run_job
    from apscheduler.schedulers.background import BackgroundScheduler

    from config.schema import load_settings
    from listener.pipeline import Pipeline
    from listener.storage import store_mentions
    from scheduler import Daemon

    engine = open_database(database_url)
    settings = load_settings(config_file)
    old = datetime.now(UTC) - timedelta(days=settings.storage.retention_days + 1)
    with Session(engine) as session:
        store_mentions(
            session,
            [Mention(source="x", collector="c", native_id="1", text="old", created_at=old)],
        )
        session.commit()
    daemon = Daemon(settings, Pipeline.build(settings, engine))
    scheduler = BackgroundScheduler(timezone="UTC")
    daemon.schedule_housekeeping(scheduler)
    scheduler.start(paused=True)
    try:
        purge = scheduler.get_job("purge")
        late = datetime.now(UTC) - timedelta(minutes=10)  # the host slept through 03:00
        [event] = run_job(purge, "default", [late], "apscheduler")
    finally:
        scheduler.shutdown()

    assert event.code == EVENT_JOB_EXECUTED
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Mention)) == 0


def test_a_collection_does_not_wait_for_a_processing_pass_that_is_running(
    database_url, config_file
):
    import threading

    from config.schema import load_settings
    from listener.pipeline import Pipeline
    from scheduler import Daemon

    settings = load_settings(config_file)
    daemon = Daemon(settings, Pipeline.build(settings, open_database(database_url)))
    source = daemon.pipeline.sources.enabled[0]
    with daemon._processing:  # a pass is running
        collecting = threading.Thread(target=daemon.collect_and_process, args=[source])
        collecting.start()
        collecting.join(timeout=30)
        assert not collecting.is_alive()  # collected and returned: its thread is free again
    with Session(daemon.pipeline.engine) as session:
        assert session.scalar(select(func.count()).select_from(Mention)) > 0
