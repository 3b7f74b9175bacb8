"""The interactivity endpoint Slack posts button clicks and modal submissions to.

Every request must carry Slack's signature over the exact body and a timestamp within five
minutes; a signature seen before is a replay. All three are refused with 401 and logged. The
verified payload goes to the same `InteractionHandler` Socket Mode uses.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import Clock, SignatureVerifier

from alerts.interactions import InteractionError
from alerts.sinks import printable

log = logging.getLogger(__name__)
PATH = "/slack/interactions"
MAX_AGE_SECONDS = 60 * 5  # Slack's own advice, and what SignatureVerifier enforces
MAX_BODY_BYTES = 1_000_000
MAX_REMEMBERED = 10_000

Handle = Callable[[Mapping[str, Any]], dict[str, Any] | None]


class _Clock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class ReplayGuard:
    """Signatures seen while their requests can still pass the timestamp check: until five
    minutes after the request's own timestamp, which Slack's clock may set ahead of ours."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # signature -> when it may be forgotten
        self._lock = threading.Lock()

    def first_time(self, signature: str, timestamp: float) -> bool:
        now = self.clock()
        with self._lock:
            while self._seen and (
                next(iter(self._seen.values())) < now or len(self._seen) > MAX_REMEMBERED
            ):
                self._seen.popitem(last=False)
            if signature in self._seen:
                return False
            self._seen[signature] = max(now, timestamp) + MAX_AGE_SECONDS
            return True


class InteractionServer:
    """A small threaded HTTP server: `POST /slack/interactions`, signed by Slack."""

    def __init__(
        self,
        handle: Handle,
        signing_secret: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.handle = handle
        self.clock = clock
        self.verifier = SignatureVerifier(signing_secret, clock=_Clock(clock))
        self.replays = ReplayGuard(clock)
        self._server = ThreadingHTTPServer((host, port), self._request_handler())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def __enter__(self) -> InteractionServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def check(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """Why the request is refused (for the log), or None when it is Slack's and new."""
        timestamp = headers.get("X-Slack-Request-Timestamp")
        signature = headers.get("X-Slack-Signature")
        if not timestamp or not signature:
            return "no signature headers"
        try:
            sent_at = int(timestamp)
        except ValueError:
            return "malformed timestamp"
        age = abs(self.clock() - sent_at)
        if age > MAX_AGE_SECONDS:
            return f"stale timestamp ({int(age)} s old)"
        if not self.verifier.is_valid(body, timestamp, signature):
            return "bad signature"
        if not self.replays.first_time(signature, sent_at):
            return "replayed request"
        return None

    def respond(self, body: bytes) -> tuple[int, dict[str, Any] | None]:
        """Decode a verified form body and run the handler: (status, JSON answer)."""
        form = parse_qs(body.decode("utf-8", errors="replace"))
        try:
            payload = json.loads(form["payload"][0])
        except (KeyError, IndexError, ValueError):
            return 400, {"error": "expected a form field 'payload' holding JSON"}
        if not isinstance(payload, dict):
            return 400, {"error": "payload must be a JSON object"}
        try:
            return 200, self.handle(payload)
        except InteractionError as error:
            log.warning("slack endpoint: unusable interaction: %s", printable(str(error)))
            return 400, {"error": str(error)}

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path.split("?")[0] != PATH:
                    self._answer(404, {"error": f"not found; Slack posts to {PATH}"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self._answer(413, {"error": "request body too large"})
                    return
                body = self.rfile.read(length)
                refusal = server.check(body, self.headers)
                if refusal:
                    log.warning(
                        "slack endpoint: refused a request from %s: %s",
                        self.client_address[0],
                        refusal,
                    )
                    self._answer(401, {"error": refusal})
                    return
                try:
                    status, answer = server.respond(body)
                except Exception:
                    log.exception("slack endpoint: the interaction failed")
                    status, answer = 500, {"error": "internal error, see the listener log"}
                self._answer(status, answer)

            def _answer(self, status: int, body: dict[str, Any] | None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass  # requests are logged by outcome above, without their bodies

        return Handler
