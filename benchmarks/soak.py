"""Soak: replay many mentions through the whole pipeline and watch throughput and memory.

    .venv/bin/python benchmarks/soak.py [--mentions 100000] [--model baseline|e5-heads]
                                        [--batch 32] [--per-cycle 1000]

Writes `--mentions` synthetic mentions in 8 languages (benchmarks/soak_feed.py: templates,
the demo feed, cross-posts, spam, hostile markup, store reviews) to a temporary JSONL file, then
runs daemon cycles until everything is collected (replay source, `--per-cycle` mentions per
cycle), classified (`--batch` per model batch), drafted, routed and delivered to a local fake
Slack (tests/fake_slack.py, in a child process so its memory is not counted). Prints mentions/s
per stage, end-to-end time, RSS after each tenth of the mentions, peak RSS and database size;
then checks nothing was lost or posted twice. SQLite always; PostgreSQL as well when
DATABASE_URL is set (a scratch database: the run refuses one that already holds mentions).

How long it takes on 2 cores (shared, load ~6): 100,000 mentions with `--model baseline` took
16 minutes with ~0.9 Slack messages per mention, memory flat; this feed makes ~1.5 per mention
(fewer repeats), so expect ~25 minutes: Slack delivery, one HTTP call each, is the slowest
stage after classification. With e5-heads in bf16 (a CPU with hardware bf16) classification runs
at ~150 mentions/s: 20,000 took 6 minutes (`--mentions 20000 --model e5-heads`); in int8 expect
about half that rate.
Results and the exact commands: benchmarks/results/soak.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, func, text
from sqlmodel import Session, select

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from soak_feed import FeedWriter  # noqa: E402

from config.schema import EXAMPLE_CONFIG, Settings, parse_settings  # noqa: E402
from listener.enums import DeliveryState  # noqa: E402
from listener.models import Alert, Mention, ReplyDraft, Stage  # noqa: E402
from listener.pipeline import CycleReport, Pipeline  # noqa: E402
from listener.storage import open_database  # noqa: E402

SLACK_TOKEN = "xoxb-soak-placeholder"  # noqa: S105  (the fake Slack's placeholder)
STAGES = ("collect", "classify", "draft", "route", "deliver")


def rss_mib() -> float:
    """Resident memory now (psutil where installed, else /proc)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def serve_slack(conn: Any) -> None:
    """Child process: a FakeSlack until told to stop, then what it accepted."""
    from tests.fake_slack import FakeSlack

    with FakeSlack() as slack:
        conn.send(slack.base_url)
        conn.recv()
        posted = [r["payload"] for r in slack.posted]
        conn.send(
            {
                "posted": len(posted),
                "by_channel": dict(Counter(p["channel"] for p in posted)),
                "unique": len({json.dumps(p, sort_keys=True) for p in posted}),
            }
        )


@dataclass
class Run:
    seconds: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    samples: list[tuple[int, int, float, float, float]] = field(default_factory=list)
    cycles: int = 0
    wall: float = 0.0


def settings_for(feed: Path, model: str, batch: int, per_cycle: int) -> Settings:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["sources"] = [
        {"name": "soak", "type": "replay", "paths": [str(feed)], "max_items_per_cycle": per_cycle}
    ]
    data["model"].update(name=model, batch_size=batch)
    return parse_settings(data, "soak")


