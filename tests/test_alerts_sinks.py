from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from alerts.sinks import ConsoleSink, DeliveryError, SlackSink, build_sink, escape_mrkdwn, printable
from listener.models import Alert, Mention
from listener.pipeline import CycleReport, Pipeline
from listener.status import collect_status
from listener.storage import store_mentions
from tests.fake_slack import Failure, FakeSlack

HOSTILE = "<!channel> refund now <https://evil.example|lumora.com> & <@U123>"


def _alert(**kw) -> Alert:
    defaults = {
        "id": 7,
        "key": "k",
        "level": "critical",
        "channel": "#social-alerts",
        "title": "CRITICAL safety on twitter (en)",
        "body": HOSTILE,
    }
    return Alert(**{**defaults, **kw})


def test_escape_mrkdwn_neutralises_pings_and_disguised_links():
    escaped = escape_mrkdwn(HOSTILE)
    assert "<" not in escaped
    assert ">" not in escaped
    assert escaped.startswith("&lt;!channel&gt;")
    assert "&amp;" in escaped


def test_printable_shows_bidi_and_zero_width_characters():
    assert printable("a\u202eb\u200bc\n") == "a\\u202eb\\u200bc\n"


def test_printable_keeps_the_joiners_of_emoji_and_indic_and_arabic_script_text():
    for text in ("lumora 🤦\u200d♀️ parcel", "क्\u200dष", "می\u200cخواهم"):
        assert printable(text) == text


def test_console_sink_prints_when_slack_is_not_configured(settings, monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    stream = io.StringIO()
    sink = build_sink(settings, stream)
    assert isinstance(sink, ConsoleSink)
    sink.deliver(_alert(notify="<!here>"))
    assert "[ALERT → #social-alerts] <!here> CRITICAL safety" in stream.getvalue()


@pytest.fixture
def slack(settings, monkeypatch):
    with FakeSlack() as fake:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-placeholder")
        monkeypatch.setenv("SLACK_BASE_URL", fake.base_url)
        yield fake


def test_slack_sink_posts_escaped_block_kit(settings, slack):
    sink = build_sink(settings)
    assert isinstance(sink, SlackSink)
    ts = sink.deliver(_alert())
    assert ts == "1700000000.000001"
    [request] = slack.posted
    payload = request["payload"]
    assert payload["channel"] == "#social-alerts"
    assert request["auth"] == "Bearer xoxb-test-placeholder"
    body = str(payload["blocks"])
    assert "<!channel>" not in body
    assert "&lt;!channel&gt;" in body
    assert "<https://evil.example" not in body


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (Failure(500, {"ok": False, "error": "internal_error"}), "Slack"),
        (Failure(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}), "ratelimited"),
        (Failure(200, {"ok": False, "error": "channel_not_found"}), "channel_not_found"),
    ],
)
def test_slack_refusals_become_delivery_errors(settings, slack, failure, reason):
    slack.failures.append(failure)
    with pytest.raises(DeliveryError, match=reason):
        build_sink(settings).deliver(_alert())
    assert slack.posted == []


def test_unreachable_slack_is_a_delivery_error(settings, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-placeholder")
    monkeypatch.setenv("SLACK_BASE_URL", "http://127.0.0.1:9/api/")
    with pytest.raises(DeliveryError, match="Slack unreachable"):
        build_sink(settings).deliver(_alert())


def test_a_follow_up_is_delivered_even_where_marking_the_earlier_message_fails(
    settings, slack, caplog
):
    # The earlier message is gone (deleted in Slack): chat.update answers message_not_found.
    earlier = _alert(id=3, level="high", external_channel="C0ALERTS", external_id="1.000001")
    ts = build_sink(settings).deliver(_alert(), earlier=earlier)
    [request] = slack.posted
    assert request["payload"]["thread_ts"] == "1.000001"
    assert ts == "1700000000.000001"  # delivered: the outbox must not post it again
    assert "could not mark alert #3 as followed up" in caplog.text


def test_the_console_names_the_alert_a_follow_up_escalates(settings, monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    stream = io.StringIO()
    earlier = _alert(id=3, level="high", title="HIGH delivery on twitter (en)")
    build_sink(settings, stream).deliver(_alert(), earlier=earlier)
    assert "(follows up alert #3: HIGH delivery on twitter (en))" in stream.getvalue()


def test_an_ascii_terminal_gets_every_alert_with_what_it_cannot_show_escaped(
    settings, engine, monkeypatch
):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    raw = io.BytesIO()
    ascii_terminal = io.TextIOWrapper(raw, encoding="ascii")  # e.g. PYTHONIOENCODING=ascii
    settings = _baseline(settings)
    pipeline = Pipeline.build(settings, engine, sink=ConsoleSink(ascii_terminal))
    _store_and_classify(engine, "Das Ladegerät hat Feuer gefangen 🔥 meine Hand ist verbrannt")

    report = pipeline.process(CycleReport(sources={}))

    ascii_terminal.flush()
    assert report.delivered >= 1
    assert report.delivery_errors == []
    assert "[ALERT \\u2192 #social-alerts]" in raw.getvalue().decode("ascii")


def _store_and_classify(engine, text: str) -> None:
    """One mention stored as a source would store it; the pipeline classifies it next."""
    mention = Mention(
        source="twitter", collector="x", native_id="1", text=text, created_at=datetime.now(UTC)
    )
    with Session(engine) as session:
        store_mentions(session, [mention])
        session.commit()


def _baseline(settings):
    model = settings.model.model_copy(update={"name": "baseline"})
    return settings.model_copy(update={"sources": [], "model": model})


class _BrokenSink:
    """A sink with a bug of its own, not a delivery error."""

    name = "broken"
    interactive = False

    def deliver(self, alert, blocks=None, earlier=None):
        raise KeyError("channel")


def test_a_sink_s_own_fault_is_counted_and_shows_in_status(settings, engine):
    settings = _baseline(settings)
    pipeline = Pipeline.build(settings, engine, sink=_BrokenSink())
    _store_and_classify(engine, "Das Ladegerät hat Feuer gefangen 🔥 meine Hand ist verbrannt")

    report = pipeline.process(CycleReport(sources={}))

    assert report.delivered == 0
    assert report.delivery_errors == ["KeyError: 'channel'"]
    outbox = collect_status(engine, settings)["outbox"]
    assert (outbox["alerts_waiting"], outbox["most_attempts"]) == (1, 1)  # not healthy
