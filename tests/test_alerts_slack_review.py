"""Draft review in Slack end to end: the pipeline posts through the outbox to a local fake
Slack, and signed interaction payloads are POSTed to the real endpoint."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine
from sqlmodel import Session, select

from alerts.interactions import InteractionHandler, slack_client
from alerts.review import APPROVE, ASSIGN, EDIT, REJECT, RETRY
from alerts.slack_http import InteractionServer
from config.schema import EXAMPLE_CONFIG, Settings, load_settings
from listener.models import Alert, Mention, ReplyDraft
from listener.pipeline import Pipeline
from listener.sources import Source
from listener.stats import collect_stats
from listener.status import collect_status
from tests import slack_payloads as sp
from tests.conftest import FEED, write_feed
from tests.fake_slack import FakeSlack, channel_id

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
REVIEW = "#social-review"
HOSTILE_TEXT = (
    "Lumora charged me twice <!channel> see <https://evil.example|lumora.com> & <@U0BOSS>"
)


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_settings(tmp_path: Path, records: list[dict], **slack: Any) -> Settings:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    feed = write_feed(tmp_path / "feed.jsonl", records)
    data["sources"] = [{"name": "feed", "type": "replay", "paths": [str(feed)]}]
    data["model"].update(name="baseline")
    for key, value in slack.items():
        data["slack"][key] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_settings(path)


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-placeholder")
        monkeypatch.setenv("SLACK_BASE_URL", fake.base_url)
        yield fake


@dataclass
class Desk:
    """The review workflow wired end to end: pipeline, fake Slack, signed endpoint."""

    settings: Settings
    engine: Engine
    slack: FakeSlack
    server: InteractionServer
    clock: Clock

    def review_posts(self) -> list[dict]:
        return [r["payload"] for r in self.slack.posted if r["payload"]["channel"] == REVIEW]

    def message(self, draft_id: int) -> tuple[str, str]:
        with Session(self.engine) as session:
            row = session.exec(select(Alert).where(Alert.key == f"draft:{draft_id}")).one()
        assert row.external_channel
        assert row.external_id
        return row.external_channel, row.external_id

    def click(self, action: str, draft_id: int, user: str = sp.REVIEWER) -> sp.Answer:
        channel, ts = self.message(draft_id)
        return self.post(sp.block_action(action, str(draft_id), channel, ts, user))

    def post(self, payload: dict) -> sp.Answer:
        return sp.send(sp.signed_request(self.server.url, payload, int(time.time())))

    def draft(self, draft_id: int) -> ReplyDraft:
        with Session(self.engine) as session:
            draft = session.get(ReplyDraft, draft_id)
        assert draft is not None
        return draft

    def shown(self, draft_id: int) -> dict:
        """The review message as it stands in Slack now."""
        return self.slack.messages[self.message(draft_id)]


def build_desk(
    settings: Settings, engine: Engine, slack: FakeSlack, clock: Clock, **handler_kw: Any
) -> Iterator[Desk]:
    pipeline = Pipeline.build(settings, engine, clock=clock)
    pipeline.run_cycle()
    handler = InteractionHandler(
        settings, engine, slack_client(settings), clock=clock, **handler_kw
    )
    with InteractionServer(handler.handle, sp.SIGNING_SECRET) as server:
        yield Desk(settings, engine, slack, server, clock)


@pytest.fixture
def desk(tmp_path, engine, slack) -> Iterator[Desk]:
    yield from build_desk(make_settings(tmp_path, FEED), engine, slack, Clock())


def _first_draft_id(desk: Desk) -> int:
    with Session(desk.engine) as session:
        return session.exec(select(ReplyDraft.id).order_by(ReplyDraft.id)).first()  # type: ignore[arg-type]


def _actions(message: dict) -> list[dict]:
    return [b for b in message["blocks"] if b["type"] == "actions"]


# -- posting ------------------------------------------------------------------------------


def test_each_pending_draft_is_posted_once_to_the_review_channel(desk):
    with Session(desk.engine) as session:
        drafts = list(session.exec(select(ReplyDraft).order_by(ReplyDraft.id)))
        rows = list(session.exec(select(Alert).where(Alert.kind == "draft").order_by(Alert.id)))
    assert len(drafts) == 5
    assert [r.key for r in rows] == [f"draft:{d.id}" for d in drafts]
    assert all(r.state == "delivered" and r.external_channel == channel_id(REVIEW) for r in rows)
    posts = desk.review_posts()
    assert len(posts) == len(drafts)

    Pipeline.build(desk.settings, desk.engine, clock=desk.clock).run_cycle()
    assert len(desk.review_posts()) == len(drafts)  # idempotent by key: nothing posted twice

    blocks = posts[0]["blocks"]
    assert blocks[0]["type"] == "header"
    fields = "\n".join(f["text"] for f in blocks[1]["fields"])
    for label in ("Source", "Author", "Followers", "Link", "Language", "Sentiment", "Urgency"):
        assert f"*{label}*" in fields
    assert "*Rating*" in fields
    [actions] = _actions(posts[0])
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        (action, str(drafts[0].id)) for action in (APPROVE, EDIT, REJECT, ASSIGN)
    ]
    assert drafts[0].text in json.dumps(blocks, ensure_ascii=False)


def test_untrusted_text_in_the_review_message_cannot_ping_or_hide_a_link(tmp_path, engine, slack):
    record = {
        "id": "x1",
        "source": "twitter",
        "author": "eve<!here>",
        "author_name": "<@U0ADMIN> Eve",
        "author_followers": 12,
        "lang": "en",
        "url": "https://x.com/eve/status/1|click <!channel>",
        "text": HOSTILE_TEXT,
    }
    settings = make_settings(tmp_path, [record])
    Pipeline.build(settings, engine, clock=Clock()).run_cycle()
    [post] = [r["payload"] for r in slack.posted if r["payload"]["channel"] == REVIEW]
    shown = json.dumps(post["blocks"], ensure_ascii=False) + post["text"]
    for ping in ("<!channel>", "<!here>", "<@U0ADMIN>", "<@U0BOSS>", "<https://evil"):
        assert ping not in shown
    assert "&lt;!channel&gt;" in shown
    assert "&amp;" in shown
    assert "|open>" not in shown  # a URL with odd characters is shown, never linked


# -- interactions ---------------------------------------------------------------------------


def test_approve_records_the_reviewer_and_updates_the_message_in_place(desk):
    draft_id = _first_draft_id(desk)
    answer = desk.click(APPROVE, draft_id)

    assert answer.status == 200
    draft = desk.draft(draft_id)
    assert (draft.status, draft.reviewer, draft.reviewed_at) == ("approved", sp.REVIEWER, NOW)
    [update] = desk.slack.calls("chat.update")
    assert (update["payload"]["channel"], update["payload"]["ts"]) == desk.message(draft_id)
    shown = json.dumps(desk.shown(draft_id)["blocks"], ensure_ascii=False)
    assert f"Approved by <@{sp.REVIEWER}> at 2026-11-27 14:00 UTC" in shown
    assert _actions(desk.shown(draft_id)) == []  # decided: no more buttons

    again = desk.click(APPROVE, draft_id, user="U0REVIEW2")
    assert again.status == 200
    assert desk.draft(draft_id).reviewer == sp.REVIEWER  # the first decision stands
    [note] = desk.slack.calls("chat.postEphemeral")
    assert "already approved" in note["payload"]["text"]


def test_edit_opens_a_modal_with_the_draft_and_saving_updates_draft_and_message(desk):
    draft_id = _first_draft_id(desk)
    original = desk.draft(draft_id).text
    assert desk.click(EDIT, draft_id).status == 200

    [opened] = desk.slack.calls("views.open")
    view = opened["payload"]["view"]
    assert opened["payload"]["trigger_id"]
    assert view["callback_id"] == "draft_edit"
    [text_input] = [b for b in view["blocks"] if b["type"] == "input"]
    assert text_input["element"]["initial_value"] == original

    edited = "Hi Anna, so sorry! Please send us a DM <!channel> & we'll fix it."
    values = {"draft_text": {"text": {"type": "plain_text_input", "value": edited}}}
    answer = desk.post(sp.view_submission(view, values))

    assert answer.status == 200
    assert answer.body is None  # the modal closes
    draft = desk.draft(draft_id)
    assert (draft.status, draft.text, draft.original_text) == ("edited", edited, original)
    shown = json.dumps(desk.shown(draft_id)["blocks"], ensure_ascii=False)
    assert "we'll fix it" in shown
    assert "<!channel>" not in shown
    assert f"Edited by <@{sp.REVIEWER}>" in shown
    assert _actions(desk.shown(draft_id))  # still awaiting approval


def test_reject_asks_for_a_reason_and_records_it(desk):
    draft_id = _first_draft_id(desk)
    desk.click(REJECT, draft_id)
    [opened] = desk.slack.calls("views.open")
    view = opened["payload"]["view"]
    assert view["callback_id"] == "draft_reject"

    empty = {"reject_reason": {"reason": {"type": "plain_text_input", "value": "  "}}}
    refused = desk.post(sp.view_submission(view, empty))
    assert refused.body == {
        "response_action": "errors",
        "errors": {"reject_reason": "This cannot be empty."},
    }
    assert desk.draft(draft_id).status == "pending"

    reason = "Wrong product <b>PowerCube</b>: offer a refund"
    values = {"reject_reason": {"reason": {"type": "plain_text_input", "value": reason}}}
    assert desk.post(sp.view_submission(view, values)).status == 200
    draft = desk.draft(draft_id)
    assert (draft.status, draft.reject_reason, draft.reviewer) == ("rejected", reason, sp.REVIEWER)
    shown = json.dumps(desk.shown(draft_id)["blocks"], ensure_ascii=False)
    assert "Rejected by <@U0REVIEW1> at 2026-11-27 14:00 UTC: Wrong product &lt;b&gt;" in shown


def test_assign_to_me_shows_the_assignee(desk):
    draft_id = _first_draft_id(desk)
    desk.click(ASSIGN, draft_id)
    assert desk.draft(draft_id).assignee == sp.REVIEWER
    assert f"assigned to <@{sp.REVIEWER}>" in json.dumps(desk.shown(draft_id)["blocks"])


@pytest.fixture
def guarded_desk(tmp_path, engine, slack) -> Iterator[Desk]:
    settings = make_settings(tmp_path, FEED, review={"reviewers": [sp.REVIEWER]})
    yield from build_desk(settings, engine, slack, Clock())


def test_a_user_outside_the_reviewer_group_is_refused_and_logged(guarded_desk, caplog):
    draft_id = _first_draft_id(guarded_desk)
    with caplog.at_level(logging.WARNING, logger="alerts.interactions"):
        answer = guarded_desk.click(APPROVE, draft_id, user="U0INTRUDER")
    assert answer.status == 200
    assert guarded_desk.draft(draft_id).status == "pending"
    assert guarded_desk.slack.calls("chat.update") == []
    [note] = guarded_desk.slack.calls("chat.postEphemeral")
    assert note["payload"]["user"] == "U0INTRUDER"
    assert "refused draft_approve on draft" in caplog.text
    assert "U0INTRUDER" in caplog.text

    guarded_desk.click(APPROVE, draft_id)  # a configured reviewer may
    assert guarded_desk.draft(draft_id).status == "approved"


class ReplyingSource(Source):
    """A source that can reply; records what it was asked to post."""

    type: ClassVar[str] = "replying"
    can_reply: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__("feed", 100)
        self.replies: list[tuple[str, str]] = []
        self.failure: Exception | None = None  # raised instead of replying while set

    @classmethod
    def from_config(cls, config, settings):  # pragma: no cover - built directly
        raise NotImplementedError

    def fetch(self, cursor):  # pragma: no cover - not collected from here
        raise NotImplementedError

    def reply(self, mention: Mention, text: str) -> str:
        if self.failure:
            raise self.failure
        self.replies.append((mention.native_id, text))
        return "reply-1"


def test_approve_posts_the_reply_only_when_reply_posting_is_enabled(tmp_path, engine, slack):
    source = ReplyingSource()
    off = make_settings(tmp_path, FEED)
    assert off.slack.review.post_replies is False  # the default
    for desk in build_desk(off, engine, slack, Clock(), repliers={"feed": source}):
        desk.click(APPROVE, _first_draft_id(desk))
        assert source.replies == []
        assert desk.draft(_first_draft_id(desk)).status == "approved"

    on = off.model_copy(
        update={
            "slack": off.slack.model_copy(
                update={"review": off.slack.review.model_copy(update={"post_replies": True})}
            )
        }
    )
    handler = InteractionHandler(on, engine, slack_client(on), repliers={"feed": source})
    with InteractionServer(handler.handle, sp.SIGNING_SECRET) as server:
        desk = Desk(on, engine, slack, server, Clock())
        with Session(engine) as session:
            second = session.exec(select(ReplyDraft.id).order_by(ReplyDraft.id)).all()[1]
        desk.click(APPROVE, second)
    draft = desk.draft(second)
    assert draft.status == "sent"
    assert draft.sent_at is not None
    assert source.replies == [(source.replies[0][0], draft.text)]


def _posting_replies(settings: Settings) -> Settings:
    """The same settings with slack.review.post_replies on."""
    review = settings.slack.review.model_copy(update={"post_replies": True})
    slack = settings.slack.model_copy(update={"review": review})
    return settings.model_copy(update={"slack": slack})


@pytest.fixture
def posting(tmp_path, engine, slack) -> Iterator[tuple[Desk, ReplyingSource]]:
    """A desk that posts approved replies through a recording source."""
    source = ReplyingSource()
    settings = _posting_replies(make_settings(tmp_path, FEED))
    for desk in build_desk(settings, engine, slack, Clock(), repliers={"feed": source}):
        yield desk, source


@pytest.mark.parametrize(
    "modal", [("draft_edit", "draft_text", "text"), ("draft_reject", "reject_reason", "reason")]
)
def test_an_edit_or_reject_submitted_while_another_reviewer_approves_changes_nothing(
    posting, modal
):
    """Approve lands between the submission's read and its write: the approval stands."""
    desk, source = posting
    callback, block, action = modal
    draft_id = _first_draft_id(desk)
    channel, ts = desk.message(draft_id)

    def approve_meanwhile() -> datetime:
        if not source.replies:
            desk.click(APPROVE, draft_id, user="U0REVIEW2")
        return desk.clock()

    submitter = InteractionHandler(
        desk.settings,
        desk.engine,
        slack_client(desk.settings),
        repliers={"feed": source},
        clock=approve_meanwhile,
    )
    where = json.dumps({"draft_id": draft_id, "channel": channel, "ts": ts})
    view = {"callback_id": callback, "private_metadata": where}
    values = {block: {action: {"type": "plain_text_input", "value": "Too late"}}}
    answer = submitter.handle(sp.view_submission(view, values))

    assert answer == {
        "response_action": "errors",
        "errors": {block: f"Draft #{draft_id} is already sent."},
    }
    draft = desk.draft(draft_id)
    assert (draft.status, draft.reviewer, draft.reject_reason) == ("sent", "U0REVIEW2", None)
    assert draft.text == source.replies[0][1] != "Too late"
    desk.click(APPROVE, draft_id)  # still decided: nothing reopened it
    assert len(source.replies) == 1


