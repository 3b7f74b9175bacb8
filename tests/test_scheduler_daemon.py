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
