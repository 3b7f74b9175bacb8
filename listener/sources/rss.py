"""RSS and Atom feeds (Google Alerts, Trustpilot, review and news sites) through feedparser.

Feeds are fetched with requests (conditional GET: ETag / If-Modified-Since, so an unchanged feed
costs one 304) and parsed by feedparser. A feed is a sliding window of entries with no paging, so
the cursor remembers, per feed, the ids of entries already taken (bounded). A feed that fails
after its retries is reported and keeps its cursor; the others go on. Only when every feed fails
does the fetch fail as a whole.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

import feedparser
import requests

from config.schema import RssSource as RssConfig
from config.schema import Settings
from listener.models import Mention, utcnow
from listener.sources import FetchResult, Source, SourceError
from listener.sources.common import BrandTerms, html_to_text, json_safe, to_utc
from listener.sources.httpjson import LONG_TIMEOUT, new_session, send
from listener.sources.paging import MAX_SEEN, read_cursor
from listener.sources.retry import RetryPolicy, call_with_retries

log = logging.getLogger(__name__)
MAX_ID_CHARS = 256


@dataclass
class FeedState:
    etag: str | None = None
    modified: str | None = None
    seen: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, data: Any) -> FeedState:
        if not isinstance(data, dict):
            return cls()
        seen = data.get("seen")
        return cls(
            etag=data.get("etag"),
            modified=data.get("modified"),
            seen=[str(s) for s in seen] if isinstance(seen, list) else [],
        )

    def dump(self) -> dict[str, Any]:
        return {"etag": self.etag, "modified": self.modified, "seen": self.seen[-MAX_SEEN:]}


@dataclass
class FeedDocument:
    entries: list[Any]
    language: str | None
    etag: str | None
    modified: str | None


class RssSource(Source):
    type: ClassVar[str] = "rss"

    def __init__(
        self,
        name: str,
        feeds: list[str],
        terms: BrandTerms,
        *,
        platform: str,
        keywords_only: bool,
        max_items: int,
        backfill: timedelta,
        session: requests.Session | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(name, max_items)
        self.feeds = feeds
        self.terms = terms
        self.platform = platform
        self.keywords_only = keywords_only
        self.backfill = backfill
        self.session = session or new_session()
        self.policy = policy or RetryPolicy()
        self.clock = clock

    @classmethod
    def from_config(
        cls, config: RssConfig, settings: Settings, *, policy: RetryPolicy | None = None
    ) -> RssSource:
        return cls(
            config.name,
            list(config.feeds),
            BrandTerms.from_settings(settings),
            platform=config.platform,
            keywords_only=config.keywords_only,
            max_items=config.max_items_per_cycle,
            backfill=config.backfill,
            policy=policy,
        )

    def fetch(self, cursor: str | None) -> FetchResult:
        state = read_cursor(cursor, self.name)
        mentions: list[Mention] = []
        rejected: list[str] = []
        failures: list[str] = []
        for url in self.feeds:
            feed = FeedState.load(state.get(url))
            try:
                document = call_with_retries(
                    lambda url=url, feed=feed: self._download(url, feed),
                    source=self.name,
                    policy=self.policy,
                )
            except SourceError as error:
                failures.append(f"feed {url}: {error}")
                continue
            if document is not None:
                budget = self.max_items - len(mentions)
                state[url] = self._take(
                    url, feed, document, budget=budget, mentions=mentions, rejected=rejected
                )
        if failures and len(failures) == len(self.feeds):
            raise SourceError("; ".join(failures))
        return FetchResult(mentions, json.dumps(state, sort_keys=True), rejected + failures)

    def _download(self, url: str, feed: FeedState) -> FeedDocument | None:
        """The parsed feed, or None when it has not changed (304)."""
        headers = {}
        if feed.etag:
            headers["If-None-Match"] = feed.etag
        if feed.modified:
            headers["If-Modified-Since"] = feed.modified
        response = send(
            self.session, "GET", url, what="feed", headers=headers, timeout=LONG_TIMEOUT
        )
        if response.status_code == 304:
            return None
        parsed = feedparser.parse(
            response.content,
            response_headers={k.lower(): v for k, v in response.headers.items()},
        )
        if parsed.bozo and not parsed.entries:
            problem = getattr(parsed, "bozo_exception", "unknown problem")
            kind = response.headers.get("Content-Type", "unknown content")
            raise SourceError(f"not an RSS/Atom feed ({kind}): {problem}")
        language = parsed.feed.get("language") if isinstance(parsed.feed, dict) else None
        return FeedDocument(
            list(parsed.entries),
            language,
            response.headers.get("ETag"),
            response.headers.get("Last-Modified"),
        )

    def _take(
        self,
        url: str,
        feed: FeedState,
        document: FeedDocument,
        *,
        budget: int,
        mentions: list[Mention],
        rejected: list[str],
    ) -> dict[str, Any]:
        """Turn unseen entries into mentions (oldest first, within the budget); the feed's new
        state. When the budget cuts a feed, its ETag is not kept, so the rest is read next time."""
        seen = set(feed.seen)
        now = self.clock()
        window_start = now - self.backfill
        current = [(entry_id(entry), entry) for entry in document.entries]
        fresh = [(key, entry) for key, entry in current if key not in seen]
        fresh.sort(key=lambda pair: _published(pair[1]) or now)
        taken: list[str] = []
        cut = False
        for key, entry in fresh:
            if len(taken) >= budget:
                cut = True
                break
            taken.append(key)
            try:
                mention = self._mention(key, entry, document.language)
            except (KeyError, TypeError, ValueError) as error:
                rejected.append(f"feed {url} entry {key[:80]}: {error}")
                continue
            if mention is None:
                continue
            if not feed.seen and mention.created_at < window_start:
                continue  # first run: older than the backfill window
            mentions.append(mention)
        listed = {key for key, _entry in current}
        kept = [key for key in feed.seen if key not in listed] + [
            key for key, _entry in current if key in seen or key in taken
        ]
        etag, modified = (None, None) if cut else (document.etag, document.modified)
        return FeedState(etag, modified, kept[-MAX_SEEN:]).dump()

    def _mention(self, key: str, entry: Any, feed_language: str | None) -> Mention | None:
        title = html_to_text(entry.get("title") or "")
        summary = html_to_text(_summary(entry))
        text = f"{title}\n\n{summary}".strip() if summary and summary != title else title
        if not text:
            raise ValueError("no title or summary")
        if self.terms.excluded(text):
            return None
        if self.keywords_only and not self.terms.names_a_keyword(text):
            return None
        language = entry.get("language") or feed_language
        published = _published(entry)
        return Mention(
            source=self.platform,
            collector=self.name,
            native_id=key,
            url=entry.get("link"),
            author_handle=entry.get("author") or None,
            author_name=None,
            author_followers=None,
            text=text,
            language=str(language).split("-")[0].lower()[:16] if language else None,
            created_at=published or self.clock(),
            raw=json_safe({k: v for k, v in entry.items() if not k.endswith("_parsed")}),
        )


def entry_id(entry: Any) -> str:
    """The entry's id (or link, or a hash of its title and date), at most 256 characters."""
    key = entry.get("id") or entry.get("link")
    if not key:
        basis = f"{entry.get('title', '')}|{entry.get('published', entry.get('updated', ''))}"
        key = "sha256:" + hashlib.sha256(basis.encode()).hexdigest()
    key = str(key)
    if len(key) > MAX_ID_CHARS:
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def _summary(entry: Any) -> str:
    content = entry.get("content")
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("value") or "")
    return str(entry.get("summary") or "")


def _published(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        value = entry.get(key)
        if value:
            return to_utc(calendar.timegm(value))
    return None