def test_a_reply_that_failed_to_post_is_shown_retried_once_and_keeps_status_unhealthy(posting):
    desk, source = posting
    draft_id = _first_draft_id(desk)
    source.failure = ConnectionError("503 Service Unavailable")
    desk.click(APPROVE, draft_id)

    draft = desk.draft(draft_id)
    error = "ConnectionError: 503 Service Unavailable"
    assert (draft.status, draft.sent_at, draft.send_error) == ("approved", None, error)
    shown = desk.shown(draft_id)
    assert f"reply not sent: {error}" in json.dumps(shown["blocks"], ensure_ascii=False)
    [buttons] = _actions(shown)
    assert [button["action_id"] for button in buttons["elements"]] == [RETRY]
    status = collect_status(desk.engine, desk.settings, now=desk.clock.now)
    assert status["healthy"] is False
    assert status["replies_not_sent"] == {"drafts": [draft_id], "last_error": error}

    source.failure = None
    desk.click(RETRY, draft_id, user="U0REVIEW2")

    draft = desk.draft(draft_id)
    assert (draft.status, draft.send_error, draft.reviewer) == ("sent", None, sp.REVIEWER)
    assert source.replies == [(source.replies[0][0], draft.text)]
    assert _actions(desk.shown(draft_id)) == []
    status = collect_status(desk.engine, desk.settings, now=desk.clock.now)
    assert (status["healthy"], status["replies_not_sent"]["drafts"]) == (True, [])

    desk.click(RETRY, draft_id)  # a stale message clicked again: nothing posted twice
    assert len(source.replies) == 1
    [note] = desk.slack.calls("chat.postEphemeral")
    assert note["payload"]["text"] == f"Draft #{draft_id} is sent and not waiting for a retry."


