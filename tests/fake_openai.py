"""A real HTTP server on 127.0.0.1 answering like an OpenAI-compatible `/v1/chat/completions`.

Tests queue the replies (text, or an HTTP status for a failure) and read back each request.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

from tests.local_server import LocalHTTPServer, QuietHandler


class FakeChatCompletions(LocalHTTPServer):
    def __init__(self) -> None:
        self.replies: list[str | int] = []
        self.requests: list[dict] = []
        super().__init__()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "body": body})
                reply = fake.replies.pop(0) if fake.replies else 500
                if isinstance(reply, int):
                    self.send_body(reply, {"error": {"message": "server error", "type": "server"}})
                    return
                self.send_body(
                    200,
                    {
                        "id": f"chatcmpl-{len(fake.requests)}",
                        "object": "chat.completion",
                        "created": 1764201600,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 50, "completion_tokens": 30, "total_tokens": 80},
                    },
                )

        return Handler
