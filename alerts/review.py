"""The review message for one reply draft: the mention, the draft, its state, and the buttons.

Built from slack-sdk's Block Kit classes so Slack's limits are checked where they are made. Every
text that came from outside (the post, the author, the link, a reviewer's edit or reason) goes
through `escape_mrkdwn`; only Slack user ids taken from Slack's own payloads become mentions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from sqlalchemy import ColumnElement, and_
from sqlmodel import Session, select

from alerts.sinks import escape_mrkdwn, shorten
from listener.enums import DraftStatus
from listener.models import Classification, Mention, ReplyDraft

APPROVE = "draft_approve"
EDIT = "draft_edit"
REJECT = "draft_reject"
ASSIGN = "draft_assign"
RETRY = "draft_retry_send"
DRAFT_ACTIONS = (APPROVE, EDIT, REJECT, ASSIGN, RETRY)
# Slack's limits: section text 3000, field 2000, header 150 characters.
QUOTE_CHARS = 2800
FIELD_CHARS = 1900
HEADER_CHARS = 150
SAFE_URL = re.compile(r"^https?://[^\s<>|&\"']+$")
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
OPEN_STATUSES = {DraftStatus.PENDING, DraftStatus.EDITED}


@dataclass
class Review:
    """A draft with what its review message shows."""

    draft: ReplyDraft
    mention: Mention
    classification: Classification

    @classmethod
    def load(cls, session: Session, draft_id: int) -> Review | None:
        """The draft with its mention and classification; None when any of them is gone."""
        draft = session.get(ReplyDraft, draft_id)
        if draft is None:
            return None
        mention = session.get(Mention, draft.mention_id)
        classification = session.exec(
            select(Classification).where(Classification.mention_id == draft.mention_id)
        ).first()
        if mention is None or classification is None:
            return None
        return cls(draft, mention, classification)


def user_ref(user_id: str | None) -> str:
    """A Slack user mention for ids from Slack's payloads; anything else shown inert."""
    if user_id and USER_ID.match(user_id):
        return f"<@{user_id}>"
    return escape_mrkdwn(user_id or "someone")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "?"


def _link(url: str | None) -> str:
    if not url:
        return "—"
    if SAFE_URL.match(url):
        return f"<{url}|open>"
    return escape_mrkdwn(url)  # odd characters: shown, not linked


def _stars(rating: int | None) -> str:
    if not rating:
        return "—"
    return "★" * rating + "☆" * max(5 - rating, 0) + f" ({rating}/5)"


def _confidence(c: Classification) -> float:
    scores = {
        "negative": c.score_negative,
        "neutral": c.score_neutral,
        "positive": c.score_positive,
    }
    return scores.get(c.sentiment, 0.0)


def _field(label: str, value: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=shorten(f"*{label}*\n{value}", FIELD_CHARS))


def status_line(draft: ReplyDraft) -> str:
    """Who did what and when, for the message's footer."""
    who = user_ref(draft.reviewer)
    status = DraftStatus(draft.status)
    if status is DraftStatus.PENDING:
        line = "⏳ Awaiting review"
    elif status is DraftStatus.EDITED:
        line = f"✏️ Edited by {who} at {_when(draft.reviewed_at)}; awaiting approval"
    elif status is DraftStatus.APPROVED:
        line = f"✅ Approved by {who} at {_when(draft.reviewed_at)}"
        if draft.send_error:
            line += f" · ⚠️ reply not sent: {shorten(escape_mrkdwn(draft.send_error), 300)}"
    elif status is DraftStatus.SENT:
        line = f"📨 Approved by {who} at {_when(draft.reviewed_at)}"
        line += f", reply sent {_when(draft.sent_at)}"
    else:
        reason = escape_mrkdwn(" ".join((draft.reject_reason or "").split()))
        line = f"🚫 Rejected by {who} at {_when(draft.reviewed_at)}: {shorten(reason, 500)}"
    if draft.assignee and status in OPEN_STATUSES:
        line += f" · assigned to {user_ref(draft.assignee)}"
    return line


