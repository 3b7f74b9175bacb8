"""Plain HTTP for the collectors that need no SDK (App Store, Google Play, YouTube).

One `requests.Session` per source; every answer is sorted into what the retry policy can act on:
429, 5xx, timeouts, resets and unreadable bodies are `TransientError` (with the platform's
Retry-After), other 4xx are `ClientFault` carrying the status and body for the collector to read.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import requests

from listener.sources import NotConfigured, SourceError
from listener.sources.retry import TransientError, parse_retry_after

DEFAULT_TIMEOUT = 20.0
USER_AGENT = "listener/0.1 (+customer-service monitoring)"
MAX_BODY_CHARS = 300


class ClientFault(SourceError):
    """The platform refused the request (4xx other than 429); `body` is its parsed answer."""

    def __init__(self, message: str, status: int, body: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ItemError(ValueError):
    """One item of a page cannot become a mention; the message names the field."""


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_BODY_CHARS else text[:MAX_BODY_CHARS] + "…"


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
    except requests.Timeout:
        raise TransientError(f"{what}: timed out after {timeout:.0f} s") from None
    except requests.ConnectionError as error:
        raise TransientError(f"{what}: cannot connect ({type(error).__name__})") from None
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


def secret(credentials: dict[str, str], key: str) -> str:
    """The secret `key` from the env var the config names; `NotConfigured` when unset."""
    variable = credentials.get(key)
    if not variable:
        raise NotConfigured(f"credentials.{key} names no environment variable")
    value = os.environ.get(variable, "").strip()
    if not value:
        raise NotConfigured(f"{variable} not set")
    return value


def optional_secret(credentials: dict[str, str], key: str) -> str | None:
    variable = credentials.get(key)
    return (os.environ.get(variable, "").strip() or None) if variable else None


def parse_time(value: Any, field: str) -> datetime:
    """An ISO-8601 time (with offset or Z) as an aware UTC datetime, or ItemError."""
    if not isinstance(value, str) or not value:
        raise ItemError(f"missing {field!r} (an ISO-8601 time)")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ItemError(f"{field!r} is not an ISO-8601 time: {value[:40]!r}") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def require_str(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ItemError(f"missing {field!r} (a non-empty string)")
    return value
