"""The scaffolding every fake service in the tests shares: a real HTTP server on 127.0.0.1.

Subclasses give the request handler (`_handler`) and the API they speak; this class owns the
socket, the serving thread and the context-manager lifecycle.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Body = dict | list | str | bytes | None


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) closes the socket mid-answer: not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler with one way to answer (JSON for dicts and lists) and no access log."""

    def send_body(
        self,
        status: int,
        body: Body,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        cut_after: int | None = None,
    ) -> None:
        """Answer with `body`; with `cut_after`, announce it whole but send only that many bytes
        and close the connection: a reset mid-answer."""
        if isinstance(body, dict | list):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body or b""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if cut_after is not None:
            data, self.close_connection = data[:cut_after], True
        self.wfile.write(data)

    def log_message(self, *_args: object) -> None:
        pass


class LocalHTTPServer:
    poll_interval = 0.05

    def __init__(self) -> None:
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": self.poll_interval},
            daemon=True,
        )

    @property
    def port(self) -> int:
        return self._server.server_port

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError
