"""Socket Mode: envelopes pushed over a real local WebSocket reach the same handler, and the
acknowledgement carries its answer. slack-sdk's built-in client does the talking."""

from __future__ import annotations

import json

from sqlmodel import Session, select

from alerts.interactions import InteractionHandler, slack_client
from alerts.review import APPROVE, REJECT
from alerts.slack_socket import connect
from listener.models import ReplyDraft
from tests import slack_payloads as sp
from tests.fake_socket_mode import FakeSocketMode
from tests.test_alerts_slack_review import Clock, desk, slack

__all__ = ["desk", "slack"]  # fixtures shared with the review tests
HELLO = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0LISTENER"}}


def _envelope(envelope_id: str, payload: dict, accepts_response: bool) -> dict:
    return {
        "envelope_id": envelope_id,
        "payload": payload,
        "type": "interactive",
        "accepts_response_payload": accepts_response,
    }


def test_socket_mode_envelopes_reach_the_handler_and_are_acknowledged(desk):
    handler = InteractionHandler(
        desk.settings, desk.engine, slack_client(desk.settings), clock=Clock()
    )
    with Session(desk.engine) as session:
        first, second = session.exec(select(ReplyDraft.id).order_by(ReplyDraft.id)).all()[:2]
    with FakeSocketMode() as socket_mode:
        desk.slack.socket_url = socket_mode.url
        client = connect(handler.handle, "xapp-1-test-placeholder", handler.client)
        try:
            socket_mode.send(HELLO)
            channel, ts = desk.message(first)
            click = sp.block_action(APPROVE, str(first), channel, ts)
            socket_mode.send(_envelope("env-1", click, accepts_response=False))
            ack = socket_mode.acks.get(timeout=10)

            [opened_socket] = desk.slack.calls("apps.connections.open")
            desk.slack.requests.clear()
            channel, ts = desk.message(second)
            socket_mode.send(
                _envelope("env-2", sp.block_action(REJECT, str(second), channel, ts), False)
            )
            socket_mode.acks.get(timeout=10)
            [opened] = desk.slack.calls("views.open")
            empty = {"reject_reason": {"reason": {"type": "plain_text_input", "value": ""}}}
            submit = sp.view_submission(opened["payload"]["view"], empty)
            socket_mode.send(_envelope("env-3", submit, accepts_response=True))
            refusal = socket_mode.acks.get(timeout=10)
        finally:
            client.close()

    assert ack == {"envelope_id": "env-1"}
    assert desk.draft(first).status == "approved"
    assert "Approved by <@U0REVIEW1>" in json.dumps(desk.shown(first)["blocks"])
    assert refusal["envelope_id"] == "env-3"
    assert refusal["payload"]["response_action"] == "errors"
    assert desk.draft(second).status == "pending"
    assert opened_socket["auth"] == "Bearer xapp-1-test-placeholder"