def _buttons(draft_id: int) -> ActionsBlock:
    value = str(draft_id)
    return ActionsBlock(
        block_id=f"draft:{draft_id}",
        elements=[
            ButtonElement(text="Approve", action_id=APPROVE, value=value, style="primary"),
            ButtonElement(text="Edit", action_id=EDIT, value=value),
            ButtonElement(text="Reject", action_id=REJECT, value=value, style="danger"),
            ButtonElement(text="Assign to me", action_id=ASSIGN, value=value),
        ],
    )


# Approved, but posting the reply failed: it can be retried. The SQL form and the row's.
UNSENT: ColumnElement[bool] = and_(
    ReplyDraft.status == DraftStatus.APPROVED,
    ReplyDraft.send_error.is_not(None),  # type: ignore[union-attr]
)


def unsent(draft: ReplyDraft) -> bool:
    """The row test of `UNSENT`."""
    return draft.status == DraftStatus.APPROVED and draft.send_error is not None


def _retry_button(draft_id: int) -> ActionsBlock:
    return ActionsBlock(
        block_id=f"draft:{draft_id}",
        elements=[
            ButtonElement(
                text="Retry sending", action_id=RETRY, value=str(draft_id), style="primary"
            )
        ],
    )


def review_text(draft: ReplyDraft, mention: Mention) -> str:
    """The notification text (push notifications, search), raw: the sink escapes it."""
    return f"Reply draft #{draft.id} for @{mention.author_handle or 'unknown'} on {mention.source}"


def review_blocks(
    draft: ReplyDraft, mention: Mention, c: Classification, note: str | None = None
) -> list[Block]:
    """The review message; buttons while the draft is open or its reply failed to post.

    `note`: an extra footer line.
    """
    author = escape_mrkdwn(f"@{mention.author_handle}" if mention.author_handle else "unknown")
    if mention.author_name:
        author += f" ({escape_mrkdwn(mention.author_name)})"
    followers = f"{mention.author_followers:,}" if mention.author_followers is not None else "—"
    reactions = f"{mention.engagement:,}" if mention.engagement is not None else "—"
    reasons = escape_mrkdwn("; ".join(c.urgency_reasons or [])) or "—"
    header = f"Reply draft #{draft.id} · {c.urgency.upper()} · {c.intent.replace('_', ' ')}"
    quoted = "\n".join("> " + line for line in escape_mrkdwn(mention.text).splitlines() or [""])
    blocks: list[Block] = [
        HeaderBlock(text=shorten(header, HEADER_CHARS)),
        SectionBlock(
            fields=[
                _field("Source", escape_mrkdwn(f"{mention.source} ({mention.collector})")),
                _field("Author", author),
                _field("Followers", followers),
                _field("Reactions", reactions),
                _field("Link", _link(mention.url)),
                _field("Language", escape_mrkdwn(c.language)),
                _field("Sentiment", f"{escape_mrkdwn(c.sentiment)} ({_confidence(c):.0%})"),
                _field("Urgency", f"{escape_mrkdwn(c.urgency)} ({c.urgency_score:.2f})"),
                _field("Rating", _stars(mention.rating)),
            ]
        ),
        SectionBlock(text=MarkdownTextObject(text=shorten(quoted, QUOTE_CHARS))),
        ContextBlock(elements=[MarkdownTextObject(text=shorten(f"Why: {reasons}", FIELD_CHARS))]),
        SectionBlock(
            text=MarkdownTextObject(
                text=shorten(
                    f"*Draft reply* ({escape_mrkdwn(draft.locale)}, {draft.formality},"
                    f" {'public reply' if draft.channel == 'public' else 'DM'})\n"
                    + escape_mrkdwn(draft.text),
                    QUOTE_CHARS,
                )
            )
        ),
        ContextBlock(elements=[MarkdownTextObject(text=status_line(draft))]),
    ]
    if note:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=shorten(note, 1000))]))
    if DraftStatus(draft.status) in OPEN_STATUSES and draft.id is not None:
        blocks.append(_buttons(draft.id))
    elif unsent(draft) and draft.id is not None:
        blocks.append(_retry_button(draft.id))
    return blocks
