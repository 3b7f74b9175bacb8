"""Hostile and odd mentions: stored faithfully, escaped wherever shown, never a crash."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from alerts.review import review_blocks
from alerts.sinks import escape_mrkdwn, printable
from config.schema import load_settings
from listener.models import Classification, Mention, ReplyDraft, Stage
from listener.pipeline import Pipeline
from listener.storage import open_database, store_mentions
from tests.conftest import write_feed

NASTY = [
    "<!channel> <!here> <@U123ABC> <#C0123|general> <https://evil.example|your bank>",
    "<script>alert('x')</script><img src=x onerror=alert(1)> &amp; &lt;",
    "**bold** _it_ ~strike~ `code` ```block``` > quote [link](https://evil.example)",
    "pay\u200bpal \u202eevil.exe\u202c \u2066isolate\u2069 \ufeffbom \u0000nul \u001b[31mred",
    "🔥🔥🔥😡😡",
    "",
    "x" * 100_000,
]
hostile_text = st.one_of(
    st.sampled_from(NASTY),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=400),
)


def _mention(text: str, native_id: str = "1") -> Mention:
    return Mention(
        source="twitter",
        collector="t",
        native_id=native_id,
        text=text,
        author_handle="<!channel>",
        author_name="<@U999> \u202eadmin",
        url="javascript:alert(1)",
        created_at=datetime(2026, 11, 20, tzinfo=UTC),
        raw={"text": text},
    )


def _classification() -> Classification:
    return Classification(
        mention_id=1,
        language="en",
        sentiment="negative",
        score_negative=0.9,
        score_neutral=0.05,
        score_positive=0.05,
        urgency="critical",
        urgency_score=0.95,
        urgency_reasons=["<!channel> reason"],
        intent="safety",
        model_name="t",
        model_version="1",
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=hostile_text)
def test_slack_text_never_carries_a_live_control_sequence(text):
    escaped = escape_mrkdwn(text)
    assert "<" not in escaped
    assert ">" not in escaped
    assert re.sub(r"&(amp|lt|gt);", "", escaped).count("&") == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=hostile_text)
def test_console_and_logs_never_receive_control_or_bidi_characters(text):
    shown = printable(text)
    assert all(
        ch in "\n\u200c\u200d" or unicodedata.category(ch) not in ("Cc", "Cf") for ch in shown
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=hostile_text)
def test_review_message_builds_within_slack_limits_and_stays_inert(text):
    draft = ReplyDraft(
        id=7,
        mention_id=1,
        text="Hello",
        locale="en",
        formality="formal",
        intent="safety",
        channel="dm",
        language_source="mention",
    )
    blocks = review_blocks(draft, _mention(text), _classification())
    payload = json.dumps([block.to_dict() for block in blocks])  # validates Block Kit limits
    assert "<!channel>" not in payload
    assert "<@U" not in payload
    assert "<javascript:" not in payload  # shown as text, never a link


def test_hostile_mentions_are_stored_exactly_and_go_through_the_pipeline(
    tmp_path, database_url, config_file
):
    engine = open_database(database_url)
    with Session(engine) as session:
        store_mentions(session, [_mention(text, str(i)) for i, text in enumerate(NASTY)])
        session.commit()
    with Session(engine) as session:
        stored = {m.native_id: m.text for m in session.exec(select(Mention))}
    assert stored == {str(i): text for i, text in enumerate(NASTY)}

    report = Pipeline.build(load_settings(config_file), engine).run_cycle()

    assert report.classified == len(NASTY) + report.sources["feed"].stored
    assert not report.delivery_errors
    with Session(engine) as session:
        stages = {m.native_id: m.stage for m in session.exec(select(Mention))}
    assert set(stages.values()) == {Stage.ROUTED}


def test_invalid_utf8_in_a_feed_is_reported_by_line_not_stored_garbled(
    tmp_path, database_url, config_file
):
    """Not dropped silently, not stored with U+FFFD: skipped and named, as classify names it."""
    feed = write_feed(tmp_path / "bad.jsonl", [{"id": "ok", "text": "fine"}])
    with feed.open("ab") as handle:
        handle.write(b'{"id": "broken", "text": "caf\xe9 \xff\xfe sehr gut"}\n')
    settings = load_settings(config_file)
    data = settings.sources[0].model_copy(update={"paths": [str(feed)]})
    settings = settings.model_copy(update={"sources": [data]})
    engine = open_database(database_url)

    report = Pipeline.build(settings, engine).run_cycle()

    with Session(engine) as session:
        texts = {m.native_id: m.text for m in session.exec(select(Mention))}
    assert texts == {"ok": "fine"}
    [outcome] = report.sources.values()
    assert outcome.rejected == [
        "bad.jsonl line 2: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    ]
