"""Where alerts go: Slack when a bot token is set, the console otherwise."""

from __future__ import annotations

import logging
import os
import sys
import unicodedata
from typing import Protocol, TextIO

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from config.schema import Settings
from listener.models import Alert

log = logging.getLogger(__name__)
SECTION_TEXT_LIMIT = 3000
CONSOLE_LINE_CHARS = 160


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


OUTBOX = "outbox"  # Slack down or rate limiting: every row waits
CHANNEL = "channel"  # the channel (not found, the app not in it): its rows wait, others go on
MESSAGE = "message"  # this message (too long, malformed): it fails for good


class DeliveryError(Exception):
    """The sink did not accept the alert; it stays in the outbox for the next attempt.

    `retry_after` (seconds) is the platform's own wait, e.g. Slack's Retry-After on a 429.
    `scope` says what the refusal concerns: the whole outbox, one channel, or one message.
    """

    def __init__(
        self, message: str, retry_after: float | None = None, *, scope: str = OUTBOX
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.scope = scope


# chat.postMessage errors about one channel: a setup mistake the team fixes (invite the app,
# correct a route); until then that channel's rows wait.
CHANNEL_REFUSALS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
    }
)
# chat.postMessage errors about one message: it can never be sent as it is.
MESSAGE_REFUSALS = frozenset(
    {
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_blocks_format",
        "cannot_reply_to_message",
    }
)


def refusal_scope(reason: str | None) -> str:
    if reason in CHANNEL_REFUSALS:
        return CHANNEL
    return MESSAGE if reason in MESSAGE_REFUSALS else OUTBOX


ACK_ACTION = "alert_ack"
ACK_LEVELS = {"critical"}


class AlertSink(Protocol):
    name: str
    # Whether people can act on messages here (buttons: review drafts, acknowledge alerts).
    # Only then are drafts posted for review and unacknowledged alerts re-raised.
    interactive: bool

    def deliver(
        self, alert: Alert, blocks: list | None = None, earlier: Alert | None = None
    ) -> str | None:
        """Send the alert (or `blocks` in its place); return the sink's message id.

        `earlier` is the first alert about the same mention in the same channel, when this one
        follows it up (a complaint escalated after it was routed): a sink that can answers in
        its thread and marks it. Raises DeliveryError on failure. A sink that knows where the
        message landed records it on `alert.external_channel`, for later updates in place.
        """
        ...


def escape_mrkdwn(text: str) -> str:
    """Slack's escaping: `<!channel>`, `<@U123>` and `<url|label>` in untrusted text stay inert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Format characters that text needs to render right: the zero-width joiner and non-joiner join
# emoji sequences (🤦‍♀️, 👩‍💻) and shape Devanagari and Arabic-script words.
JOINERS = frozenset("\u200c\u200d")


def printable(text: str) -> str:
    """Untrusted text for a terminal or a log: control and bidi characters made visible."""
    return "".join(ch if _shown_as_is(ch) else f"\\u{ord(ch):04x}" for ch in text)


def _shown_as_is(ch: str) -> bool:
    return ch == "\n" or ch in JOINERS or unicodedata.category(ch) not in ("Cc", "Cf")


class ConsoleSink:
    name = "console"
    interactive = False

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def deliver(
        self, alert: Alert, blocks: list | None = None, earlier: Alert | None = None
    ) -> str | None:
        notify = f" {alert.notify}" if alert.notify else ""
        lines = [printable(line) for line in alert.body.splitlines()]
        if earlier is not None:
            lines.append(f"(follows up alert #{earlier.id}: {printable(earlier.title)})")
        details = "\n    ".join(shorten(line, CONSOLE_LINE_CHARS) for line in lines)
        text = f"[ALERT → {alert.channel}]{notify} {printable(alert.title)}\n    {details}"
        print(_encodable(text, getattr(self.stream, "encoding", None)), file=self.stream)
        return None


def _encodable(text: str, encoding: str | None) -> str:
    """`text` as the stream's encoding can write it (an ASCII terminal gets "\\u2192" for →)."""
    if not encoding:
        return text
    return text.encode(encoding, "backslashreplace").decode(encoding)


def web_client(settings: Settings) -> WebClient | None:
    """The Slack Web API client from the env vars the config names; None without a bot token.

    No in-process retry: a refused alert stays in the outbox and the next cycle retries.
    """
    token = os.environ.get(settings.slack.token_env)
    if not token:
        return None
    base_url = os.environ.get(settings.slack.base_url_env) or WebClient.BASE_URL
    return WebClient(token=token, base_url=base_url, timeout=15)


