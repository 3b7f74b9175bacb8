"""What the scale-out tests and `benchmarks/scale.py` share: a replayed feed of any size, the
config for `executor: celery`, worker and scheduler processes, and the run's outcome by mention."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from config.schema import EXAMPLE_CONFIG
from listener.enums import DeliveryState
from listener.models import Alert, Classification, Mention, ReplyDraft, Stage

ROOT = Path(__file__).resolve().parent.parent
DEMO_FEED = ROOT / "listener" / "data" / "demo_feed.jsonl"
BROKER_ENV = "LISTENER_BROKER_URL"


def write_scale_feed(path: Path, count: int) -> Path:
    """`count` mentions cycled from the bundled demo feed, each with its own id and text.

    Every tenth repeats an earlier text word for word: cross-posts, which are classified but
    never drafted for or alerted on twice. The demo's dates are days old, so no spike folds
    mentions differently depending on which worker routes them first.
    """
    templates = [json.loads(line) for line in DEMO_FEED.read_text("utf-8").splitlines() if line]
    with path.open("w", encoding="utf-8") as out:
        for index in range(count):
            record = dict(templates[index % len(templates)])
            record["id"] = f"scale-{index}"
            copy_of = index - 10 if index % 10 == 9 and index >= 10 else index
            record["text"] = f"{record['text']} (ref {copy_of})"
            record["author"] = templates[copy_of % len(templates)].get("author")  # the same author
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def write_config(
    path: Path, feed: Path, *, executor: str, batch_size: int = 50, model: str = "baseline"
) -> Path:
    """The example config on the feed; the `baseline` model by default (mechanics, not NLP)."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["sources"] = [
        {"name": "feed", "type": "replay", "paths": [str(feed)], "max_items_per_cycle": 1_000_000}
    ]
    data["model"].update(name=model, batch_size=batch_size)
    data["executor"] = executor
    data["celery"] = {"dispatch_every": "2s", "tasks_per_stage": 4}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def service_env(database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, BROKER_ENV: broker_url, **extra}
    env.pop("SLACK_BOT_TOKEN", None)  # alerts go to the console sink
    return env


def listener_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    command = [sys.executable, "-m", "listener", *args]
    return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)


def start_worker(
    config: Path, env: dict[str, str], log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    return listener_process(["worker", "--config", str(config), *extra], env, log)


def stop_all(processes: list[subprocess.Popen[bytes]], timeout_s: float = 20) -> None:
    """SIGTERM to all at once (workers finish their task), then SIGKILL any that linger."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in running:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def progress(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Mention)) or 0
        routed = session.scalar(select(func.count()).where(Mention.stage == Stage.ROUTED)) or 0
        classified = session.scalar(select(func.count()).select_from(Classification)) or 0
        pending = session.scalar(select(func.count()).where(Alert.state == DeliveryState.PENDING))
    return {"mentions": total, "classified": classified, "routed": routed, "pending": pending or 0}


def wait_until_done(
    engine: Engine,
    expected: int,
    processes: list[subprocess.Popen[bytes]],
    limit_s: float | None = None,
) -> dict[str, int]:
    """Poll until every mention is routed and delivered; a guard, not a timed assertion."""
    limit_s = limit_s or max(120.0, expected / 20)  # generous even for two loaded CPUs
    deadline = time.monotonic() + limit_s
    state = progress(engine)
    while time.monotonic() < deadline:
        state = progress(engine)
        if state["mentions"] == expected == state["routed"] and not state["pending"]:
            return state
        dead = [p.args for p in processes if p.poll() is not None]
        if dead:
            raise AssertionError(f"a process exited early: {dead}; progress {state}")
        time.sleep(0.25)
    raise AssertionError(f"not finished within {limit_s}s: {state}")


def outcome(engine: Engine) -> dict[str, Any]:
    """What the pipeline decided, per mention's native id: comparable across databases."""
    with Session(engine) as session:
        labels = {
            m.native_id: (c.language, c.sentiment, c.urgency, c.intent)
            for m, c in session.exec(
                select(Mention, Classification).join(
                    Classification, Classification.mention_id == Mention.id
                )
            )
        }
        drafts = {
            m.native_id: d.text
            for m, d in session.exec(
                select(Mention, ReplyDraft).join(ReplyDraft, ReplyDraft.mention_id == Mention.id)
            )
        }
        alerts = sorted(
            (m.native_id, a.channel, a.level, a.state)
            for m, a in session.exec(
                select(Mention, Alert).join(Alert, Alert.mention_id == Mention.id)
            )
        )
        classifications = session.scalar(select(func.count()).select_from(Classification))
        draft_rows = session.scalar(select(func.count()).select_from(ReplyDraft))
        alert_rows = session.scalar(select(func.count()).select_from(Alert))
    return {
        "labels": labels,
        "drafts": drafts,
        "alerts": alerts,
        "rows": {"classifications": classifications, "drafts": draft_rows, "alerts": alert_rows},
    }
