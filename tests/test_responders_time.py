"""Promises in drafts follow the market's business hours, business days and public holidays."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from listener.cli import app
from listener.enums import Intent
from responders.availability import Promise, next_contact
from responders.drafter import ReplyDrafter, x_weighted_length
from tests.test_responders import REPLY_LANGUAGES, _classification, _mention

BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")
RIYADH = ZoneInfo("Asia/Riyadh")


def _at(settings, when: datetime, language: str = "de", intent: Intent = Intent.DELIVERY):
    drafter = ReplyDrafter(settings, clock=lambda: when)
    return drafter.compose(_mention("x", source="email"), _classification(language, intent))


def test_christmas_eve_evening_in_germany_promises_the_monday_after_the_holidays(settings):
    # Thu 24 Dec 2026, 17:30: 25 and 26 Dec are public holidays, 27 Dec is a Sunday.
    draft = _at(settings, datetime(2026, 12, 24, 17, 30, tzinfo=BERLIN))
    assert "am Montag, 28. Dezember" in draft.text
    assert "morgen" not in draft.text
    assert "heute" not in draft.text


def test_christmas_eve_morning_in_germany_is_still_a_working_day(settings):
    draft = _at(settings, datetime(2026, 12, 24, 10, 0, tzinfo=BERLIN))
    assert "noch heute" in draft.text


def test_tomorrow_morning_only_when_tomorrow_is_a_working_day(settings):
    thursday_evening = _at(settings, datetime(2026, 11, 26, 19, 0, tzinfo=BERLIN))
    assert "morgen Vormittag" in thursday_evening.text
    friday_evening = _at(settings, datetime(2026, 11, 27, 19, 0, tzinfo=BERLIN))
    assert "am Montag, 30. November" in friday_evening.text


def test_no_today_promise_in_the_last_hour_of_the_working_day(settings):
    market = settings.market("de-DE")  # 09:00-18:00
    late = next_contact(market, datetime(2026, 11, 26, 17, 30, tzinfo=BERLIN))
    assert late.promise is Promise.TOMORROW


def test_time_zone_of_the_market_not_of_the_server(settings):
    # 23:30 UTC on a Sunday is Monday 08:30 in Tokyo: the Japanese team answers today.
    contact = next_contact(settings.market("ja-JP"), datetime(2026, 11, 29, 23, 30, tzinfo=UTC))
    assert contact.promise is Promise.TODAY
    assert contact.local_now.tzinfo == TOKYO


def test_japanese_holiday_is_skipped_and_the_date_written_in_japanese(settings):
    # Mon 23 Nov 2026 (Labour Thanksgiving Day) 20:00 in Tokyo: next working day is Tue 24 Nov.
    draft = _at(settings, datetime(2026, 11, 22, 20, 0, tzinfo=TOKYO), language="ja")
    assert "11月24日（火曜日）" in draft.text


def test_the_saudi_weekend_is_friday_and_saturday_and_the_date_is_written_in_arabic(settings):
    # Thu 26 Nov 2026, 17:30 in Riyadh: Friday and Saturday are the weekend, Sunday 29 Nov works.
    draft = _at(settings, datetime(2026, 11, 26, 17, 30, tzinfo=RIYADH), language="ar")
    assert "يوم الأحد، 29 نوفمبر" in draft.text


def test_praise_gets_no_promise(settings):
    drafter = ReplyDrafter(settings, clock=lambda: datetime(2026, 11, 26, 10, 0, tzinfo=BERLIN))
    praise = _classification("de", Intent.PRAISE, urgency="low", sentiment="positive")
    draft = drafter.compose(_mention("x", source="email"), praise)
    assert draft.intent == "praise"
    assert "heute" not in draft.text


def test_help_article_linked_only_in_the_replys_own_language(settings):
    noon = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    english = _at(settings, noon, language="en", intent=Intent.REFUND_RETURN)
    assert "https://help.lumora.example/en/returns" in english.text
    croatian = _at(settings, noon, language="hr", intent=Intent.REFUND_RETURN)
    assert "https://" not in croatian.text


@pytest.mark.parametrize("language", REPLY_LANGUAGES)
def test_promise_and_link_still_fit_on_x(settings, language):
    drafter = ReplyDrafter(settings, clock=lambda: datetime(2026, 12, 24, 17, 30, tzinfo=BERLIN))
    for intent in Intent:
        draft = drafter.compose(
            _mention("LM-4829163", author_name="Maximilian-Alexander von Hohenzollern"),
            _classification(language, intent),
        )
        assert x_weighted_length(draft.text) <= 280, draft.text


def test_draft_command_writes_the_documented_shape(tmp_path, config_file):
    feed = tmp_path / "in.jsonl"
    rows = [
        {"id": "a", "text": "Wo bleibt meine Bestellung? Warte seit zwei Wochen.", "lang": "de"},
        {"id": "b", "text": "Buy cheap followers now, click here", "lang": "en"},
    ]
    feed.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, [
        "draft", "-c", str(config_file), "--input", str(feed), "--output", str(out),
        "--market", "de-DE", "--now", "2026-12-24T17:30:00+01:00",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())
    assert first["needs_reply"] is True
    assert set(first["draft"]) >= {"text", "locale", "register", "intent", "channel"}
    assert (first["draft"]["locale"], first["draft"]["register"]) == ("de", "formal")
    assert "28. Dezember" in first["draft"]["text"]
    assert second == {"id": "b", "needs_reply": False, "reason": "spam"}


def test_draft_command_rejects_an_unknown_market(tmp_path, config_file):
    feed = tmp_path / "in.jsonl"
    feed.write_text('{"id": "a", "text": "hallo"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, [
        "draft", "-c", str(config_file), "--input", str(feed),
        "--output", str(tmp_path / "o.jsonl"), "--market", "xx-XX",
    ])  # fmt: skip
    assert result.exit_code == 2
    assert "not a market of the config" in result.output
    assert "de-DE" in result.output


def test_draft_command_names_a_bad_field_like_the_replay_source(tmp_path, config_file):
    feed = tmp_path / "in.jsonl"
    feed.write_text('{"id": "a", "text": "hallo", "created_at": "yesterday"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, [
        "draft", "-c", str(config_file), "--input", str(feed),
        "--output", str(tmp_path / "o.jsonl"),
    ])  # fmt: skip
    assert result.exit_code == 2
    assert f"{feed} line 1: 'created_at' must be ISO-8601" in result.output
    assert "'created_at' must be ISO-8601" in result.output