def database_size_mib(engine: Engine, url: str) -> float:
    if engine.dialect.name == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        files = [path, path.with_name(path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists()) / 2**20
    with engine.connect() as connection:
        size = connection.scalar(text("SELECT pg_database_size(current_database())"))
    return (size or 0) / 2**20


def timed(run: Run, stage: str, call: Any) -> Any:
    start = time.perf_counter()
    result = call()
    run.seconds[stage] += time.perf_counter() - start
    return result


def cycle(pipeline: Pipeline, run: Run) -> int:
    """One daemon cycle, each stage timed; returns the mentions stored."""
    outcomes = timed(run, "collect", pipeline.collect_all)
    stored = sum(o.stored for o in outcomes.values())
    run.counts["collect"] += stored
    run.counts["rejected"] += sum(len(o.rejected) for o in outcomes.values())
    run.counts["classify"] += timed(run, "classify", pipeline.classify)
    drafted, no_reply = timed(run, "draft", pipeline.respond)
    responded = drafted + sum(no_reply.values())
    run.counts["draft"] += responded
    run.counts["alerts"] += timed(run, "route", pipeline.route)
    run.counts["route"] += responded  # every responded mention is routed in the same cycle

    def deliver() -> int:
        outbox = pipeline.send_outbox(CycleReport())
        if outbox.delivery_errors:
            raise RuntimeError(f"delivery failed: {outbox.delivery_errors}")
        return outbox.delivered

    run.counts["deliver"] += timed(run, "deliver", deliver)
    run.cycles += 1
    return stored


def soak(url: str, settings: Settings, total: int) -> Run:
    engine = open_database(url)
    with Session(engine) as session:
        if session.scalar(select(func.count()).select_from(Mention)):
            where = url.rsplit("@", maxsplit=1)[-1]
            sys.exit(f"{where}: already holds mentions; use a scratch database")
    pipeline = Pipeline.build(settings, engine)
    run, marks = Run(), [total * k // 10 for k in range(1, 11)]
    start = time.perf_counter()
    run.samples.append((0, 0, rss_mib(), database_size_mib(engine, url), 0.0))
    while True:
        stored = cycle(pipeline, run)
        done = run.counts["collect"]
        if marks and done >= marks[0]:
            while marks and done >= marks[0]:
                marks.pop(0)
            elapsed = time.perf_counter() - start
            size = database_size_mib(engine, url)
            run.samples.append((done, run.cycles, rss_mib(), size, elapsed))
        if stored == 0 and not marks:
            break
        if stored == 0 and run.counts["rejected"] + done >= total:
            break
    run.wall = time.perf_counter() - start
    run.counts["db_mib"] = round(database_size_mib(engine, url))
    check(engine, run)
    engine.dispose()
    return run


def check(engine: Engine, run: Run) -> None:
    """Nothing left behind or sent twice, as far as the database knows."""
    with Session(engine) as session:
        behind = session.scalar(select(func.count()).where(Mention.stage != Stage.ROUTED))
        alerts = session.exec(select(Alert.state, func.count()).group_by(Alert.state)).all()
        run.counts["drafts_in_db"] = session.scalar(select(func.count()).select_from(ReplyDraft))
        run.counts["cross_posts_in_db"] = session.scalar(
            select(func.count()).where(Mention.duplicate_of_id.is_not(None))  # type: ignore[union-attr]
        )
    states = dict(alerts)
    run.counts["outbox_rows"] = sum(states.values())
    run.counts["mentions_not_routed"] = behind or 0
    run.counts["outbox_not_delivered"] = run.counts["outbox_rows"] - states.get(
        DeliveryState.DELIVERED, 0
    )


def report(name: str, run: Run, total: int, slack: dict) -> None:
    print(f"\n## {name}: {total:,} mentions, {run.cycles} cycles, {run.wall:.0f} s end to end")
    print("\n| stage | items | seconds | items/s |\n|---|---:|---:|---:|")
    labels = {
        "collect": "collect (read + store)",
        "classify": "classify",
        "draft": "draft (respond)",
        "route": "route (alert rules, spikes)",
        "deliver": "deliver to Slack (messages)",
    }
    for stage in STAGES:
        items, seconds = run.counts[stage], run.seconds[stage]
        rate = items / seconds if seconds else 0.0
        print(f"| {labels[stage]} | {items:,} | {seconds:.1f} | {rate:,.0f} |")
    print(f"| **end to end (mentions)** | {total:,} | {run.wall:.1f} | {total / run.wall:,.1f} |")
    print("\n| mentions stored | cycles | RSS MiB | database MiB | elapsed s |")
    print("|---:|---:|---:|---:|---:|")
    for done, cycles, rss, size, elapsed in run.samples:
        print(f"| {done:,} | {cycles} | {rss:.0f} | {size:.1f} | {elapsed:.0f} |")
    print(f"\npeak RSS {peak_rss_mib():.0f} MiB; database {run.counts['db_mib']} MiB")
    print(
        f"drafts {run.counts['drafts_in_db']:,}; alerts {run.counts['alerts']:,}; "
        f"cross-posts linked {run.counts['cross_posts_in_db']:,}; "
        f"outbox rows {run.counts['outbox_rows']:,}, "
        f"posted to Slack {slack['posted']:,} ({slack['unique']:,} distinct), by channel "
        f"{slack['by_channel']}"
    )
    problems = {
        "mentions not routed": run.counts["mentions_not_routed"],
        "mentions missing": total - run.counts["collect"],
        "outbox rows not delivered": run.counts["outbox_not_delivered"],
        "Slack posts != outbox rows": slack["posted"] - run.counts["outbox_rows"],
    }
    bad = {k: v for k, v in problems.items() if v}
    print(f"checks: {bad or 'all passed'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mentions", type=int, default=100_000)
    parser.add_argument("--model", choices=["baseline", "e5-heads"], default=None)
    parser.add_argument("--batch", type=int, default=None, help="classifier batch size")
    parser.add_argument("--per-cycle", type=int, default=1000, help="mentions collected a cycle")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    defaults = parse_settings(yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8")))
    model = args.model or defaults.model.name
    batch = args.batch or defaults.model.batch_size
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        writer = FeedWriter()
        feed = writer.write(Path(folder) / "soak.jsonl", args.mentions)
        print(f"# soak: {args.mentions:,} mentions, model {model}, batch {batch}")
        print(f"feed {feed.stat().st_size / 2**20:.1f} MiB: {dict(writer.kinds)}")
        settings = settings_for(feed, model, batch, args.per_cycle)
        targets = [("SQLite", f"sqlite:///{Path(folder) / 'soak.db'}")]
        if os.environ.get("DATABASE_URL", "").startswith("postgresql"):
            targets.append(("PostgreSQL", os.environ["DATABASE_URL"]))
        for name, url in targets:
            parent, child = context.Pipe()
            server = context.Process(target=serve_slack, args=(child,), daemon=True)
            server.start()
            os.environ["SLACK_BASE_URL"] = parent.recv()
            os.environ["SLACK_BOT_TOKEN"] = SLACK_TOKEN
            run = soak(url, settings, args.mentions)
            parent.send("stop")
            report(name, run, args.mentions, parent.recv())
            server.join(timeout=30)


if __name__ == "__main__":
    main()
