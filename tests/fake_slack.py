"""A real HTTP server on 127.0.0.1 that answers like Slack's Web API.

Speaks `chat.postMessage`, `chat.update`, `chat.postEphemeral`, `views.open` and
`apps.connections.open` (Socket Mode, see fake_socket_mode.py) in the documented
shapes (channel names resolve to ids, `chat.update` needs an existing message, `views.open` needs
a `trigger_id`). Tests queue failures (status code, body, headers) that are served before normal
answers, and read back every request the client made and every message's current state.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from tests.local_server import LocalHTTPServer, QuietHandler

JSON_FIELDS = ("blocks", "view", "attachments")


@dataclass
class Failure:
    status: int
    body: dict = field(default_factory=lambda: {"ok": False, "error": "internal_error"})
    headers: dict[str, str] = field(default_factory=dict)


def channel_id(name: str) -> str:
    """`#social-review` → a stable id like Slack's `C…`; ids pass through."""
    if not name.startswith("#"):
        return name
    return "C" + hashlib.sha256(name.encode()).hexdigest()[:10].upper()


class FakeSlack(LocalHTTPServer):
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.failures: list[Failure] = []
        # Posting to these channels answers the error given (e.g. channel_not_found).
        self.channel_errors: dict[str, str] = {}
        # (channel id, ts) -> the message's current payload, as chat.update leaves it.
        self.messages: dict[tuple[str, str], dict] = {}
        # Where `apps.connections.open` sends Socket Mode clients (a FakeSocketMode's url).
        self.socket_url: str | None = None
        self._lock = threading.Lock()
        super().__init__()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def posted(self) -> list[dict]:
        return self.calls("chat.postMessage")

    def calls(self, method: str) -> list[dict]:
        """Accepted requests to one Web API method, in order."""
        return [r for r in self.requests if r["method"] == method and r["accepted"]]

    def answer(self, method: str, payload: dict, ts: str) -> dict:
        """The body Slack would send for an accepted call (with the lock held)."""
        answers = {
            "chat.postMessage": self._post,
            "chat.update": self._update,
            "views.open": self._open_view,
            "chat.postEphemeral": lambda _payload, ts: {"ok": True, "message_ts": ts},
            "apps.connections.open": lambda _payload, _ts: {"ok": True, "url": self.socket_url},
        }
        if method not in answers:
            return {"ok": False, "error": "unknown_method"}
        return answers[method](payload, ts)

    def _post(self, payload: dict, ts: str) -> dict:
        error = self.channel_errors.get(str(payload.get("channel")))
        if error:
            return {"ok": False, "error": error}
        channel = channel_id(str(payload.get("channel")))
        self.messages[(channel, ts)] = payload
        return {"ok": True, "channel": channel, "ts": ts, "message": payload}

    def _update(self, payload: dict, _ts: str) -> dict:
        key = (str(payload.get("channel")), str(payload.get("ts")))
        if key not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        self.messages[key] = payload
        return {"ok": True, "channel": key[0], "ts": key[1], "text": payload.get("text")}

    def _open_view(self, payload: dict, ts: str) -> dict:
        if not payload.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        return {"ok": True, "view": {"id": f"V{ts.replace('.', '')}", **payload["view"]}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    payload = json.loads(raw)
                else:
                    payload = {k: v[0] for k, v in parse_qs(raw).items()}
                for name in JSON_FIELDS:
                    if isinstance(payload.get(name), str):
                        payload[name] = json.loads(payload[name])
                method = self.path.rsplit("/", 1)[-1]
                with fake._lock:
                    failure = fake.failures.pop(0) if fake.failures else None
                    record = {
                        "method": method,
                        "payload": payload,
                        "auth": self.headers.get("Authorization"),
                        "accepted": failure is None,
                    }
                    fake.requests.append(record)
                    ts = f"1700000000.{len(fake.requests):06d}"
                    # Bot tokens for the Web API; the app-level token only opens Socket Mode.
                    prefix = "Bearer xapp-" if method == "apps.connections.open" else "Bearer xoxb-"
                    authorised = str(record["auth"]).startswith(prefix)
                    accepted = failure is None and authorised
                    body = fake.answer(method, payload, ts) if accepted else {}
                if failure:
                    self._answer(failure.status, failure.body, failure.headers)
                elif not authorised:
                    record["accepted"] = False
                    self._answer(200, {"ok": False, "error": "invalid_auth"})
                else:
                    record["accepted"] = bool(body.get("ok"))
                    self._answer(200, body)

            def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
                self.send_body(status, body, "application/json; charset=utf-8", headers)

        return Handler
