"""Plain HTTP for every collector that talks to a JSON or feed endpoint itself.

One `requests.Session` per source with our User-Agent; every answer is sorted into what the retry
policy can act on: 429, 5xx, timeouts, resets (also mid-body) and unreadable bodies are
`TransientError` (with the platform's Retry-After), other 4xx are `ClientFault` carrying the status
and body for the collector to read, a request that cannot be made at all a plain `SourceError`.
Collectors built on an SDK (tweepy, praw) take only the timeout from here; X maps requests' faults
with `request_fault` too.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from listener.sources import SourceError
from listener.sources.retry import TransientError, parse_retry_after

DEFAULT_TIMEOUT = 20.0  # App Store, Google Play, YouTube, Mastodon, Bluesky
LONG_TIMEOUT = 30.0  # X, Reddit, Hacker News and feeds: the timeout they were written with
USER_AGENT = "listener/0.1 (brand monitoring for customer service)"
MAX_BODY_CHARS = 300


class ClientFault(SourceError):
    """The platform refused the request (4xx other than 429); `body` is its parsed answer."""

    def __init__(self, message: str, status: int, body: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_BODY_CHARS else text[:MAX_BODY_CHARS] + "…"


# The answer broke off (a reset mid-body) or its compression is corrupt: a new try usually gets it.
BROKEN_ANSWER = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)


def request_fault(error: requests.RequestException, what: str, timeout: float) -> SourceError:
    """A requests fault as `TransientError` (timeouts, resets, a cut or garbled body) or, for
    a request that cannot be made at all (a bad URL, a redirect loop), `SourceError`."""
    kind = type(error).__name__
    if isinstance(error, requests.Timeout):
        return TransientError(f"{what}: timed out after {timeout:.0f} s")
    if isinstance(error, requests.ConnectionError):
        return TransientError(f"{what}: cannot connect ({kind})")
    if isinstance(error, requests.exceptions.InvalidJSONError):  # an SDK parsing a cut body
        return TransientError(f"{what}: the answer is not JSON")
    if isinstance(error, BROKEN_ANSWER):
        return TransientError(f"{what}: the answer broke off or cannot be decoded ({kind})")
    return SourceError(f"{what}: the request failed ({kind}: {_short(str(error))})")


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    **kwargs: Any,
) -> requests.Response:
    """One request; faults worth retrying become `TransientError`, refusals `ClientFault`."""
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as error:
        raise request_fault(error, what, timeout) from None
    status = response.status_code
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise TransientError(f"{what}: HTTP {status}", retry_after=retry_after)
    if status >= 400:
        try:
            body: Any = response.json()
        except ValueError:
            body = _short(response.text)
        raise ClientFault(f"{what}: HTTP {status}: {_short(str(body))}", status, body)
    return response


def get_json(session: requests.Session, url: str, *, what: str, **kwargs: Any) -> Any:
    """GET and parse JSON; an HTML error page or truncated body is transient (a proxy hiccup)."""
    response = send(session, "GET", url, what=what, **kwargs)
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        kind = response.headers.get("Content-Type", "unknown type")
        raise TransientError(
            f"{what}: the answer is not JSON ({kind}): {_short(response.text)}"
        ) from None
