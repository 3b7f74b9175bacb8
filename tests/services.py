"""Real PostgreSQL and Redis servers on 127.0.0.1 for the scale-out tests and benchmark.

Both are started from the Debian packages' binaries (.ci/run installs them) in a temporary
folder, tuned for throwaway data (no fsync), and stopped afterwards. `ServiceUnavailable` says
why one cannot start, so tests skip with that message instead of failing on a bare machine.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psycopg

STARTUP_S = 30.0


class ServiceUnavailable(Exception):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _pg_binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise ServiceUnavailable(
            f"PostgreSQL's {name} not found: apt-get install postgresql (as .ci/run does)"
        )
    return found


def _as_postgres_user(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` account."""
    if os.geteuid() != 0:
        return command
    if not shutil.which("runuser"):
        raise ServiceUnavailable("running as root and runuser is missing: cannot drop to postgres")
    return ["runuser", "-u", "postgres", "--", *command]


def _answers(
    process: subprocess.Popen,
    probe: Callable[[], object],
    not_yet: type[Exception],
    *,
    pause_s: float,
) -> bool:
    """Try `probe` until it succeeds (True), or the server exits or STARTUP_S pass (False)."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        try:
            probe()
            return True
        except not_yet:
            if process.poll() is not None:
                return False
            time.sleep(pause_s)
    return False


@dataclass
class Postgres:
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="listener-pg-")))
    process: subprocess.Popen | None = None

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> Postgres:
        initdb, postgres = _pg_binary("initdb"), _pg_binary("postgres")
        data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        init = subprocess.run(
            _as_postgres_user(
                [initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if init.returncode:
            raise ServiceUnavailable(f"initdb failed: {init.stderr.strip()[-300:]}")
        options = [
            "-c", f"port={self.port}", "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={self.root}", "-c", "fsync=off",
            "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ]  # fmt: skip
        log = (self.root / "postgres.log").open("w")
        self.process = subprocess.Popen(
            _as_postgres_user([postgres, "-D", str(data), *options]), stdout=log, stderr=log
        )
        if _answers(
            self.process,
            lambda: psycopg.connect(self.admin_dsn, connect_timeout=2).close(),
            psycopg.OperationalError,
            pause_s=0.2,
        ):
            return self
        self.stop()
        raise ServiceUnavailable(
            f"postgres did not start: {(self.root / 'postgres.log').read_text()[-300:]}"
        )

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin_dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster): SIGTERM would wait for every client."""
        pid_file = self.root / "data" / "postmaster.pid"
        if self.process and self.process.poll() is None:
            if pid_file.exists():
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
            else:
                self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Redis:
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="listener-redis-")))
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        binary = shutil.which("redis-server")
        if not binary:
            raise ServiceUnavailable("redis-server not found: apt-get install redis-server")
        # No persistence: a restart loses every queued message, the worst case for a broker.
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        if _answers(self.process, client.ping, redis.ConnectionError, pause_s=0.1):
            return self
        self.stop()
        raise ServiceUnavailable("redis-server did not start")

    def stop(self, *, keep_dir: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if not keep_dir:
            shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        self.stop(keep_dir=True)
        self.start()


Service = TypeVar("Service", Postgres, Redis)


def running(service: Service, name: str) -> Iterator[Service]:
    """The service started for the tests, stopped after them; they skip where it cannot start."""
    import pytest

    try:
        service.start()
    except ServiceUnavailable as error:
        pytest.skip(f"{name} cannot be started here: {error}")
    yield service
    service.stop()
