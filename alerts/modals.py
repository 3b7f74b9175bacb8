"""The two modals of the review workflow: edit a draft's text, give a reason for rejecting."""

from __future__ import annotations

import json

from slack_sdk.models.blocks import (
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from alerts.sinks import escape_mrkdwn, shorten
from listener.models import Mention, ReplyDraft

EDIT_CALLBACK = "draft_edit"
REJECT_CALLBACK = "draft_reject"
TEXT_BLOCK = "draft_text"
TEXT_ACTION = "text"
REASON_BLOCK = "reject_reason"
REASON_ACTION = "reason"
MAX_DRAFT_CHARS = 3000
MAX_REASON_CHARS = 500


def _metadata(draft_id: int, channel: str | None, ts: str | None) -> str:
    """Where the review message is, so the submission can update it in place."""
    return json.dumps({"draft_id": draft_id, "channel": channel, "ts": ts})


def _context(mention: Mention) -> SectionBlock:
    text = escape_mrkdwn(" ".join(mention.text.split()))
    author = escape_mrkdwn(mention.author_handle or "unknown")
    return SectionBlock(text=MarkdownTextObject(text=shorten(f"*@{author}:* {text}", 2900)))


def _modal(
    draft: ReplyDraft,
    mention: Mention,
    where: tuple[str | None, str | None],
    *,
    callback_id: str,
    title: str,
    submit: str,
    field: InputBlock,
) -> View:
    """The original mention for context above one input field; where the message is, carried."""
    assert draft.id is not None
    return View(
        type="modal",
        callback_id=callback_id,
        title=title,
        submit=submit,
        close="Cancel",
        private_metadata=_metadata(draft.id, *where),
        blocks=[_context(mention), field],
    )


def edit_modal(draft: ReplyDraft, mention: Mention, channel: str | None, ts: str | None) -> View:
    field = InputBlock(
        block_id=TEXT_BLOCK,
        label="Reply",
        element=PlainTextInputElement(
            action_id=TEXT_ACTION,
            multiline=True,
            initial_value=draft.text[:MAX_DRAFT_CHARS],
            max_length=MAX_DRAFT_CHARS,
        ),
    )
    return _modal(
        draft, mention, (channel, ts),
        callback_id=EDIT_CALLBACK, title="Edit reply draft", submit="Save", field=field,
    )  # fmt: skip


def reject_modal(draft: ReplyDraft, mention: Mention, channel: str | None, ts: str | None) -> View:
    field = InputBlock(
        block_id=REASON_BLOCK,
        label="Why is this draft rejected?",
        element=PlainTextInputElement(
            action_id=REASON_ACTION,
            multiline=True,
            max_length=MAX_REASON_CHARS,
            placeholder="e.g. wrong product, needs a refund offer, do not answer publicly",
        ),
    )
    return _modal(
        draft, mention, (channel, ts),
        callback_id=REJECT_CALLBACK, title="Reject reply draft", submit="Reject", field=field,
    )  # fmt: skip
