"""Hacker News through the free Algolia search API (no account): stories and comments.

`search_by_date` lists newest first; `numericFilters=created_at_i>=WATERMARK` lets the platform
stop at the cursor, and each search term keeps its own watermark. Algolia pages end after 1,000
hits per query, more than enough between two cycles for a brand name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, ClassVar

import requests

from config.schema import HackerNewsSource as HackerNewsConfig
from config.schema import Settings
from listener.models import Mention, utcnow
from listener.sources import FetchResult, NotConfigured, Source
from listener.sources.common import BrandTerms, engagement, html_to_text, rejection_reason, to_utc
from listener.sources.httpjson import LONG_TIMEOUT, get_json, new_session
from listener.sources.paging import Listed, Watermark, read_cursor, select_new
from listener.sources.retry import RetryPolicy, TransientError, call_with_retries

log = logging.getLogger(__name__)
PLATFORM = "hackernews"
DEFAULT_BASE_URL = "https://hn.algolia.com/api/v1/"
ITEM_URL = "https://news.ycombinator.com/item?id={}"
HITS_PER_PAGE = 100


class HackerNewsSource(Source):
    type: ClassVar[str] = "hackernews"

    def __init__(
        self,
        name: str,
        queries: list[str],
        terms: BrandTerms,
        *,
        tags: list[str],
        max_items: int,
        backfill_seconds: float,
        base_url: str = DEFAULT_BASE_URL,
        session: requests.Session | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(name, max_items)
        self.queries = queries
        self.terms = terms
        self.tags = f"({','.join(tags)})"
        self.backfill_seconds = backfill_seconds
        self.url = base_url.rstrip("/") + "/search_by_date"
        self.session = session or new_session()
        self.policy = policy or RetryPolicy()
        self.clock = clock

    @classmethod
    def from_config(
        cls, config: HackerNewsConfig, settings: Settings, *, policy: RetryPolicy | None = None
    ) -> HackerNewsSource:
        terms = BrandTerms.from_settings(settings)
        queries = config.queries or terms.all_keywords()
        if not queries:
            raise NotConfigured("no queries and the brands have no keywords")
        return cls(
            config.name,
            queries,
            terms,
            tags=list(config.tags),
            max_items=config.max_items_per_cycle,
            backfill_seconds=config.backfill.total_seconds(),
            base_url=config.base_url or DEFAULT_BASE_URL,
            policy=policy,
        )

    def fetch(self, cursor: str | None) -> FetchResult:
        state = read_cursor(cursor, self.name)
        mentions: list[Mention] = []
        rejected: list[str] = []
        taken: set[str] = set()
        new_state: dict[str, Any] = {}
        for query in self.queries:
            mark = Watermark.from_json(state.get(query), f"source {self.name}, query {query!r}")
            budget = self.max_items - len(mentions) - len(rejected)
            if budget <= 0:
                new_state[query] = mark.to_json()
                continue
            floor = self.clock().timestamp() - self.backfill_seconds
            selection = call_with_retries(
                lambda query=query, mark=mark, floor=floor, budget=budget: select_new(
                    self._walk(query, mark.after or floor), mark, floor, budget
                ),
                source=self.name,
                policy=self.policy,
            )
            new_state[query] = selection.mark.to_json()
            for item in selection.items:
                if item.key in taken:
                    continue  # found by an earlier query in this cycle
                taken.add(item.key)
                try:
                    mention = self._mention(item.payload)
                except (KeyError, TypeError, ValueError) as error:
                    rejected.append(f"hit {item.key}: {rejection_reason(error)}")
                    continue
                if mention is not None:
                    mentions.append(mention)
        return FetchResult(mentions, json.dumps(new_state, sort_keys=True), rejected)

    def _walk(self, query: str, since: float) -> Iterator[Listed]:
        page, pages = 0, 1
        while page < pages:
            params = {
                "query": query,
                "tags": self.tags,
                "numericFilters": f"created_at_i>={int(since)}",
                "hitsPerPage": HITS_PER_PAGE,
                "page": page,
            }
            body = get_json(
                self.session,
                self.url,
                what="Hacker News search",
                params=params,
                timeout=LONG_TIMEOUT,
            )
            if not isinstance(body, dict) or not isinstance(body.get("hits"), list):
                raise TransientError("Hacker News search: the answer has no 'hits' list")
            pages = int(body.get("nbPages") or 0)
            for hit in body["hits"]:
                yield _listed(hit)
            page += 1

    def _mention(self, hit: Any) -> Mention | None:
        if not isinstance(hit, dict):
            raise TypeError(f"expected an object, got {type(hit).__name__}")
        native_id = str(hit["objectID"])
        tags = hit.get("_tags") or []
        if "comment" in tags or hit.get("comment_text"):
            text = html_to_text(_string(hit, "comment_text"))
        else:
            title = _string(hit, "title")
            body = html_to_text(hit.get("story_text") or "")
            text = f"{title}\n\n{body}".strip()
        if not text:
            raise ValueError("no text")
        if self.terms.excluded(text):
            return None
        return Mention(
            source=PLATFORM,
            collector=self.name,
            native_id=native_id,
            url=ITEM_URL.format(native_id),
            author_handle=hit.get("author") if isinstance(hit.get("author"), str) else None,
            author_name=None,
            author_followers=None,  # HN has karma, not followers
            engagement=engagement(hit.get("points"), hit.get("num_comments")),
            text=text,
            language=None,
            created_at=to_utc(_timestamp(hit)),
            raw=hit,
        )


def _listed(hit: Any) -> Listed:
    """An item to select; one without a usable time sorts newest so the parser rejects it."""
    key = str(hit.get("objectID", "?")) if isinstance(hit, dict) else "?"
    try:
        return Listed(key, float(_timestamp(hit)), hit)
    except (KeyError, TypeError, ValueError):
        return Listed(key, float("inf"), hit)


def _timestamp(hit: dict[str, Any]) -> int:
    value = hit["created_at_i"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'created_at_i' is not a whole number: {value!r}")
    return value


def _string(hit: dict[str, Any], key: str) -> str:
    value = hit[key]
    if not isinstance(value, str):
        raise TypeError(f"{key!r} is not a string")
    return value
