"""A real HTTP server on 127.0.0.1 that stands in for a platform API in collector tests.

Each test module registers handlers that answer in the platform's documented shape (status codes,
headers, pagination); tests queue failures (429, 500, HTML pages) served before the normal answer
of a path, and read back every request the client library made. A path ending in "/" also stands
for every path under it (an exact path wins; of several such prefixes the latest route wins).
Shared by every collector's tests: social (X, Reddit, RSS, HN) and review/social (App Store,
Google Play, YouTube, Mastodon, Bluesky).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import Engine
from sqlmodel import Session, func, select

from config.schema import Settings, load_settings
from listener.models import Mention, SourceCursor
from listener.pipeline import Pipeline
from listener.sources import Source, SourceSet
from listener.sources.replay import ReplaySource
from listener.sources.retry import RetryPolicy
from tests.local_server import LocalHTTPServer, QuietHandler

# Retries without real waiting: tests stay fast, the policy's logic stays real.
FAST = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05)


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list: JSON; str/bytes: sent as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"
    cut_after: int | None = None  # send only this many bytes of the body, then close


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, list[str]]  # every value of each query parameter
    headers: dict[str, str]
    body: str

    @property
    def query(self) -> dict[str, str]:
        """Each query parameter's last value (most APIs take one)."""
        return {name: values[-1] for name, values in self.params.items()}


Handler = Callable[[Request], Reply]
HTML_ERROR = Reply(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", {}, "text/html")


def _matches(key: str, path: str) -> bool:
    return path == key or (key.endswith("/") and path.startswith(key))


def _lookup(table: dict[str, Any], path: str) -> str | None:
    """The key of `table` that serves `path`: the exact path, else the latest prefix."""
    if path in table:
        return path
    return next((key for key in reversed(table) if _matches(key, path)), None)


class FakeAPI(LocalHTTPServer):
    poll_interval = 0.02

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.failures: dict[str, list[Reply]] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes.pop((method, path), None)  # a route set again becomes the latest
        self.routes[(method, path)] = handler

    def fail(self, path: str, *replies: Reply, times: int = 1) -> None:
        """Serve these replies, in order (`times` over), before the path's normal answers."""
        self.failures.setdefault(path, []).extend(list(replies) * times)

    def calls(self, path: str) -> list[Request]:
        return [r for r in self.requests if _matches(path, r.path)]

    def _answer(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            key = _lookup({k: r for k, r in self.failures.items() if r}, request.path)
            if key is not None:
                return self.failures[key].pop(0)
        paths = {path: h for (method, path), h in self.routes.items() if method == request.method}
        key = _lookup(paths, request.path)
        if key is None:
            return Reply(404, {"error": f"no route {request.method} {request.path}"})
        return paths[key](request)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length", 0))
                request = Request(
                    method=method,
                    path=parts.path,
                    params=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length).decode() if length else "",
                )
                reply = fake._answer(request)
                self.send_body(
                    reply.status, reply.body, reply.content_type, reply.headers, reply.cut_after
                )

        return Handler


# -- checks every collector shares, run through the real pipeline ------------------------------


def stored(engine: Engine, collector: str) -> list[Mention]:
    with Session(engine) as session:
        return list(session.exec(select(Mention).where(Mention.collector == collector)))


def stored_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Mention)).one()


def cursor_of(engine: Engine, name: str) -> SourceCursor | None:
    with Session(engine) as session:
        return session.get(SourceCursor, (name, ""))


def pipeline_with(settings: Settings, engine: Engine, source: Source, feed: Path) -> Pipeline:
    """The real pipeline with `source` beside a replay source, to show one does not stop the
    other."""
    other = ReplaySource("feed", [feed], max_items=100)
    return Pipeline.build(settings, engine, sources=SourceSet(enabled=[source, other], disabled={}))


def assert_storm_is_recorded(pipeline: Pipeline, engine: Engine, name: str) -> str:
    """A source that keeps failing: error recorded, cursor untouched, the replay source stored."""
    outcomes = pipeline.collect_all(respect_backoff=True)
    assert outcomes[name].error, outcomes[name]
    assert outcomes["feed"].stored > 0
    state = cursor_of(engine, name)
    assert state is not None
    assert state.cursor is None
    assert state.consecutive_failures == 1
    assert state.last_error == outcomes[name].error
    return outcomes[name].error


# -- helpers for tests that run one source alone through the pipeline --------------------------


def pipeline_alone(engine: Engine, source: Source) -> Pipeline:
    """The real pipeline (example config, keyword baseline) around one source."""
    settings = load_settings()
    # Collecting needs no model: pin the fast keyword baseline, not the example's encoder.
    settings = settings.model_copy(
        update={"model": settings.model.model_copy(update={"name": "baseline"})}
    )
    return Pipeline.build(settings, engine, sources=SourceSet(enabled=[source], disabled={}))


def stored_ids(engine: Engine, platform: str) -> list[str]:
    """The native ids stored for `platform`, sorted."""
    with Session(engine) as session:
        return sorted(session.exec(select(Mention.native_id).where(Mention.source == platform)))
