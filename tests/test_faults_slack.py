"""Slack down for an hour of simulated time while mentions keep arriving: `listener status`
shows the outbox backlog meanwhile, and on recovery every alert and draft is posted once, in
order. Against the local fake Slack (tests/fake_slack.py); the shorter outages are in
test_alerts_outbox.py and test_pipeline.py."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlmodel import Session, select
from typer.testing import CliRunner

from alerts.sinks import escape_mrkdwn
from listener.cli import app
from listener.models import Alert, Mention
from listener.pipeline import Pipeline
from listener.status import collect_status
from tests.conftest import FEED, write_feed
from tests.fake_slack import Failure
from tests.test_alerts_slack_review import NOW, REVIEW, Clock, make_settings, slack

__all__ = ["slack"]  # the fixture
CYCLE = timedelta(minutes=5)
ALERTS = "#social-alerts"
# Twelve cycles of an hour; a 429 with Retry-After holds everything for 10 minutes.
OUTAGE = [
    Failure(500),
    Failure(503, {"ok": False, "error": "service_unavailable"}),
    Failure(502, {"ok": False, "error": "bad_gateway"}),
    Failure(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "600"}),
    *[Failure(503, {"ok": False, "error": "service_unavailable"})] * 7,
]
LATE = [  # posted half an hour into the outage
    {"id": "late1", "source": "twitter", "author": "olga", "lang": "en",
     "text": "My Lumora PowerCube caught fire on the desk, the cable melted. Dangerous!"},
    {"id": "late2", "source": "twitter", "author": "jean", "lang": "fr",
     "text": "Commande Lumora LM-5512345 jamais reçue, je veux un remboursement maintenant"},
]  # fmt: skip


def _rows(engine) -> list[Alert]:
    with Session(engine) as session:
        return list(session.exec(select(Alert).order_by(Alert.id)))


def test_slack_down_for_an_hour_backlog_in_status_then_delivered_once_in_order(
    tmp_path, engine, slack
):
    settings = make_settings(tmp_path, FEED)
    clock = Clock(NOW)
    pipeline = Pipeline.build(settings, engine, clock=clock)
    slack.failures = list(OUTAGE)
    waiting_before, oldest = 0, None

    for minute in range(0, 60, 5):
        clock.now = NOW + timedelta(minutes=minute)
        if minute == 30:
            write_feed(tmp_path / "feed.jsonl", [*FEED, *LATE])
        report = pipeline.run_cycle()

        assert report.delivered == 0
        rows = _rows(engine)
        assert {r.state for r in rows} == {"pending"}
        outbox = collect_status(engine, settings, now=clock.now)["outbox"]
        assert outbox["alerts_waiting"] == len(rows) >= waiting_before
        assert outbox["by_channel"] == {
            ALERTS: sum(r.channel == ALERTS for r in rows),
            REVIEW: sum(r.channel == REVIEW for r in rows),
        }
        assert outbox["most_attempts"] == max(r.attempts for r in rows) > 0
        oldest = oldest or outbox["oldest_waiting_since"]
        assert outbox["oldest_waiting_since"] == oldest  # the head of the queue waits on
        waiting_before = len(rows)

    # Twelve cycles, eleven tries: nothing was sent while Slack's Retry-After ran.
    assert len(slack.requests) == len(OUTAGE)
    assert not slack.posted
    with Session(engine) as session:
        late = select(Alert.kind).join(Mention).where(Mention.native_id.in_(["late1", "late2"]))
        assert set(session.exec(late)) == {"alert", "draft"}  # queued behind the first ones
    status = _cli_status(tmp_path / "config.yaml")
    assert status["healthy"] is False
    assert status["outbox"]["alerts_waiting"] == waiting_before

    clock.now = NOW + timedelta(minutes=60)  # Slack is back
    recovered = pipeline.run_cycle()

    rows = _rows(engine)
    assert recovered.delivered == len(rows)
    assert all(r.state == "delivered" for r in rows)
    assert len(slack.posted) == len(rows)  # each once
    order = sorted(rows, key=lambda r: (r.kind == "draft", r.id))  # alerts first, then drafts
    by_post = sorted(rows, key=lambda r: r.external_id)
    assert [r.id for r in by_post] == [r.id for r in order]
    posted = [(p["channel"], p["text"]) for p in (r["payload"] for r in slack.posted)]
    alert_rows = [r for r in order if r.kind != "draft"]
    assert posted[: len(alert_rows)] == [(r.channel, escape_mrkdwn(r.title)) for r in alert_rows]
    assert {c for c, _ in posted[len(alert_rows) :]} == {REVIEW}
    assert rows[0].attempts == len(OUTAGE) + 1  # each cycle Slack was not holding us off

    assert pipeline.run_cycle().delivered == 0  # nothing left, nothing repeated
    assert len(slack.posted) == len(rows)
    outbox = collect_status(engine, settings, now=clock.now)["outbox"]
    assert outbox == {
        "alerts_waiting": 0,
        "by_channel": {},
        "oldest_waiting_since": None,
        "most_attempts": 0,
        "last_error": None,
        "alerts_failed_24h": 0,  # an outage fails nothing for good
        "last_failure": None,
    }


def _cli_status(config) -> dict:
    """`listener status --json`, as monitoring runs it; exit 1 while something is failing."""
    result = CliRunner().invoke(app, ["status", "--json", "-c", str(config)])
    assert result.exit_code == 1, result.output
    return json.loads(result.output)
