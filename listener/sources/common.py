"""Pieces the platform collectors share: secrets from env, brand terms, HTTP, newest-first cursors.

Platforms that list newest first without an "older than" parameter (Reddit, Hacker News) are read
back to the stored watermark; of the new items the *oldest* `max_items` are kept and the watermark
moves to the newest kept one, so a budget cut leaves the rest for the next cycle instead of a gap.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import requests

from config.schema import Settings
from listener.sources import NotConfigured, SourceError
from listener.sources.retry import TransientError, parse_retry_after

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 30.0
MAX_SEEN = 1000  # ids remembered at the watermark; bounded like praw's BoundedSet
USER_AGENT = "listener/0.1 (brand monitoring for customer service)"


def secret(credentials: dict[str, str], key: str, *, required: bool = True) -> str | None:
    """The secret `key` from the environment variable the config names; never logged."""
    variable = credentials.get(key)
    if variable is None:
        if required:
            raise NotConfigured(f"credentials.{key} names no environment variable")
        return None
    value = os.environ.get(variable, "").strip()
    if not value and required:
        raise NotConfigured(f"{variable} not set")
    return value or None


def to_utc(value: float | int | str | None) -> datetime:
    """Epoch seconds or ISO-8601 to an aware UTC datetime; ValueError if it is neither."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def json_safe(value: Any) -> Any:
    """A JSON-serialisable copy of a payload (odd types become strings) for `Mention.raw`."""
    return json.loads(json.dumps(value, default=str))


@dataclass(frozen=True)
class BrandTerms:
    """The brands' keywords per language, own handles per platform and excluded phrases."""

    keywords: dict[str, list[str]]
    handles: dict[str, list[str]]
    exclude: list[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> BrandTerms:
        keywords: dict[str, list[str]] = {}
        handles: dict[str, list[str]] = {}
        exclude: list[str] = []
        for brand in settings.brands:
            for language, terms in brand.keywords.items():
                _extend(keywords.setdefault(language, []), terms)
            for platform, names in brand.handles.items():
                _extend(handles.setdefault(platform, []), [n.lstrip("@") for n in names])
            _extend(exclude, brand.exclude)
        return cls(keywords, handles, exclude)

    def all_keywords(self) -> list[str]:
        found: list[str] = []
        for terms in self.keywords.values():
            _extend(found, terms)
        return found

    def names_a_keyword(self, text: str) -> bool:
        folded = text.casefold()
        return any(term.casefold() in folded for term in self.all_keywords())

    def excluded(self, text: str) -> bool:
        folded = text.casefold()
        return any(term.casefold() in folded for term in self.exclude)


def _extend(target: list[str], items: Iterable[str]) -> None:
    for item in items:
        if item not in target:
            target.append(item)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment (feed summaries, HN comments), whitespace collapsed."""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return " ".join("".join(extractor.parts).split())


def http_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def check_response(response: requests.Response, what: str) -> None:
    """Raise TransientError for 429/5xx (with Retry-After), SourceError for other failures."""
    status = response.status_code
    if status == 429 or status >= 500:
        raise TransientError(
            f"{what}: HTTP {status}", parse_retry_after(response.headers.get("Retry-After"))
        )
    if status >= 400:
        raise SourceError(f"{what}: HTTP {status} {response.reason}")


def get_json(session: requests.Session, url: str, params: dict[str, Any], what: str) -> Any:
    """GET a JSON document; network faults, 429/5xx and non-JSON bodies are transient."""
    try:
        response = session.get(url, params=params, timeout=DEFAULT_TIMEOUT)
    except (requests.ConnectionError, requests.Timeout) as error:
        raise TransientError(f"{what}: {type(error).__name__}") from error
    check_response(response, what)
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "unknown content")
        raise TransientError(f"{what}: the answer is not JSON ({kind})") from None


# -- newest-first listings read back to a watermark -----------------------------------------


@dataclass
class Watermark:
    """Items created before `after` (epoch seconds) were read; `seen` holds ids at the edge."""

    after: float = 0.0
    seen: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"after": self.after, "seen": self.seen[-MAX_SEEN:]}

    @classmethod
    def from_json(cls, data: Any) -> Watermark:
        if not isinstance(data, dict):
            return cls()
        seen = data.get("seen")
        return cls(
            after=float(data.get("after") or 0.0),
            seen=[str(s) for s in seen] if isinstance(seen, list) else [],
        )


@dataclass
class Listed:
    """One listed item: its id, creation time (epoch seconds) and the payload to parse later."""

    key: str
    created: float
    payload: Any


@dataclass
class Selection:
    items: list[Listed]
    mark: Watermark
    more_waiting: int  # new items left for a later cycle by the budget


def select_new(listing: Iterator[Listed], mark: Watermark, floor: float, budget: int) -> Selection:
    """Read a newest-first listing back to the watermark (or `floor` on a first run); keep the
    oldest `budget` new items and move the watermark to the newest kept one."""
    stop_at = mark.after if mark.after else floor
    seen = set(mark.seen)
    fresh: dict[str, Listed] = {}
    for item in listing:
        if item.created < stop_at:
            break
        if item.key not in seen and item.key not in fresh:
            fresh[item.key] = item
    ordered = sorted(fresh.values(), key=lambda item: item.created)
    kept = ordered[:budget]
    if not kept:
        return Selection([], Watermark(stop_at, mark.seen), 0)
    timed = [item.created for item in kept if math.isfinite(item.created)]
    newest = max(timed) if timed else stop_at  # an item without a time moves nothing
    carried = mark.seen if newest == mark.after else []  # still at the same edge second
    edge = carried + [item.key for item in kept]
    return Selection(kept, Watermark(newest, edge[-MAX_SEEN:]), len(ordered) - len(kept))


def read_cursor(cursor: str | None, source: str) -> dict[str, Any]:
    """The stored cursor as a dict; an unreadable one restarts from the backfill window."""
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        log.warning("source %s: unreadable cursor %r; reading the backfill window", source, cursor)
        return {}
    return data
