"""Complaints that go viral after collection: re-read on X (a local server answering like API
v2), escalated to critical, alerted once, through the real pipeline and database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from config.schema import Market, ViralRecheck, load_settings
from config.schema import TwitterSource as TwitterConfig
from listener.models import Alert, Classification, Mention
from listener.pipeline import Pipeline
from listener.sources import SourceSet
from listener.stats import collect_stats
from listener.status import collect_status
from tests.fake_apis import Reply
from tests.test_alerts_slack_review import slack
from tests.test_sources_twitter import LOOKUP, FakeX, _make

__all__ = ["slack"]  # the fixture: a local server answering like Slack's Web API
COMPLAINT = "lumora order {n} never arrived, worst service ever, I want my money back"
PRAISE = "lumora glow {n} is wonderful, thank you so much, love it"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def x(api):
    return FakeX(api)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def build(engine, api, monkeypatch, clock):
    """The real pipeline (example config, keyword baseline) around one X source."""

    def build(quiet_now: bool = False, **recheck) -> Pipeline:
        """`quiet_now`: every market is in its quiet hours, from an hour ago to two hours on."""
        settings = load_settings()
        model = settings.model.model_copy(
            update={
                "name": "baseline",
                "viral_recheck": ViralRecheck(**recheck),
            }
        )
        x_config = TwitterConfig(type="twitter", name="x-main", base_url=f"{api.url}/2/")
        markets = [_quiet_now(m, clock.now) for m in settings.markets] if quiet_now else None
        settings = settings.model_copy(
            update={"model": model, "sources": [x_config], "markets": markets or settings.markets}
        )
        source = _make(settings, api, monkeypatch)
        sources = SourceSet(enabled=[source], disabled={})
        return Pipeline.build(settings, engine, sources=sources, clock=clock)

    return build


def _quiet_now(market: Market, now: datetime) -> Market:
    local = now.astimezone(ZoneInfo(market.timezone))
    hours = f"{local - timedelta(hours=1):%H:%M}-{local + timedelta(hours=2):%H:%M}"
    return market.model_copy(update={"quiet_hours": hours})


def _rows(engine) -> dict[str, tuple[Mention, Classification]]:
    with Session(engine) as session:
        query = select(Mention, Classification).join(Classification)
        return {m.native_id: (m, c) for m, c in session.exec(query)}


def _alert_keys(engine) -> list[str]:
    with Session(engine) as session:
        return sorted(a.key for a in session.exec(select(Alert)))


def _first_cycle(x, pipeline) -> tuple[str, str]:
    """Two complaints collected and routed (newest first), then their reactions re-read due."""
    x.post(2, text=COMPLAINT)
    pipeline.run_cycle()
    rows = _rows(pipeline.engine)
    assert all(c.sentiment == "negative" and c.urgency != "critical" for _, c in rows.values())
    newest, older = sorted(rows, key=int, reverse=True)
    return newest, older


def test_a_complaint_that_goes_viral_after_collection_becomes_critical_and_alerts(
    engine, api, x, build, clock
):
    pipeline = build()
    viral, quiet = _first_cycle(x, pipeline)
    first_alerts = _alert_keys(engine)
    x.react(viral, 500)
    x.react(quiet, 20)
    clock.advance(timedelta(minutes=31))

    report = pipeline.run_cycle()

    outcome = report.rechecks["x-main"]
    assert (outcome.watched, outcome.updated, outcome.escalated) == (2, 2, 1)
    (call,) = api.calls(LOOKUP)
    assert sorted(call.query["ids"].split(",")) == sorted([viral, quiet])
    rows = _rows(engine)
    mention, classification = rows[viral]
    assert mention.engagement == 500 + 1 + 1  # likes, retweets (n=1), replies
    assert classification.urgency == "critical"
    assert classification.urgency_score >= 0.9
    assert classification.urgency_reasons[-1] == (
        "complaint already has 502 likes, reposts and replies"
    )
    assert rows[quiet][0].engagement == 20 + 0 + 1
    assert rows[quiet][1].urgency != "critical"
    new_keys = sorted(set(_alert_keys(engine)) - set(first_alerts))
    assert f"mention:{mention.id}:#social-alerts:viral" in new_keys  # beside its first alert
    assert all(k.startswith(f"mention:{mention.id}:") for k in new_keys)
    assert all(k.endswith(":viral") for k in new_keys)
    assert outcome.alerts == len(new_keys)
    with Session(engine) as session:
        viral_alert = session.exec(select(Alert).where(Alert.key == new_keys[0])).one()
    assert viral_alert.level == "critical"
    assert "502 likes, reposts and replies" in viral_alert.body

    clock.advance(timedelta(minutes=31))
    again = pipeline.run_cycle().rechecks["x-main"]
    assert again.watched == 1  # the critical one is no longer watched
    assert _alert_keys(engine) == sorted(first_alerts + new_keys)  # and alerts only once


def test_a_recheck_waits_its_interval_and_praise_is_never_watched(engine, api, x, build, clock):
    pipeline = build(every="1h")
    _first_cycle(x, pipeline)
    x.post(1, start=5, text=PRAISE)
    pipeline.run_cycle()
    clock.advance(timedelta(minutes=59))
    assert pipeline.recheck()["x-main"].skipped == "not due yet"

    clock.advance(timedelta(minutes=2))
    outcome = pipeline.recheck()["x-main"]

    assert outcome.watched == 2
    (call,) = api.calls(LOOKUP)
    praise = next(m for m, c in _rows(engine).values() if c.sentiment == "positive")
    assert praise.native_id not in call.query["ids"].split(",")


def test_complaints_older_than_the_window_are_not_read_again(engine, api, x, build, clock):
    pipeline = build(window="2h")
    _first_cycle(x, pipeline)  # posted an hour ago
    clock.advance(timedelta(hours=1, minutes=1))

    assert pipeline.recheck()["x-main"].watched == 0
    assert api.calls(LOOKUP) == []


def test_the_recheck_can_be_switched_off(engine, api, x, build, clock):
    pipeline = build(enabled=False)
    _first_cycle(x, pipeline)
    clock.advance(timedelta(days=1))

    assert pipeline.run_cycle().rechecks == {}
    assert api.calls(LOOKUP) == []


def test_a_failing_recheck_backs_off_and_shows_in_status(engine, api, x, build, clock):
    pipeline = build()
    _first_cycle(x, pipeline)
    clock.advance(timedelta(minutes=31))
    api.fail(LOOKUP, Reply(403, {"title": "Forbidden", "status": 403}))

    report = pipeline.run_cycle()

    assert "access level includes post lookup" in report.rechecks["x-main"].error
    assert report.sources["x-main"].error is None  # collection itself goes on
    assert pipeline.recheck()["x-main"].skipped.startswith("backing off after errors until")
    status = collect_status(engine, pipeline.settings, now=clock())
    assert not status["healthy"]
    assert status["failing_sources"] == ["x-main"]
    assert "post lookup" in status["sources"]["x-main"]["reactions_recheck_error"]


def test_the_daemon_schedules_the_recheck_only_where_a_source_can(engine, build, config_file):
    from apscheduler.schedulers.background import BackgroundScheduler

    from scheduler import Daemon

    def jobs(pipeline: Pipeline) -> set[str]:
        scheduler = BackgroundScheduler()
        Daemon(pipeline.settings, pipeline).schedule(scheduler)
        return {job.id for job in scheduler.get_jobs()}

    assert "recheck" in jobs(build())
    assert "recheck" not in jobs(build(enabled=False))
    replay_only = Pipeline.build(load_settings(config_file), engine)
    assert "recheck" not in jobs(replay_only)


def test_on_slack_the_escalation_answers_in_the_first_alerts_thread_and_marks_it(
    engine, x, build, clock, slack
):
    pipeline = build()
    viral, _ = _first_cycle(x, pipeline)
    x.react(viral, 500)
    clock.advance(timedelta(minutes=31))

    pipeline.run_cycle()

    mention, _ = _rows(engine)[viral]
    with Session(engine) as session:
        key = f"mention:{mention.id}:#social-alerts"
        first = session.exec(select(Alert).where(Alert.key == key)).one()
        escalation = session.exec(select(Alert).where(Alert.key == f"{key}:viral")).one()
    post = next(p["payload"] for p in slack.posted if p["payload"].get("thread_ts"))
    assert (post["channel"], post["thread_ts"]) == (first.external_channel, first.external_id)
    assert post["reply_broadcast"] is True  # seen in the channel: its @here reaches people
    assert post["text"].startswith("CRITICAL")
    assert (escalation.external_channel, escalation.state) == (first.external_channel, "delivered")
    marked = slack.messages[(first.external_channel, first.external_id)]
    assert f"Now CRITICAL: see alert #{escalation.id} in the thread" in str(marked["blocks"])
    assert marked["text"] == first.title  # the first alert's own title, now with the note


def test_a_first_alert_still_held_by_quiet_hours_when_its_escalation_went_out_is_never_sent(
    engine, x, build, clock, slack
):
    def alerts_posted() -> list[dict]:
        return [p["payload"] for p in slack.posted if p["payload"]["channel"] == "#social-alerts"]

    pipeline = build(quiet_now=True)
    viral, calm = _first_cycle(x, pipeline)
    assert alerts_posted() == []  # the complaints are high at most: held until the morning
    x.react(viral, 500)
    clock.advance(timedelta(minutes=31))
    pipeline.run_cycle()  # critical: not held
    mention, _ = _rows(engine)[viral]
    key = f"mention:{mention.id}:#social-alerts"
    (escalation,) = alerts_posted()
    assert escalation["text"].startswith("CRITICAL")
    assert "thread_ts" not in escalation  # nothing was posted yet to answer in

    clock.advance(timedelta(hours=3))  # the quiet hours are over
    report = pipeline.run_cycle()

    with Session(engine) as session:
        first = session.exec(select(Alert).where(Alert.key == key)).one()
        later = session.exec(select(Alert).where(Alert.key == f"{key}:viral")).one()
    assert (first.state, first.attempts, first.external_id) == ("superseded", 0, None)
    assert first.last_error == f"superseded by alert #{later.id} (critical), which went out first"
    other, reraise = alerts_posted()[1:]  # as many as report.delivered
    assert report.delivered == 2
    assert _rows(engine)[calm][0].text in str(other["blocks"])  # the other complaint's, held
    assert mention.text not in str(other["blocks"])
    assert reraise["text"].startswith("Still unacknowledged")  # of the escalation
    assert collect_status(engine, pipeline.settings)["outbox"]["alerts_waiting"] == 0
    assert collect_stats(engine)["alerts"]["by_state"]["superseded"] == 1
