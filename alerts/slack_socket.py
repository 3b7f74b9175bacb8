"""Socket Mode: Slack pushes interactions over a websocket, so no public URL is needed.

The same `InteractionHandler` as the HTTP endpoint answers; its response (e.g. a modal's
validation errors) goes back in the envelope's acknowledgement.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from alerts.interactions import InteractionError
from alerts.sinks import printable
from alerts.slack_http import Handle

log = logging.getLogger(__name__)
Listener = Callable[[SocketModeClient, SocketModeRequest], None]


def socket_listener(handle: Handle) -> Listener:
    """Acknowledge every envelope; hand interactive ones to `handle` first."""

    def listen(client: SocketModeClient, request: SocketModeRequest) -> None:
        answer = None
        if request.type == "interactive":
            try:
                answer = handle(request.payload)
            except InteractionError as error:
                log.warning("slack socket: unusable interaction: %s", printable(str(error)))
            except Exception:
                log.exception("slack socket: the interaction failed")
        client.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id, payload=answer)
        )

    return listen


def connect(handle: Handle, app_token: str, web_client: WebClient) -> SocketModeClient:
    """A connected Socket Mode client feeding `handle`; close() it to stop."""
    client = SocketModeClient(app_token=app_token, web_client=web_client)
    client.socket_mode_request_listeners.append(socket_listener(handle))
    client.connect()
    return client


def run_socket_mode(
    handle: Handle, app_token: str, web_client: WebClient, stop: threading.Event
) -> None:
    client = connect(handle, app_token, web_client)
    log.info("slack socket: connected; waiting for interactions")
    try:
        stop.wait()
    finally:
        client.close()
