"""Interaction payloads in the shape Slack documents, and signed requests to our endpoint.

`block_actions`: https://api.slack.com/reference/interaction-payloads/block-actions
`view_submission`: https://api.slack.com/reference/interaction-payloads/views
Secrets and tokens are placeholders.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

SIGNING_SECRET = "test-signing-secret-placeholder"
TEAM = {"id": "T0LUMORA1", "domain": "lumora"}
REVIEWER = "U0REVIEW1"


def user(user_id: str = REVIEWER) -> dict:
    return {"id": user_id, "username": "ana.k", "name": "ana.k", "team_id": TEAM["id"]}


def block_action(
    action_id: str, value: str, channel: str, ts: str, user_id: str = REVIEWER
) -> dict:
    button = {
        "action_id": action_id,
        "block_id": f"draft:{value}",
        "text": {"type": "plain_text", "text": action_id, "emoji": True},
        "value": value,
        "type": "button",
        "action_ts": "1700000100.000200",
    }
    return {
        "type": "block_actions",
        "user": user(user_id),
        "api_app_id": "A0LISTENER",
        "token": "verification-token-placeholder",
        "container": {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": "1700000100.123456.abcdef0123456789",
        "team": TEAM,
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "social-review"},
        "message": {"type": "message", "ts": ts, "text": "Reply draft", "blocks": []},
        "response_url": "https://hooks.slack.com/actions/T0LUMORA1/1/placeholder",
        "actions": [button],
    }


def view_submission(view: dict, values: dict, user_id: str = REVIEWER) -> dict:
    """The submission of a modal we opened (`view` as sent to views.open), with inputs."""
    return {
        "type": "view_submission",
        "team": TEAM,
        "user": user(user_id),
        "api_app_id": "A0LISTENER",
        "token": "verification-token-placeholder",
        "trigger_id": "1700000200.123456.fedcba9876543210",
        "view": {
            "id": "V0MODAL01",
            "team_id": TEAM["id"],
            "app_id": "A0LISTENER",
            "hash": "1700000200.placeholder",
            "root_view_id": "V0MODAL01",
            "previous_view_id": None,
            **view,
            "state": {"values": values},
        },
        "response_urls": [],
        "is_enterprise_install": False,
    }


@dataclass
class Answer:
    status: int
    body: dict | None


def signed_request(
    url: str,
    payload: dict,
    timestamp: int,
    *,
    secret: str = SIGNING_SECRET,
    signature: str | None = None,
) -> urllib.request.Request:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    signature = signature or SignatureVerifier(secret).generate_signature(
        timestamp=str(timestamp), body=body
    )
    return urllib.request.Request(  # noqa: S310  (our endpoint on 127.0.0.1)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        },
    )


def send(request: urllib.request.Request) -> Answer:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  (127.0.0.1)
            raw = response.read()
            return Answer(response.status, json.loads(raw) if raw else None)
    except urllib.error.HTTPError as error:
        raw = error.read()
        return Answer(error.code, json.loads(raw) if raw else None)