class SlackSink:
    name = "slack"
    interactive = True

    def __init__(self, client: WebClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackSink | None:
        client = web_client(settings)
        return cls(client) if client else None

    @staticmethod
    def blocks(alert: Alert, acknowledged: str | None = None, note: str | None = None) -> list:
        """The alert as Block Kit; critical ones carry an Acknowledge button until acknowledged.

        `acknowledged` is the status line shown instead of the button once someone has; `note`
        a line of what happened since (an escalation in the thread).
        """
        notify = f"{alert.notify} " if alert.notify else ""
        title = f"{notify}*{escape_mrkdwn(alert.title)}*"
        body = escape_mrkdwn(alert.body)[:SECTION_TEXT_LIMIT]
        blocks: list = [
            SectionBlock(text=MarkdownTextObject(text=title)),
            SectionBlock(text=MarkdownTextObject(text=body)),
            ContextBlock(elements=[MarkdownTextObject(text=f"listener alert #{alert.id}")]),
        ]
        if note:
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text=note)]))
        if acknowledged:
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text=acknowledged)]))
        elif alert.level in ACK_LEVELS:
            root = alert.parent_id or alert.id
            button = ButtonElement(
                text="Acknowledge", action_id=ACK_ACTION, value=str(root), style="primary"
            )
            blocks.append(ActionsBlock(block_id=f"alert:{root}", elements=[button]))
        return blocks

    def deliver(
        self, alert: Alert, blocks: list | None = None, earlier: Alert | None = None
    ) -> str | None:
        """Post the alert; a follow-up goes into the earlier alert's thread, shown in the
        channel too (so its `@here` still reaches people), and the earlier message says so."""
        if earlier is not None and not (earlier.external_channel and earlier.external_id):
            earlier = None  # delivered where no thread can be found (the console)
        where: dict = (
            {"channel": alert.channel}
            if earlier is None
            else {
                "channel": earlier.external_channel,
                "thread_ts": earlier.external_id,
                "reply_broadcast": True,
            }
        )
        try:
            response = self.client.chat_postMessage(
                **where,
                text=escape_mrkdwn(alert.title),
                blocks=blocks if blocks is not None else self.blocks(alert),
                unfurl_links=False,
            )
        except SlackApiError as error:
            reason = error.response.get("error")
            raise DeliveryError(
                f"Slack refused the message: {reason}",
                retry_after=retry_after(error),
                scope=refusal_scope(reason),
            ) from error
        except (SlackClientError, OSError) as error:
            raise DeliveryError(f"Slack unreachable: {type(error).__name__}: {error}") from error
        alert.external_channel = str(response.get("channel") or alert.channel)
        if earlier is not None:
            self._mark_followed_up(earlier, alert)
        return str(response.get("ts"))

    def _mark_followed_up(self, earlier: Alert, alert: Alert) -> None:
        """Add a line to the earlier message pointing to the follow-up in its thread."""
        note = f"⬆️ Now {alert.level.upper()}: see alert #{alert.id} in the thread"
        update_message(
            self.client,
            earlier.external_channel,
            earlier.external_id,
            escape_mrkdwn(earlier.title),
            self.blocks(earlier, note=note),
            purpose=f"mark alert #{earlier.id} as followed up",
        )


def update_message(
    client: WebClient,
    channel: str | None,
    ts: str | None,
    text: str,
    blocks: list,
    *,
    purpose: str = "update the message",
) -> None:
    """Replace a posted message's text and blocks in place.

    Best effort: what the message shows was already delivered or recorded, so a failure (the
    message deleted, Slack down) is logged, never raised.
    """
    if not (channel and ts):
        log.warning("slack: could not %s: channel or ts unknown", purpose)
        return
    try:
        client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
    except (SlackApiError, SlackClientError, OSError) as error:
        log.error("slack: could not %s (%s in %s): %s", purpose, ts, channel, error)


def retry_after(error: SlackApiError) -> float | None:
    """Slack's Retry-After (seconds) on a 429, if it sent a readable one."""
    if error.response.status_code != 429:
        return None
    headers = {key.lower(): value for key, value in (error.response.headers or {}).items()}
    value = headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def build_sink(settings: Settings, stream: TextIO | None = None) -> AlertSink:
    slack = SlackSink.from_settings(settings)
    if slack:
        log.info("alerts: Slack (token from %s)", settings.slack.token_env)
        return slack
    log.info("alerts: console, %s not set", settings.slack.token_env)
    return ConsoleSink(stream)
