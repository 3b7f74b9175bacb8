"""Where alerts go: Slack when a bot token is set, the console otherwise."""

from __future__ import annotations

import logging
import os
import sys
import unicodedata
from typing import Protocol, TextIO

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

from config.schema import Settings
from listener.models import Alert

log = logging.getLogger(__name__)
SECTION_TEXT_LIMIT = 3000
CONSOLE_LINE_CHARS = 160


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DeliveryError(Exception):
    """The sink did not accept the alert; it stays in the outbox for the next attempt."""


class AlertSink(Protocol):
    name: str

    def deliver(self, alert: Alert) -> str | None:
        """Send the alert; return the sink's message id, raise DeliveryError on failure."""
        ...


def escape_mrkdwn(text: str) -> str:
    """Slack's escaping: `<!channel>`, `<@U123>` and `<url|label>` in untrusted text stay inert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def printable(text: str) -> str:
    """Untrusted text for a terminal or a log: control and bidi characters made visible."""
    return "".join(
        ch if ch == "\n" or unicodedata.category(ch) not in ("Cc", "Cf") else f"\\u{ord(ch):04x}"
        for ch in text
    )


class ConsoleSink:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def deliver(self, alert: Alert) -> str | None:
        notify = f" {alert.notify}" if alert.notify else ""
        lines = [printable(line) for line in alert.body.splitlines()]
        details = "\n    ".join(shorten(line, CONSOLE_LINE_CHARS) for line in lines)
        print(
            f"[ALERT → {alert.channel}]{notify} {printable(alert.title)}\n    {details}",
            file=self.stream,
        )
        return None


class SlackSink:
    name = "slack"

    def __init__(self, client: WebClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackSink | None:
        token = os.environ.get(settings.slack.token_env)
        if not token:
            return None
        base_url = os.environ.get(settings.slack.base_url_env) or WebClient.BASE_URL
        # No in-process retry: a refused alert stays in the outbox and the next cycle retries.
        client = WebClient(token=token, base_url=base_url, timeout=15)
        return cls(client)

    @staticmethod
    def blocks(alert: Alert) -> list:
        notify = f"{alert.notify} " if alert.notify else ""
        title = f"{notify}*{escape_mrkdwn(alert.title)}*"
        body = escape_mrkdwn(alert.body)[:SECTION_TEXT_LIMIT]
        return [
            SectionBlock(text=MarkdownTextObject(text=title)),
            SectionBlock(text=MarkdownTextObject(text=body)),
            ContextBlock(elements=[MarkdownTextObject(text=f"listener alert #{alert.id}")]),
        ]

    def deliver(self, alert: Alert) -> str | None:
        try:
            response = self.client.chat_postMessage(
                channel=alert.channel,
                text=escape_mrkdwn(alert.title),
                blocks=self.blocks(alert),
                unfurl_links=False,
            )
        except SlackApiError as error:
            raise DeliveryError(
                f"Slack refused the message: {error.response.get('error')}"
            ) from error
        except (SlackClientError, OSError) as error:
            raise DeliveryError(f"Slack unreachable: {type(error).__name__}: {error}") from error
        return str(response.get("ts"))


def build_sink(settings: Settings, stream: TextIO | None = None) -> AlertSink:
    slack = SlackSink.from_settings(settings)
    if slack:
        log.info("alerts: Slack (token from %s)", settings.slack.token_env)
        return slack
    log.info("alerts: console, %s not set", settings.slack.token_env)
    return ConsoleSink(stream)
