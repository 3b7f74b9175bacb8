"""Slack interactions: one handler for button clicks and modal submissions.

Both entry points (the signed HTTP endpoint and Socket Mode) hand the decoded payload to
`InteractionHandler.handle`. It records the decision in the database first, then updates the
Slack message in place (who did what, when); a failed update is logged, the decision stands.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.models.views import View
from sqlalchemy import ColumnElement, Engine, func
from sqlmodel import Session, select, update

from alerts import modals
from alerts.outbox import DRAFT
from alerts.review import (
    APPROVE,
    ASSIGN,
    EDIT,
    OPEN_STATUSES,
    REJECT,
    RETRY,
    UNSENT,
    Review,
    review_blocks,
    user_ref,
)
from alerts.sinks import (
    ACK_ACTION,
    SlackSink,
    escape_mrkdwn,
    printable,
    update_message,
    web_client,
)
from config.schema import Settings
from listener.enums import DraftStatus
from listener.models import Alert, ReplyDraft, utcnow
from listener.sources import Source

log = logging.getLogger(__name__)
Response = dict[str, Any] | None
# Which drafts a decision may claim: open ones; a retry, approved ones whose reply failed to post.
OPEN: ColumnElement[bool] = ReplyDraft.status.in_(OPEN_STATUSES)  # type: ignore[attr-defined]


class InteractionError(Exception):
    """The payload is not one this app sent or understands (answered with 400)."""


@dataclass(frozen=True)
class Click:
    """One button click: on what, by whom, from which message."""

    target: int
    user: str
    channel: str | None
    ts: str | None
    trigger: str | None


def slack_client(settings: Settings) -> WebClient:
    """The Web API client from the configured env vars; a clear error when the token is unset."""
    client = web_client(settings)
    if client is None:
        raise RuntimeError(
            f"{settings.slack.token_env} is not set: export the Slack app's bot token (xoxb-…)"
        )
    return client


class InteractionHandler:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        client: WebClient,
        *,
        repliers: Mapping[str, Source] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.client = client
        self.repliers = dict(repliers or {})
        self.clock = clock
        self.reviewers = set(settings.slack.review.reviewers)

    def handle(self, payload: Mapping[str, Any]) -> Response:
        """Act on one interaction; the return value is the HTTP/Socket Mode response body."""
        kind = payload.get("type")
        user = str((payload.get("user") or {}).get("id") or "")
        if not user:
            raise InteractionError("the payload names no user")
        if kind == "block_actions":
            return self._block_action(payload, user)
        if kind == "view_submission":
            return self._view_submission(payload, user)
        raise InteractionError(f"unsupported interaction type {kind!r}")

    # -- permission ------------------------------------------------------------------------

    def _allowed(self, user: str, action: str, target: str) -> bool:
        if not self.reviewers or user in self.reviewers:
            return True
        log.warning(
            "slack: refused %s on %s from user %s: not in slack.review.reviewers",
            action,
            target,
            printable(user),
        )
        return False

    # -- block actions ---------------------------------------------------------------------

    def _block_action(self, payload: Mapping[str, Any], user: str) -> Response:
        actions = payload.get("actions") or []
        if not actions:
            raise InteractionError("block_actions without actions")
        action = actions[0]
        action_id, value = action.get("action_id"), str(action.get("value", ""))
        if not value.isdigit():
            raise InteractionError(f"action {action_id!r}: value {value!r} is not an id")
        container = payload.get("container") or {}
        channel = container.get("channel_id") or (payload.get("channel") or {}).get("id")
        ts = container.get("message_ts") or (payload.get("message") or {}).get("ts")
        click = Click(int(value), user, channel, ts, payload.get("trigger_id"))
        if action_id == ACK_ACTION:
            if self._allowed(user, action_id, f"alert {value}"):
                self._acknowledge(click)
            else:
                self._tell(user, channel, "Only the configured reviewers can acknowledge alerts.")
            return None
        handlers = {
            APPROVE: self._approve,
            EDIT: self._open_edit,
            REJECT: self._open_reject,
            ASSIGN: self._assign,
            RETRY: self._retry,
        }
        if action_id not in handlers:
            raise InteractionError(f"unknown action {action_id!r}")
        if not self._allowed(user, str(action_id), f"draft {value}"):
            self._tell(user, channel, "Only the configured reviewers can act on reply drafts.")
            return None
        handlers[action_id](click)
        return None

    def _load(self, session: Session, draft_id: int) -> Review:
        review = Review.load(session, draft_id)
        if review is None:
            raise InteractionError(f"draft {draft_id} does not exist (purged?)")
        return review

    def _closed(self, review: Review, user: str, channel: str | None) -> bool:
        """Tell the user, and say so, when the draft was already decided."""
        if DraftStatus(review.draft.status) in OPEN_STATUSES:
            return False
        self._tell(user, channel, f"Draft #{review.draft.id} is already {review.draft.status}.")
        return True

    def _claim(
        self, session: Session, draft_id: int, claimable: ColumnElement[bool], **values: Any
    ) -> bool:
        """Change a draft with one conditional UPDATE; False when it was no longer claimable.

        Two reviewers acting at once (Approve against an Edit or Reject submission, a double
        click, two Retry clicks) cannot both win, so a reply is never posted twice nor a
        decided draft reopened.
        """
        claim = (
            update(ReplyDraft)
            .where(ReplyDraft.id == draft_id, claimable)  # type: ignore[arg-type]
            .values(**values)
        )
        claimed = session.execute(claim).rowcount == 1
        session.commit()
        return claimed

    def _approve(self, click: Click) -> None:
        """Claim the draft, then post the reply (when configured) and update the message."""
        now = self.clock()
        with Session(self.engine) as session:
            claimed = self._claim(
                session,
                click.target,
                OPEN,
                status=DraftStatus.APPROVED,
                reviewer=click.user,
                reviewed_at=now,
                updated_at=now,
            )
            review = self._load(session, click.target)
            if not claimed:
                self._closed(review, click.user, click.channel)
                return
            self._send(session, review, click)

    def _retry(self, click: Click) -> None:
        """Post an approved reply whose posting failed once more; the approval stands as it was."""
        if not self.settings.slack.review.post_replies:  # switched off since: nothing would post
            self._tell(
                click.user,
                click.channel,
                f"Draft #{click.target} was not retried: reply posting is off"
                " (slack.review.post_replies). Post it by hand, or switch it on.",
            )
            return
        with Session(self.engine) as session:
            claimed = self._claim(
                session, click.target, UNSENT, send_error=None, updated_at=self.clock()
            )
            review = self._load(session, click.target)
            if not claimed:
                self._tell(
                    click.user,
                    click.channel,
                    f"Draft #{click.target} is {review.draft.status} and not waiting for a retry.",
                )
                return
            self._send(session, review, click)

    def _send(self, session: Session, review: Review, click: Click) -> None:
        """Post the claimed draft's reply, record the outcome, and show it in the message."""
        note = self._post_reply(review)
        session.add(review.draft)
        session.commit()
        log.info(
            "slack: draft %s %s by %s", click.target, review.draft.status, printable(click.user)
        )
        self._refresh(session, review, click.channel, click.ts, note)

    def _post_reply(self, review: Review) -> str | None:
        """Send the approved reply through the source when configured; a note for the message.

        A platform failure is kept in `send_error`: the message offers a retry, and
        `listener status` is not healthy until the reply is sent.
        """
        if not self.settings.slack.review.post_replies:
            return None
        mention, draft = review.mention, review.draft
        source = self.repliers.get(mention.collector)
        if source is None or not source.can_reply:
            return (
                f"Reply posting is on, but {escape_mrkdwn(mention.collector)} cannot reply:"
                " post it by hand."
            )
        try:
            source.reply(mention, draft.text)
        except Exception as error:  # noqa: BLE001  (any platform failure: keep the approval, say so)
            log.error("slack: draft %s: reply via %s failed: %s", draft.id, source.name, error)
            draft.send_error = f"{type(error).__name__}: {error}"[:1000]
            return None
        draft.status, draft.sent_at, draft.send_error = DraftStatus.SENT, self.clock(), None
        return None

    def _assign(self, click: Click) -> None:
        with Session(self.engine) as session:
            review = self._load(session, click.target)
            if self._closed(review, click.user, click.channel):
                return
            review.draft.assignee, review.draft.updated_at = click.user, self.clock()
            session.add(review.draft)
            session.commit()
            self._refresh(session, review, click.channel, click.ts)

    def _open_edit(self, click: Click) -> None:
        self._open(modals.edit_modal, click)

    def _open_reject(self, click: Click) -> None:
        self._open(modals.reject_modal, click)

    def _open(self, build: Callable[..., View], click: Click) -> None:
        if not click.trigger:
            raise InteractionError("a button click without trigger_id cannot open a modal")
        with Session(self.engine) as session:
            review = self._load(session, click.target)
            if self._closed(review, click.user, click.channel):
                return
            view = build(review.draft, review.mention, click.channel, click.ts)
        try:
            self.client.views_open(trigger_id=click.trigger, view=view)
        except (SlackApiError, SlackClientError, OSError) as error:
            log.error("slack: could not open the modal for draft %s: %s", click.target, error)

    # -- modal submissions -----------------------------------------------------------------

    def _view_submission(self, payload: Mapping[str, Any], user: str) -> Response:
        view = payload.get("view") or {}
        callback = view.get("callback_id")
        if callback not in (modals.EDIT_CALLBACK, modals.REJECT_CALLBACK):
            raise InteractionError(f"unknown modal {callback!r}")
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
            draft_id = int(meta["draft_id"])
        except (ValueError, KeyError, TypeError):
            raise InteractionError("the modal's private_metadata names no draft") from None
        block, action = (
            (modals.TEXT_BLOCK, modals.TEXT_ACTION)
            if callback == modals.EDIT_CALLBACK
            else (modals.REASON_BLOCK, modals.REASON_ACTION)
        )
        values = (view.get("state") or {}).get("values") or {}
        text = str(((values.get(block) or {}).get(action) or {}).get("value") or "").strip()
        if not self._allowed(user, str(callback), f"draft {draft_id}"):
            return _field_error(block, "Only the configured reviewers can act on reply drafts.")
        if not text:
            return _field_error(block, "This cannot be empty.")
        now = self.clock()
        decision: dict[str, Any] = (
            {
                "original_text": func.coalesce(ReplyDraft.original_text, ReplyDraft.text),
                "text": text,
                "status": DraftStatus.EDITED,
            }
            if callback == modals.EDIT_CALLBACK
            else {"reject_reason": text, "status": DraftStatus.REJECTED}
        )
        with Session(self.engine) as session:
            claimed = self._claim(
                session, draft_id, OPEN, reviewer=user, reviewed_at=now, updated_at=now, **decision
            )
            review = self._load(session, draft_id)
            if not claimed:
                return _field_error(block, f"Draft #{draft_id} is already {review.draft.status}.")
            log.info("slack: draft %s %s by %s", draft_id, review.draft.status, printable(user))
            self._refresh(session, review, meta.get("channel"), meta.get("ts"))
        return None

    # -- acknowledgements ------------------------------------------------------------------

    def _acknowledge(self, click: Click) -> None:
        with Session(self.engine) as session:
            root = session.get(Alert, click.target)
            if root is None:
                raise InteractionError(f"alert {click.target} does not exist")
            if root.acknowledged_at is None:
                root.acknowledged_at, root.acknowledged_by = self.clock(), click.user
                session.add(root)
                session.commit()
                log.info("slack: alert %s acknowledged by %s", root.id, printable(click.user))
            shown = (
                session.exec(
                    select(Alert).where(
                        Alert.external_channel == click.channel, Alert.external_id == click.ts
                    )
                ).first()
                or root
            )
            when = root.acknowledged_at.strftime("%Y-%m-%d %H:%M UTC")
            line = f"👍 Acknowledged by {user_ref(root.acknowledged_by)} at {when}"
            self._update(click.channel, click.ts, shown, SlackSink.blocks(shown, line))

    # -- Slack side ------------------------------------------------------------------------

    def _refresh(
        self,
        session: Session,
        review: Review,
        channel: str | None,
        ts: str | None,
        note: str | None = None,
    ) -> None:
        """Update the draft's review message in place (where it is known)."""
        if not (channel and ts):
            row = session.exec(
                select(Alert).where(Alert.draft_id == review.draft.id, Alert.kind == DRAFT)
            ).first()
            channel, ts = (row.external_channel, row.external_id) if row else (None, None)
        blocks = review_blocks(review.draft, review.mention, review.classification, note)
        self._update(channel, ts, None, blocks, f"Reply draft #{review.draft.id}")

    def _update(
        self,
        channel: str | None,
        ts: str | None,
        alert: Alert | None,
        blocks: list,
        text: str | None = None,
    ) -> None:
        fallback = text or (escape_mrkdwn(alert.title) if alert else "listener")
        update_message(self.client, channel, ts, fallback, blocks)

    def _tell(self, user: str, channel: str | None, text: str) -> None:
        """An ephemeral note only the acting user sees."""
        if not channel:
            return
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, text=text)
        except (SlackApiError, SlackClientError, OSError) as error:
            log.error("slack: could not tell %s: %s", printable(user), error)


def _field_error(block_id: str, message: str) -> dict[str, Any]:
    return {"response_action": "errors", "errors": {block_id: message}}
