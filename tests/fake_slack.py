"""A real HTTP server on 127.0.0.1 that answers like Slack's Web API (`chat.postMessage`).

Tests queue failures (status code, body, headers) that are served before normal answers, and
read back every request the client made.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class Failure:
    status: int
    body: dict = field(default_factory=lambda: {"ok": False, "error": "internal_error"})
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlack:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.failures: list[Failure] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/api/"

    @property
    def posted(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "chat.postMessage" and r["accepted"]]

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    payload = json.loads(raw)
                else:
                    payload = {k: v[0] for k, v in parse_qs(raw).items()}
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
                if failure:
                    self._answer(failure.status, failure.body, failure.headers)
                elif not str(record["auth"]).startswith("Bearer xoxb-"):
                    record["accepted"] = False
                    self._answer(200, {"ok": False, "error": "invalid_auth"})
                else:
                    channel = payload.get("channel")
                    self._answer(200, {"ok": True, "channel": channel, "ts": ts})

            def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass

        return Handler
