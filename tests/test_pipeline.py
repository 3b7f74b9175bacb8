from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from sqlmodel import Session, select

from config.schema import EXAMPLE_CONFIG, load_settings
from listener.models import Alert, Classification, Mention, ReplyDraft, SourceCursor
from listener.nlp.keywords import builtin_fingerprint
from listener.pipeline import Pipeline
from listener.sources import FetchResult, Source, SourceSet
from listener.sources.replay import ReplaySource
from listener.stats import collect_stats
from listener.storage import open_database
from tests.conftest import FEED, write_feed
from tests.fake_slack import Failure, FakeSlack

SLACK_TOKEN = "xoxb-test-placeholder"


def _counts(engine) -> dict:
    stats = collect_stats(engine)
    with Session(engine) as session:
        stats["alert_keys"] = sorted(a.key for a in session.exec(select(Alert)))
        stats["draft_mentions"] = sorted(d.mention_id for d in session.exec(select(ReplyDraft)))
    return stats


def test_one_cycle_collects_classifies_drafts_and_alerts(engine, config_file):
    pipeline = Pipeline.build(load_settings(config_file), engine)
    report = pipeline.run_cycle()

    assert report.sources["feed"].stored == 8
    assert report.sources["feed"].cross_posts == 1
    assert report.classified == 8
    assert report.classifier == f"baseline-lexicon 1@{builtin_fingerprint()}"
    assert report.no_reply["the brand's own post"] == 1
    assert report.no_reply["cross-post of mention 2, answered there"] == 1
    assert report.no_reply["chatter"] == 1
    stats = _counts(engine)
    assert stats["mentions"]["by_language"] == {"de": 1, "en": 4, "hr": 1, "it": 1, "ja": 1}
    assert stats["mentions"]["by_urgency"]["critical"] >= 2  # the burn and the lawyer
    assert stats["drafts"]["total"] == report.drafted == 5
    assert stats["alerts"]["by_state"] == {"delivered": report.alerts_created}
    assert not any(key.startswith("mention:3:") for key in stats["alert_keys"])  # cross-post


def test_a_complaint_that_already_drew_many_reactions_is_critical(engine, config_file, feed):
    write_feed(
        feed,
        [
            {
                "id": "v1",
                "source": "twitter",
                "lang": "en",
                "engagement": 640,
                "text": "Lumora support is useless, worst company ever",
            },
            {
                "id": "v2",
                "source": "twitter",
                "lang": "en",
                "engagement": 12,
                "text": "Lumora support is useless, worst company ever!!",
            },
        ],
    )
    Pipeline.build(load_settings(config_file), engine).run_cycle()

    with Session(engine) as session:
        rows = session.exec(
            select(Mention, Classification).join(Classification).order_by(Mention.native_id)
        ).all()
        alerts = session.exec(select(Alert)).all()
    (spreading, spread), (quiet, calm) = rows
    assert (spreading.engagement, quiet.engagement) == (640, 12)
    assert spread.urgency == "critical"
    assert "complaint already has 640 likes, reposts and replies" in spread.urgency_reasons
    assert calm.urgency != "critical"
    assert any(a.mention_id == spreading.id and "640 reactions" in a.body for a in alerts)


def test_a_second_cycle_adds_nothing(engine, config_file):
    settings = load_settings(config_file)
    Pipeline.build(settings, engine).run_cycle()
    before = _counts(engine)
    report = Pipeline.build(settings, engine).run_cycle()
    assert (report.sources["feed"].stored, report.classified, report.drafted) == (0, 0, 0)
    assert _counts(engine) == before


class BrokenSource(Source):
    type: ClassVar[str] = "broken"

    @classmethod
    def from_config(cls, config, settings):  # pragma: no cover - built directly in the test
        raise NotImplementedError

    def fetch(self, cursor):
        raise ConnectionError("platform unreachable")


def test_a_failing_source_is_recorded_backs_off_and_does_not_stop_others(engine, config_file):
    settings = load_settings(config_file)
    good = ReplaySource("feed", [Path(settings.sources[0].paths[0])], max_items=100)
    sources = SourceSet(enabled=[BrokenSource("broken", 100), good], disabled={})
    pipeline = Pipeline.build(settings, engine, sources=sources)

    report = pipeline.run_cycle()

    assert report.sources["broken"].error == "ConnectionError: platform unreachable"
    assert report.sources["feed"].stored == 8
    with Session(engine) as session:
        state = session.get(SourceCursor, ("broken", ""))
    assert state.consecutive_failures == 1
    assert state.last_error == "ConnectionError: platform unreachable"
    assert (
        timedelta(minutes=4) <= state.next_attempt_at - state.last_error_at <= timedelta(minutes=6)
    )
    skipped = pipeline.collect(sources.enabled[0], respect_backoff=True)
    assert skipped.skipped.startswith("backing off after errors until")