def test_a_retry_with_reply_posting_switched_off_since_keeps_the_reply_waiting(desk):
    """A reply failed to post, then the team switched slack.review.post_replies off."""
    draft_id = _first_draft_id(desk)
    error = "ConnectionError: 503 Service Unavailable"
    with Session(desk.engine) as session:
        draft = session.get(ReplyDraft, draft_id)
        draft.status, draft.send_error = "approved", error
        session.add(draft)
        session.commit()

    desk.click(RETRY, draft_id)

    draft = desk.draft(draft_id)
    assert (draft.status, draft.send_error) == ("approved", error)  # still waiting, still shown
    [note] = desk.slack.calls("chat.postEphemeral")
    assert "reply posting is off (slack.review.post_replies)" in note["payload"]["text"]
    assert collect_status(desk.engine, desk.settings)["replies_not_sent"]["drafts"] == [draft_id]


# -- the endpoint's guard -------------------------------------------------------------------


def _approve_request(desk: Desk, timestamp: int, **kw: Any):
    draft_id = _first_draft_id(desk)
    channel, ts = desk.message(draft_id)
    payload = sp.block_action(APPROVE, str(draft_id), channel, ts)
    return sp.signed_request(desk.server.url, payload, timestamp, **kw)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong secret", "bad signature"),
        ("tampered signature", "bad signature"),
        ("stale timestamp", "stale timestamp"),
        ("no signature", "no signature headers"),
    ],
)
def test_unsigned_forged_or_stale_requests_are_refused_with_401(desk, caplog, case, reason):
    now = int(time.time())
    if case == "wrong secret":
        request = _approve_request(desk, now, secret="not-the-signing-secret")
    elif case == "tampered signature":
        request = _approve_request(desk, now, signature="v0=" + "0" * 64)
    elif case == "stale timestamp":
        request = _approve_request(desk, now - 6 * 60)
    else:
        request = _approve_request(desk, now)
        del request.headers["X-slack-signature"]
    with caplog.at_level(logging.WARNING, logger="alerts.slack_http"):
        answer = sp.send(request)
    assert answer.status == 401
    assert reason in answer.body["error"]
    assert f"refused a request from 127.0.0.1: {reason}" in caplog.text
    assert desk.draft(_first_draft_id(desk)).status == "pending"
    assert desk.slack.calls("chat.update") == []


