"""Throughput of `executor: celery` with 1, 2 and 4 workers: mentions/s and per-worker rate.

    python benchmarks/scale.py [--mentions 20000] [--workers 1,2,4] [--model baseline]

Starts its own PostgreSQL and Redis on 127.0.0.1 (as the tests do), collects a replayed feed
into a fresh database for each worker count (not timed: one source is collected by one task),
then times classify → draft → route → deliver across the workers until every mention is routed
and every alert delivered (to the console sink, as without Slack). Each run is also checked
exactly-once: one classification per mention. The default model is the fast `baseline` lexicon,
so the numbers measure the distribution machinery and the database; with `e5-heads` the
classify stage dominates and scales with the classify queue's machines.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.schema import load_settings
from listener.distributed import Dispatcher
from listener.pipeline import Pipeline
from listener.storage import open_database
from tests.scale_support import (
    outcome,
    progress,
    service_env,
    start_worker,
    stop_all,
    write_config,
    write_scale_feed,
)
from tests.services import Postgres, Redis

SECONDS_PER_DAY = 86_400


def _wait_for_workers(dispatcher: Dispatcher, count: int, limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if len(dispatcher.app.control.ping(timeout=1.0)) >= count:
            return
    raise SystemExit(f"only some of {count} workers answered within {limit_s}s")


def run_once(
    postgres: Postgres, redis: Redis, workdir: Path, *, mentions: int, workers: int, model: str
) -> tuple[float, float]:
    """Wall and worker CPU seconds to take `mentions` mentions through every stage after collect."""
    feed = write_scale_feed(workdir / "feed.jsonl", mentions)
    config = write_config(workdir / f"w{workers}.yaml", feed, executor="celery", model=model)
    url = postgres.create_database(f"bench_{workers}")
    engine = open_database(url)
    settings = load_settings(config)
    Pipeline.build(settings, engine).collect_all()
    env = service_env(url, redis.url, LISTENER_LOG_LEVEL="warning")
    logs = workdir / f"workers-{workers}.log"
    processes = [start_worker(config, env, logs, "--pool", "solo") for _ in range(workers)]
    try:
        os.environ["LISTENER_BROKER_URL"] = redis.url
        dispatcher = Dispatcher(settings, engine)
        _wait_for_workers(dispatcher, workers)
        idle_cpu = sum(_cpu_seconds(process.pid) for process in processes)  # start-up
        started = time.perf_counter()
        next_dispatch = 0.0
        while True:
            state = progress(engine)
            if state["routed"] == mentions and not state["pending"]:
                break
            if time.perf_counter() >= next_dispatch:  # what the scheduler does every tick
                dispatcher.dispatch()
                next_dispatch = time.perf_counter() + 1.0
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        cpu = sum(_cpu_seconds(process.pid) for process in processes) - idle_cpu
    finally:
        stop_all(processes)
    rows = outcome(engine)["rows"]
    if rows["classifications"] != mentions:
        raise SystemExit(f"{workers} workers: {rows['classifications']} classifications")
    engine.dispose()
    return elapsed, cpu


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux): busy time, whatever else loads the host."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--model", default="baseline")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    postgres, redis = Postgres().start(), Redis().start()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="listener-scale-") as tmp:
            for workers in counts:
                elapsed, cpu = run_once(
                    postgres,
                    redis,
                    Path(tmp),
                    mentions=args.mentions,
                    workers=workers,
                    model=args.model,
                )
                rate = args.mentions / elapsed
                rows.append((workers, elapsed, rate, rate / workers, args.mentions / cpu))
    finally:
        redis.stop()
        postgres.stop()
    print(f"\n{args.mentions} mentions, model {args.model}, one PostgreSQL, one Redis")
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    header = ("workers", "seconds", "mentions/s", "per worker", "per day", "per CPU-second")
    print("{:>7} {:>8} {:>11} {:>11} {:>12} {:>15}".format(*header))
    for workers, elapsed, rate, per_worker, per_cpu in rows:
        print(
            f"{workers:>7} {elapsed:>8.1f} {rate:>11.1f} {per_worker:>11.1f}"
            f" {rate * SECONDS_PER_DAY:>12,.0f} {per_cpu:>15.1f}"
        )
    print(
        "per CPU-second: mentions per second of worker CPU time, the per-worker rate of a"
        " worker with a core of its own (the database's CPU not included)"
    )


if __name__ == "__main__":
    main()
