"""A real HTTP server on 127.0.0.1 for the review and social collectors' tests.

Each test registers handlers per path (they answer in the platform's documented shape) and may
queue failures for a path (status, body, headers) that are served before the handler answers.
Every request is recorded so tests can check what the client sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes as given
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


Handler = Callable[[Request], Reply]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) closes the socket mid-answer: not an error."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeAPI:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._routes: list[tuple[str, str, Handler]] = []
        self._failures: list[tuple[str, Reply]] = []
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def route(self, method: str, prefix: str, handler: Handler) -> None:
        self._routes.append((method, prefix, handler))

    def fail(self, prefix: str, reply: Reply, times: int = 1) -> None:
        """Answer the next `times` requests whose path starts with `prefix` with `reply`."""
        with self._lock:
            self._failures += [(prefix, reply)] * times

    def calls(self, prefix: str) -> list[Request]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    def __enter__(self) -> FakeAPI:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer_for(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            for index, (prefix, reply) in enumerate(self._failures):
                if request.path.startswith(prefix):
                    del self._failures[index]
                    return reply
        for method, prefix, handler in reversed(self._routes):  # the latest route wins
            if method == request.method and request.path.startswith(prefix):
                return handler(request)
        return Reply(404, {"error": f"no route for {request.method} {request.path}"})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length", 0) or 0)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                reply = fake._answer_for(request)
                body = reply.body
                if isinstance(body, dict | list):
                    data = json.dumps(body).encode()
                elif isinstance(body, str):
                    data = body.encode()
                else:
                    data = body or b""
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(data)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, *_args: object) -> None:
                pass

        return Handler


def fast_retry():  # type: ignore[no-untyped-def]
    """A retry policy for tests: the same attempts, no real waiting."""
    from listener.sources.retry import RetryPolicy

    return RetryPolicy(attempts=3, initial_delay=0.001, max_delay=0.05)


def pipeline_for(engine, source):  # type: ignore[no-untyped-def]
    """The real pipeline (example config, keyword baseline) around one source."""
    from config.schema import load_settings
    from listener.pipeline import Pipeline
    from listener.sources import SourceSet

    settings = load_settings()
    # Collecting needs no model: pin the fast keyword baseline, not the example's encoder.
    settings = settings.model_copy(
        update={"model": settings.model.model_copy(update={"name": "baseline"})}
    )
    return Pipeline.build(settings, engine, sources=SourceSet(enabled=[source], disabled={}))


def stored_ids(engine, platform: str) -> list[str]:  # type: ignore[no-untyped-def]
    from sqlmodel import Session, select

    from listener.models import Mention

    with Session(engine) as session:
        rows = session.exec(select(Mention.native_id).where(Mention.source == platform))
        return sorted(rows)


def cursor_state(engine, name: str):  # type: ignore[no-untyped-def]
    from sqlmodel import Session

    from listener.models import SourceCursor

    with Session(engine) as session:
        return session.get(SourceCursor, (name, ""))
