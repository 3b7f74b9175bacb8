"""Weekly digest speed on a large week: figures (SQL), charts, HTML + text, the MIME message.

    .venv/bin/python benchmarks/digest_speed.py [--mentions 100000] [--keep DB]

Fills a fresh SQLite file with `--mentions` mentions in 2026-W47 (and 80 % as many in the week
before, 20 % a week in the four before that), each classified, a third with a reply draft, 5 % with
an alert; texts from the bundled demo feed. Then times each stage of the digest and prints a table.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

from alerts.digest import Week, build_digest, compose
from alerts.digest.charts import draw_charts
from alerts.digest.render import render_html, render_text
from config.schema import load_settings
from listener.models import Alert, Classification, Mention, ReplyDraft
from listener.storage import open_database
from listener.textfiles import read_lines

ROOT = Path(__file__).resolve().parent.parent
FEED = ROOT / "listener" / "data" / "demo_feed.jsonl"
SOURCES = ["twitter", "reddit", "appstore", "googleplay", "trustpilot", "rss"]
SENTIMENTS = ["negative", "negative", "neutral", "positive"]
INTENTS = ["delivery", "refund_return", "damaged_defective", "billing_payment", "safety", "other"]
URGENCY = ["low", "medium", "high", "critical"]
BATCH = 20_000


def _week_rows(
    feed: list[dict], week: Week, count: int, first_id: int, rng: random.Random
) -> dict[str, list]:
    seconds = int((week.end - week.start).total_seconds())
    rows: dict[str, list] = {"mentions": [], "classifications": [], "drafts": [], "alerts": []}
    for n in range(count):
        item, mention_id = feed[n % len(feed)], first_id + n
        created = week.start + timedelta(seconds=rng.randrange(seconds))
        rows["mentions"].append(
            {
                "id": mention_id,
                "source": rng.choice(SOURCES),
                "collector": "bench",
                "native_id": str(mention_id),
                "url": f"https://example.com/post/{mention_id}",
                "text": item["text"],
                "language": item.get("lang"),
                "created_at": created,
                "collected_at": created + timedelta(minutes=5),
                "raw": {},
                "stage": 3,
            }
        )
        negative = rng.random()
        rows["classifications"].append(
            {
                "mention_id": mention_id,
                "language": item.get("lang") or "en",
                "sentiment": rng.choice(SENTIMENTS),
                "score_negative": negative,
                "score_neutral": (1 - negative) / 2,
                "score_positive": (1 - negative) / 2,
                "urgency": rng.choice(URGENCY),
                "urgency_score": rng.random(),
                "urgency_reasons": [],
                "intent": rng.choice(INTENTS),
                "model_name": "bench",
                "model_version": "1",
                "created_at": created + timedelta(minutes=6),
            }
        )
        if n % 3 == 0:
            drafted = created + timedelta(minutes=rng.randrange(5, 600))
            status = rng.choice(["pending", "approved", "edited", "rejected", "sent"])
            reviewed = drafted + timedelta(minutes=rng.randrange(1, 900))
            rows["drafts"].append(
                {
                    "mention_id": mention_id,
                    "text": "Sorry to hear that!",
                    "locale": "en-US",
                    "formality": "informal",
                    "intent": "delivery",
                    "channel": "public",
                    "language_source": "mention",
                    "status": status,
                    "created_at": drafted,
                    "updated_at": drafted,
                    "reviewed_at": None if status == "pending" else reviewed,
                }
            )
        if n % 20 == 0:
            rows["alerts"].append(
                {
                    "key": f"mention:{mention_id}:#alerts",
                    "mention_id": mention_id,
                    "level": rng.choice(URGENCY[2:]),
                    "channel": "#alerts",
                    "title": f"alert {mention_id}",
                    "body": "",
                    "state": "delivered",
                    "attempts": 1,
                    "created_at": created + timedelta(minutes=7),
                }
            )
    return rows


def fill(engine, week: Week, mentions: int) -> int:  # type: ignore[no-untyped-def]
    rng = random.Random(47)  # noqa: S311 (synthetic data, seeded)
    feed = [json.loads(line) for line in read_lines(FEED)]
    plan = [(week, mentions), (week.previous(), mentions * 8 // 10)]
    earlier = week.previous()
    for _ in range(4):
        earlier = earlier.previous()
        plan.append((earlier, mentions // 5))
    next_id, total = 1, 0
    tables = {
        "mentions": Mention.__table__,  # type: ignore[attr-defined]
        "classifications": Classification.__table__,  # type: ignore[attr-defined]
        "drafts": ReplyDraft.__table__,  # type: ignore[attr-defined]
        "alerts": Alert.__table__,  # type: ignore[attr-defined]
    }
    for each_week, count in plan:
        rows = _week_rows(feed, each_week, count, next_id, rng)
        with engine.begin() as connection:
            for name, table in tables.items():
                for start in range(0, len(rows[name]), BATCH):
                    connection.execute(insert(table), rows[name][start : start + BATCH])
        next_id += count
        total += count
    return total


def timed(function):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mentions", type=int, default=100_000, help="mentions in the week")
    parser.add_argument("--keep", type=Path, help="keep the database in this file")
    args = parser.parse_args()
    folder = tempfile.TemporaryDirectory()
    path = args.keep or Path(folder.name) / "bench.db"
    settings = load_settings()
    week = Week.parse("2026-W47", settings.digest.timezone)
    engine = open_database(f"sqlite:///{path}")
    total, fill_s = timed(lambda: fill(engine, week, args.mentions))
    digest, figures_s = timed(lambda: build_digest(engine, settings, week))
    charts, charts_s = timed(lambda: draw_charts(digest))
    _html, html_s = timed(lambda: render_html(digest, lambda name: f"cid:{name}", charts))
    _text, text_s = timed(lambda: render_text(digest))
    message, mime_s = timed(lambda: compose(digest, settings.digest))
    brand = digest.brands[0].current
    print(
        f"{args.mentions:,} mentions in {week.label} ({total:,} in the database, filled in "
        f"{fill_s:.1f} s); counted {brand.mentions:,}, {brand.negative:,} negative"
    )
    print(f"{'stage':44} {'seconds':>8}")
    for name, seconds in (
        ("figures (SQL aggregation, complaints, spikes)", figures_s),
        ("charts (3 PNGs, matplotlib Agg)", charts_s),
        ("render HTML (jinja2)", html_s),
        ("render plain text", text_s),
        ("figures + charts + render", figures_s + charts_s + html_s + text_s),
        ("compose the MIME message (charts again)", mime_s),
    ):
        print(f"{name:44} {seconds:8.2f}")
    print(f"message size: {len(message.as_bytes()) / 1024:.0f} KiB")
    engine.dispose()
    folder.cleanup()


if __name__ == "__main__":
    main()
