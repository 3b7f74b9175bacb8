"""The Slack outbox: Retry-After, outages, spikes folded into one crisis alert, re-raising
unacknowledged critical alerts, and quiet hours. Against the local fake Slack."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from sqlmodel import Session, select
from typer.testing import CliRunner

from alerts.outbox import earlier_alert, later_alert, quiet_until
from alerts.rules import alerts_for
from alerts.sinks import ACK_ACTION
from config.schema import EXAMPLE_CONFIG, ConfigError, parse_settings
from listener.cli import app
from listener.models import Alert, Classification, Mention
from listener.pipeline import Pipeline
from listener.status import collect_status
from tests import slack_payloads as sp
from tests.conftest import FEED
from tests.fake_slack import Failure
from tests.test_alerts_slack_review import NOW, Clock, build_desk, make_settings, slack

__all__ = ["slack"]  # the fixture, shared with the review tests


def _rows(engine) -> list[Alert]:
    with Session(engine) as session:
        return list(session.exec(select(Alert).order_by(Alert.id)))


def test_a_429_holds_the_outbox_until_retry_after_has_passed(tmp_path, engine, slack):
    clock = Clock()
    ratelimited = Failure(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"})
    slack.failures = [ratelimited]
    pipeline = Pipeline.build(make_settings(tmp_path, FEED), engine, clock=clock)

    first = pipeline.run_cycle()
    assert first.delivered == 0
    head = _rows(engine)[0]
    assert head.next_attempt_at == NOW + timedelta(seconds=30)
    assert head.last_error.startswith("rate limited for 30s")

    clock.now += timedelta(seconds=10)
    waiting = pipeline.run_cycle()
    assert waiting.delivered == 0
    assert len(slack.requests) == 1  # nothing sent while Slack asked us to wait

    clock.now += timedelta(seconds=21)
    done = pipeline.run_cycle()
    rows = _rows(engine)
    assert done.delivered == len(rows)
    assert {r.state for r in rows} == {"delivered"}
    assert len(slack.posted) == len(rows)  # each posted once
    assert rows[0].attempts == 2


def test_a_slack_outage_loses_nothing_and_posts_nothing_twice(tmp_path, engine, slack):
    slack.failures = [Failure(500), Failure(503, {"ok": False, "error": "service_unavailable"})]
    pipeline = Pipeline.build(make_settings(tmp_path, FEED), engine, clock=Clock())

    assert pipeline.run_cycle().delivered == 0
    assert pipeline.run_cycle().delivered == 0
    rows = _rows(engine)
    assert {r.state for r in rows} == {"pending"}
    assert any(r.kind == "draft" for r in rows)
    recovered = pipeline.run_cycle()

    rows = _rows(engine)
    assert recovered.delivered == len(rows)
    assert all(r.state == "delivered" and r.external_id for r in rows)
    assert len({r.external_id for r in rows}) == len(rows)
    assert len(slack.posted) == len(rows)
    kinds = [r.kind for r in sorted(rows, key=lambda r: r.delivered_at)]
    assert kinds == sorted(kinds, key=lambda k: k == "draft")  # alerts before review messages


def test_a_channel_slack_refuses_holds_its_own_rows_until_fixed_and_the_others_go_out(
    tmp_path, engine, slack
):
    slack.channel_errors = {"#social-alerts": "not_in_channel"}  # the app was not invited yet
    pipeline = Pipeline.build(make_settings(tmp_path, FEED), engine, clock=Clock())

    report = pipeline.run_cycle()

    rows = _rows(engine)
    held = [r for r in rows if r.channel == "#social-alerts"]
    others = [r for r in rows if r.channel != "#social-alerts"]
    assert held
    assert others  # the review messages
    assert [(r.state, r.attempts) for r in held] == [("pending", 1)] + [("pending", 0)] * (
        len(held) - 1
    )  # one try a cycle for the channel, not one per row
    assert {r.state for r in others} == {"delivered"}
    assert report.delivered == len(others)
    assert report.delivery_errors == ["#social-alerts: Slack refused the message: not_in_channel"]
    status = collect_status(engine, pipeline.settings, now=NOW)  # the pipeline's clock
    assert status["outbox"]["by_channel"] == {"#social-alerts": len(held)}
    assert status["outbox"]["last_error"] == "Slack refused the message: not_in_channel"
    assert status["healthy"] is False

    slack.channel_errors = {}  # someone invited the app
    fixed = pipeline.run_cycle()

    assert fixed.delivered == len(held)
    assert {r.state for r in _rows(engine)} == {"delivered"}
    assert collect_status(engine, pipeline.settings, now=NOW)["healthy"] is True


@pytest.mark.parametrize("action", ["move", "drop"])
def test_rows_waiting_for_a_refused_channel_can_be_moved_or_dropped(
    tmp_path, engine, slack, action
):
    slack.channel_errors = {"#social-alerts": "channel_not_found"}  # a typo, since corrected
    settings = make_settings(tmp_path, FEED)
    pipeline = Pipeline.build(settings, engine, clock=Clock())
    pipeline.run_cycle()
    held = [r.id for r in _rows(engine) if r.channel == "#social-alerts"]
    config = ["--config", str(settings.config_path)]
    command = (
        ["outbox", "move", "--from", "#social-alerts", "--to", "#social-alerts-eu"]
        if action == "move"
        else ["outbox", "drop", "--channel", "#social-alerts"]
    )

    result = CliRunner().invoke(app, command + config)

    assert result.exit_code == 0, result.output
    assert f"{len(held)} rows waiting for #social-alerts" in result.output
    report = pipeline.run_cycle()
    rows = {r.id: r for r in _rows(engine)}
    if action == "move":
        assert report.delivered == len(held)
        assert {(rows[i].channel, rows[i].state) for i in held} == {
            ("#social-alerts-eu", "delivered")
        }
    else:
        assert report.delivered == 0
        assert {rows[i].state for i in held} == {"dropped"}
        assert all(rows[i].last_error.startswith("dropped by an operator") for i in held)
    assert collect_status(engine, settings, now=NOW)["healthy"] is True
    again = CliRunner().invoke(app, command + config)
    assert (again.exit_code, again.output.strip()) == (1, "Nothing waits for #social-alerts.")


def test_a_message_slack_refuses_for_good_fails_alone_and_shows_in_status_for_a_day(
    tmp_path, engine, slack
):
    slack.channel_errors = {"#social-alerts": "msg_too_long"}
    clock = Clock(datetime.now(UTC))
    pipeline = Pipeline.build(make_settings(tmp_path, FEED), engine, clock=clock)

    report = pipeline.run_cycle()

    refused = [r for r in _rows(engine) if r.channel == "#social-alerts"]
    assert refused
    assert {(r.state, r.failed_at) for r in refused} == {("failed", clock.now)}
    assert len(report.refused) == len(refused)
    assert all("to #social-alerts not sent" in e for e in report.refused)
    assert report.delivery_errors == []
    tried = len(slack.requests)
    assert pipeline.run_cycle().delivered == 0
    assert len(slack.requests) == tried  # refused for good: not tried again
    status = collect_status(engine, pipeline.settings, now=clock.now)
    assert status["outbox"]["alerts_failed_24h"] == len(refused)
    assert "msg_too_long" in status["outbox"]["last_failure"]
    assert status["healthy"] is False
    later = collect_status(engine, pipeline.settings, now=clock.now + timedelta(days=2))
    assert (later["outbox"]["alerts_failed_24h"], later["outbox"]["last_failure"]) == (0, None)


def test_a_reraise_waits_once_while_slack_is_down_and_is_dropped_once_acknowledged(
    tmp_path, engine, slack
):
    clock = Clock()
    settings = make_settings(tmp_path, [FEED[0]], reraise_after="30m")  # the burn: critical
    for desk in build_desk(settings, engine, slack, clock):
        [critical] = [r for r in _rows(engine) if r.kind == "alert"]
        pipeline = Pipeline.build(settings, engine, clock=clock)
        slack.failures = [Failure(503, {"ok": False, "error": "service_unavailable"})] * 12
        for _ in range(12):  # two hours of outage, a cycle every 10 minutes
            clock.now += timedelta(minutes=10)
            pipeline.run_cycle()
        waiting = [r for r in _rows(engine) if r.kind == "reraise"]
        assert [r.state for r in waiting] == ["pending"]  # one repeat waits, not one a cycle
        slack.failures = []
        click = sp.block_action(
            ACK_ACTION, str(critical.id), critical.external_channel, critical.external_id
        )
        assert desk.post(click).status == 200
        posted = len(slack.posted)

        report = pipeline.run_cycle()

        [dropped] = [r for r in _rows(engine) if r.kind == "reraise"]
        assert dropped.state == "superseded"
        assert (
            dropped.last_error
            == f"alert #{critical.id} was acknowledged by {sp.REVIEWER} meanwhile"
        )
        assert (report.delivered, len(slack.posted)) == (0, posted)


def test_alerts_printed_on_the_console_are_not_raised_again_once_slack_is_set_up(
    tmp_path, engine, slack, monkeypatch
):
    clock = Clock()
    settings = make_settings(tmp_path, [FEED[0]], reraise_after="30m")  # the burn: critical
    with monkeypatch.context() as console_only:
        console_only.delenv("SLACK_BOT_TOKEN")
        Pipeline.build(settings, engine, clock=clock).run_cycle()  # e.g. `listener demo`
    [printed] = [r for r in _rows(engine) if r.kind == "alert"]
    assert (printed.level, printed.sink, printed.external_id) == ("critical", "console", None)

    clock.now += timedelta(days=3)
    report = Pipeline.build(settings, engine, clock=clock).run_cycle()

    assert report.reraised == 0  # nobody could acknowledge it: it has no Slack message
    assert not [r for r in _rows(engine) if r.kind == "reraise"]


def _burst(count: int, minutes_apart: int = 4) -> list[dict]:
    return [
        {
            "id": f"b{i}",
            "source": "twitter",
            "author": f"angry{i}",
            "author_followers": 100 * i,
            "lang": "en",
            "created_at": (NOW - timedelta(minutes=minutes_apart * i)).isoformat(),
            "text": f"Lumora order {1000 + i} never arrived, terrible service, I want a refund",
        }
        for i in range(count)
    ]


def test_a_burst_of_negative_mentions_raises_one_crisis_alert_with_examples(
    tmp_path, engine, slack
):
    baseline = [
        {
            **record,
            "id": f"old{n}",
            "created_at": (NOW - timedelta(hours=10)).isoformat(),
            "text": f"Lumora order {2000 + n} late again, terrible service, I want a refund",
        }
        for n, record in enumerate(_burst(2))
    ]
    settings = make_settings(tmp_path, _burst(12) + baseline)
    report = Pipeline.build(settings, engine, clock=Clock()).run_cycle()

    alerts = [r for r in _rows(engine) if r.kind != "draft"]
    [crisis] = [a for a in alerts if a.kind == "crisis"]
    assert crisis.level == "critical"
    assert "12 negative mentions of Lumora in en in the last 60 min" in crisis.body
    assert crisis.body.count("• @angry") == 3  # examples, the most reached first
    assert "@angry11" in crisis.body
    assert report.folded_into_spikes == 12
    individual = [a for a in alerts if a.kind == "alert"]
    assert all(a.mention_id is not None for a in individual)
    # Only the two old mentions (outside the burst) alerted one by one.
    assert len(individual) == 2
    [post] = [p["payload"] for p in slack.posted if "CRISIS" in p["payload"]["text"]]
    assert ACK_ACTION in json.dumps(post["blocks"])


def test_no_spike_without_a_burst_over_the_baseline(tmp_path, engine, slack):
    steady = [
        {
            **record,
            "id": f"d{n}",
            "created_at": (NOW - timedelta(hours=n + 1)).isoformat(),
            "text": f"Lumora order {3000 + n} late again, terrible service, I want a refund",
        }
        for n, record in enumerate(_burst(20))
    ]
    settings = make_settings(tmp_path, _burst(4) + steady)
    report = Pipeline.build(settings, engine, clock=Clock()).run_cycle()
    assert report.folded_into_spikes == 0
    assert not [r for r in _rows(engine) if r.kind == "crisis"]


def test_an_unacknowledged_critical_alert_is_raised_again_until_acknowledged(
    tmp_path, engine, slack
):
    clock = Clock()
    settings = make_settings(tmp_path, [FEED[0]], reraise_after="30m")  # the burn: critical
    for desk in build_desk(settings, engine, slack, clock):
        [critical] = [r for r in _rows(engine) if r.kind == "alert"]
        assert critical.level == "critical"
        pipeline = Pipeline.build(settings, engine, clock=clock)

        clock.now += timedelta(minutes=20)
        assert pipeline.run_cycle().reraised == 0
        clock.now += timedelta(minutes=11)
        assert pipeline.run_cycle().reraised == 1
        [again] = [r for r in _rows(engine) if r.kind == "reraise"]
        assert again.parent_id == critical.id
        assert again.state == "delivered"
        assert again.title.startswith("Still unacknowledged after 31 min: CRITICAL")

        click = sp.block_action(
            ACK_ACTION, str(critical.id), again.external_channel, again.external_id
        )
        assert desk.post(click).status == 200
        with Session(engine) as session:
            acked = session.get(Alert, critical.id)
        assert (acked.acknowledged_by, acked.acknowledged_at) == (sp.REVIEWER, clock.now)
        shown = slack.messages[(again.external_channel, again.external_id)]
        assert f"Acknowledged by <@{sp.REVIEWER}>" in json.dumps(shown["blocks"])
        assert ACK_ACTION not in json.dumps(shown["blocks"])

        clock.now += timedelta(hours=2)
        assert pipeline.run_cycle().reraised == 0


def test_quiet_hours_hold_non_critical_alerts_for_the_market_until_morning(tmp_path, engine, slack):
    late = datetime(2026, 11, 27, 21, 30, tzinfo=UTC)  # 22:30 in Berlin
    mild = {
        "id": "q1",
        "source": "twitter",
        "author": "jonas",
        "lang": "de",
        "text": "Die Lieferung von Lumora dauert etwas länger als gedacht, schade",
    }
    settings = make_settings(tmp_path, [FEED[0], mild])
    markets = [
        m.model_copy(update={"quiet_hours": "22:00-07:00"}) if m.code == "de-DE" else m
        for m in settings.markets
    ]
    settings = settings.model_copy(update={"markets": markets})
    clock = Clock(late)
    pipeline = Pipeline.build(settings, engine, clock=clock)
    pipeline.run_cycle()

    alerts = {r.level: r for r in _rows(engine) if r.kind == "alert"}
    assert alerts["critical"].state == "delivered"  # critical goes out at night
    assert alerts["high"].state == "pending"
    assert alerts["high"].next_attempt_at == datetime(2026, 11, 28, 6, 0, tzinfo=UTC)

    clock.now = datetime(2026, 11, 28, 6, 1, tzinfo=UTC)
    pipeline.run_cycle()
    assert {r.state for r in _rows(engine)} == {"delivered"}


@pytest.mark.parametrize(
    ("local", "held_until"),
    [
        ("2026-11-27T23:59", "2026-11-28T07:00"),
        ("2026-11-28T03:00", "2026-11-28T07:00"),
        ("2026-11-28T07:00", None),
        ("2026-11-27T21:59", None),
    ],
)
def test_quiet_hours_cross_midnight_in_the_market_time_zone(settings, local, held_until):
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    markets = [
        m.model_copy(update={"quiet_hours": "22:00-07:00"}) if m.code == "de-DE" else m
        for m in settings.markets
    ]
    settings = settings.model_copy(update={"markets": markets})
    now = datetime.fromisoformat(local).replace(tzinfo=berlin)
    expected = datetime.fromisoformat(held_until).replace(tzinfo=berlin) if held_until else None
    assert quiet_until(settings, "de", "high", now) == expected
    assert quiet_until(settings, "de", "critical", now) is None
    assert quiet_until(settings, "en", "high", now) is None  # en-US has no quiet hours


@pytest.mark.parametrize(
    ("slack_keys", "market_keys", "problem"),
    [
        (
            {},
            {"quiet_hours": "22:00-25:00"},
            "markets[0].quiet_hours: '22:00-25:00' is not a range",
        ),
        ({"review": {"reviewers": ["bob"]}}, {}, "slack.review.reviewers[0]"),
        ({"spike": {"window": "often"}}, {}, "slack.spike.window: 'often' is not a duration"),
        ({"reraise_after": "soon"}, {}, "slack.reraise_after: 'soon' is not a duration"),
    ],
)
def test_bad_review_and_alert_settings_are_reported(slack_keys, market_keys, problem):
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["slack"].update(slack_keys)
    data["markets"][0].update(market_keys)
    with pytest.raises(ConfigError) as error:
        parse_settings(data, file="my.yaml")
    assert problem in str(error.value)


def test_routes_by_the_brand_a_mention_names_when_there_are_several(settings):
    from config.schema import AlertRoute, Brand

    brands = [*settings.brands, Brand(name="Nordlys", keywords={"en": ["nordlys lamp"]})]
    routes = [
        AlertRoute(channel="#lumora", min_urgency="low", brands=["Lumora"]),
        AlertRoute(channel="#nordlys", min_urgency="low", brands=["Nordlys"]),
    ]
    settings = settings.model_copy(
        update={"brands": brands, "slack": settings.slack.model_copy(update={"routes": routes})}
    )
    classification = Classification(
        mention_id=1,
        language="en",
        sentiment="negative",
        score_negative=0.9,
        score_neutral=0.05,
        score_positive=0.05,
        urgency="high",
        urgency_score=0.8,
        intent="damaged_defective",
        model_name="test",
        model_version="1",
    )

    def channels(text: str) -> list[str]:
        mention = Mention(
            id=1, source="twitter", collector="feed", native_id="1", text=text, created_at=NOW
        )
        return [a.channel for a in alerts_for(mention, classification, settings)]

    assert channels("My Nordlys lamp arrived broken") == ["#nordlys"]
    assert channels("Lumora lamp arrived broken") == ["#lumora"]
    assert channels("A lamp arrived broken") == []  # no brand named, several configured


def test_on_the_console_drafts_are_not_queued_and_alerts_not_re_raised(tmp_path, engine, capsys):
    clock = Clock()
    pipeline = Pipeline.build(make_settings(tmp_path, FEED), engine, clock=clock)
    first = pipeline.run_cycle()
    clock.now += timedelta(hours=3)
    later = pipeline.run_cycle()
    assert (first.reviews_queued, later.reraised) == (0, 0)
    assert {r.kind for r in _rows(engine)} == {"alert"}
    assert "[ALERT → #social-alerts]" in capsys.readouterr().out


def test_an_escalation_follows_up_the_first_delivered_alert_never_a_later_one(engine):
    def row(key: str, channel: str = "#social-alerts", **kw) -> Alert:
        fields = {"mention_id": 1, "level": "high", "channel": channel, "title": key, "body": ""}
        return Alert(key=key, **{**fields, **kw})

    with Session(engine) as session:
        session.add(
            Mention(id=1, source="twitter", collector="x", native_id="1", text="t", created_at=NOW)
        )
        session.commit()
        held = row("mention:1:#social-alerts")  # first, but held back by quiet hours
        other = row("mention:1:#cs", channel="#cs", state="delivered")
        viral = row("mention:1:#social-alerts:viral", level="critical", state="delivered")
        session.add_all([held, other, viral])
        session.commit()
        assert earlier_alert(session, viral) is None  # the first one was not delivered yet
        assert earlier_alert(session, held) is None  # nor does the first follow up its escalation
        assert later_alert(session, held) is viral  # which makes the first one stale
        assert later_alert(session, viral) is None
        held.state = "delivered"
        assert earlier_alert(session, viral) is held
        review = row("draft:1", kind="draft")
        session.add(review)
        session.flush()
        assert earlier_alert(session, review) is None  # review messages are not alerts