class UnstorableSource(Source):
    """Returns an item the database refuses (no time: NOT NULL), as a collector's bug could."""

    type: ClassVar[str] = "unstorable"

    @classmethod
    def from_config(cls, config, settings):  # pragma: no cover - built directly in the test
        raise NotImplementedError

    def fetch(self, cursor):
        item = Mention(source="forum", collector=self.name, native_id="1", text="lumora broke")
        return FetchResult(mentions=[item], cursor="after-1")


def test_a_store_that_fails_is_recorded_as_the_source_s_failure(engine, config_file):
    settings = load_settings(config_file)
    good = ReplaySource("feed", [Path(settings.sources[0].paths[0])], max_items=100)
    sources = SourceSet(enabled=[UnstorableSource("forum", 100), good], disabled={})
    pipeline = Pipeline.build(settings, engine, sources=sources)

    outcomes = pipeline.collect_all()

    assert outcomes["forum"].error.startswith("IntegrityError: ")
    assert outcomes["feed"].stored == 8
    with Session(engine) as session:
        state = session.get(SourceCursor, ("forum", ""))
    assert (state.cursor, state.consecutive_failures) == (None, 1)
    assert state.last_error == outcomes["forum"].error
    assert state.next_attempt_at is not None


def test_slack_outage_keeps_alerts_in_the_outbox_until_delivered_once_in_order(
    engine, config_file, monkeypatch
):
    with FakeSlack() as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_TOKEN)
        monkeypatch.setenv("SLACK_BASE_URL", slack.base_url)
        slack.failures = [Failure(503), Failure(429, headers={"Retry-After": "1"})]
        now = [datetime.now(UTC)]
        pipeline = Pipeline.build(load_settings(config_file), engine, clock=lambda: now[0])

        first = pipeline.run_cycle()
        assert first.delivered == 0
        assert first.delivery_errors
        second = pipeline.run_cycle()  # still failing once (429)
        assert second.delivered == 0
        waiting = pipeline.run_cycle()  # Slack's Retry-After (1 s) is honoured
        assert waiting.delivered == 0
        assert "rate limit" in waiting.delivery_errors[0]
        now[0] += timedelta(seconds=2)
        third = pipeline.run_cycle()

        assert third.delivered == first.alerts_created + first.reviews_queued
        with Session(engine) as session:
            rows = list(session.exec(select(Alert).order_by(Alert.id)))
        alerts = [a for a in rows if a.kind == "alert"]
        assert [a.state for a in rows] == ["delivered"] * len(rows)
        assert alerts[0].attempts == 3
        posted = [r["payload"] for r in slack.posted]
        posted_titles = [p["text"] for p in posted if p["channel"] != "#social-review"]
        assert len(posted) == len(rows)  # nothing posted twice
        assert posted_titles == [a.title for a in alerts]  # in order


def _run_once(config_file: Path, failpoint: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LISTENER_FAILPOINTS": failpoint or ""}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "listener",
            "run",
            "--once",
            "--config",
            str(config_file),
            "--log-level",
            "warning",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def clean_run_counts(tmp_path_factory) -> dict:
    """The database after one uninterrupted cycle: what every interrupted run must end at."""
    tmp_path = tmp_path_factory.mktemp("clean")
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["sources"] = [
        {"name": "feed", "type": "replay", "paths": [str(write_feed(tmp_path / "f.jsonl", FEED))]}
    ]
    data["model"].update(name="baseline", batch_size=3)  # pipeline mechanics, fast model
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    engine = open_database(f"sqlite:///{tmp_path / 'clean.db'}")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp_path / 'clean.db'}"
    try:
        assert _run_once(config).returncode == 0
    finally:
        del os.environ["DATABASE_URL"]
    return _counts(engine)


@pytest.mark.slow
@pytest.mark.parametrize(
    "failpoint",
    [
        "after_fetch",
        "after_collect",
        "classify_batch",
        "after_classify",
        "after_respond",
        "after_route",
    ],
)
def test_killed_mid_cycle_then_rerun_finishes_exactly_once(
    database_url, config_file, clean_run_counts, failpoint
):
    killed = _run_once(config_file, failpoint)
    assert killed.returncode == -9, killed.stderr  # SIGKILL: no cleanup code ran

    rerun = _run_once(config_file)
    assert rerun.returncode == 0, rerun.stderr

    engine = open_database(database_url)
    assert _counts(engine) == clean_run_counts