def test_a_replayed_request_is_refused(desk, caplog):
    request = _approve_request(desk, int(time.time()))
    assert sp.send(request).status == 200
    with caplog.at_level(logging.WARNING, logger="alerts.slack_http"):
        replay = sp.send(request)
    assert replay.status == 401
    assert replay.body == {"error": "replayed request"}
    assert "replayed request" in caplog.text
    assert len(desk.slack.calls("chat.update")) == 1


def test_a_replay_is_refused_while_its_timestamp_passes_even_when_slack_s_clock_runs_ahead():
    now = [1_800_000_000.0]
    body = b"payload=%7B%7D"
    sent_at = str(int(now[0]) + 240)  # Slack's clock four minutes ahead: still accepted
    signature = SignatureVerifier(sp.SIGNING_SECRET).generate_signature(
        timestamp=sent_at, body=body
    )
    headers = {"X-Slack-Request-Timestamp": sent_at, "X-Slack-Signature": signature}
    with InteractionServer(lambda _: None, sp.SIGNING_SECRET, clock=lambda: now[0]) as server:
        assert server.check(body, headers) is None
        now[0] += 301  # five minutes after it first came, but only 61 s after its timestamp
        assert server.check(body, headers) == "replayed request"
        now[0] += 240  # past its timestamp's five minutes: the timestamp check refuses it
        assert str(server.check(body, headers)).startswith("stale timestamp")


def test_a_signed_but_unknown_interaction_is_a_400(desk):
    answer = desk.post({"type": "shortcut", "user": sp.user(), "callback_id": "x"})
    assert answer.status == 400
    assert "unsupported interaction type 'shortcut'" in answer.body["error"]


def test_stats_count_review_messages_apart_from_alerts(desk):
    with Session(desk.engine) as session:
        rows = list(session.exec(select(Alert)))
    reviews = [r for r in rows if r.kind == "draft"]
    alerts = [r for r in rows if r.kind != "draft"]
    assert reviews
    assert alerts

    stats = collect_stats(desk.engine)

    assert stats["alerts"]["total"] == len(alerts)
    assert stats["review_messages"] == {
        "total": len(reviews),
        "by_state": {"delivered": len(reviews)},
    }
