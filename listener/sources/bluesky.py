"""Bluesky post search (`app.bsky.feed.searchPosts`) through the atproto SDK.

Bluesky turned off unauthenticated search on its public AppView (public.api.bsky.app answers
403, and never paged with `cursor` without a login), so the collector logs in once with a
handle and an app password (Settings → App passwords) at the PDS, default https://bsky.social,
which forwards the search to the AppView. Results are read newest first (`sort=latest`) with
`since` set to the last watermark, page by page with the `cursor` token.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

from config.schema import BlueskySource as BlueskyConfig
from config.schema import Settings
from listener.models import Mention, utcnow
from listener.sources import FetchResult, NotConfigured, Source, SourceError
from listener.sources.common import BrandTerms, ItemError, engagement, parse_time, secret
from listener.sources.httpjson import DEFAULT_TIMEOUT
from listener.sources.paging import Page, Target, read_cursor, walk_targets
from listener.sources.retry import RetryPolicy, TransientError, call_with_retries

log = logging.getLogger(__name__)
DEFAULT_BASE_URL = "https://bsky.social"
PLATFORM = "bluesky"
MAX_PAGE = 100
GET_POSTS_MAX = 25  # app.bsky.feed.getPosts takes at most 25 URIs
SINCE_MARGIN = timedelta(minutes=10)  # `since` filters on sortAt, which can trail indexedAt
T = TypeVar("T")


def post_to_mention(post: Any, collector: str) -> Mention:
    """One post view as a mention; ItemError when the library's model rejects it."""
    from atproto_client import models
    from atproto_client.exceptions import ModelError
    from atproto_client.models.utils import get_or_create

    try:
        view = get_or_create(post, models.AppBskyFeedDefs.PostView)
    except ModelError as error:
        first = str(error).splitlines()[1:2] or [str(error)]
        raise ItemError(f"not a post view ({first[0].strip()})") from None
    record = view.record
    if not isinstance(record, models.AppBskyFeedPost.Record):
        raise ItemError(f"post {view.uri}: the record is not an app.bsky.feed.post")
    handle = view.author.handle
    rkey = view.uri.rsplit("/", 1)[-1]
    return Mention(
        source=PLATFORM,
        collector=collector,
        native_id=view.uri,
        url=f"https://bsky.app/profile/{handle}/post/{rkey}",
        author_handle=handle,
        author_name=view.author.display_name or None,
        engagement=engagement(
            view.like_count, view.repost_count, view.reply_count, view.quote_count
        ),
        text=record.text,
        language=(record.langs[0].split("-")[0].lower() if record.langs else None),
        created_at=parse_time(record.created_at, "record.createdAt"),
        raw=post if isinstance(post, dict) else view.model_dump(by_alias=True),
    )


def _post_engagement(post: Any) -> int | None:
    if not isinstance(post, dict) or not isinstance(post.get("uri"), str):
        return None
    return engagement(*(post.get(f"{kind}Count") for kind in ("like", "repost", "reply", "quote")))


def _indexed(mention: Mention) -> datetime:
    """Newest-first order is the AppView's indexing time; fall back on the post's own time."""
    try:
        return parse_time(mention.raw.get("indexedAt"), "indexedAt")
    except ItemError:
        return mention.created_at


class BlueskySearch(Source):
    type: ClassVar[str] = "bluesky"
    can_recheck: ClassVar[bool] = True

    def __init__(
        self,
        name: str,
        *,
        handle: str,
        password: str,
        queries: list[str],
        max_items: int,
        lang: str | None = None,
        backfill: timedelta = timedelta(days=7),
        base_url: str = DEFAULT_BASE_URL,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(name, max_items)
        self._handle = handle
        self._password = password
        self.queries = queries
        self.lang = lang
        self.backfill = backfill
        self.base_url = base_url
        self.retry = retry
        self.clock = clock
        self.timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the password
        return f"BlueskySearch(name={self.name!r}, handle={self._handle!r})"

    @classmethod
    def from_config(cls, config: BlueskyConfig, settings: Settings) -> BlueskySearch:
        handle = secret(config.credentials, "handle")
        password = secret(config.credentials, "app_password")
        queries = config.queries or BrandTerms.from_settings(settings).all_keywords()
        if not queries:
            raise NotConfigured("no queries and no brand keywords to search for")
        return cls(
            config.name,
            handle=handle,
            password=password,
            queries=queries,
            lang=config.lang,
            max_items=config.max_items_per_cycle,
            backfill=config.backfill,
            base_url=config.base_url or DEFAULT_BASE_URL,
        )

    # -- the client and its faults ---------------------------------------------------------

    def _logged_in(self) -> Any:
        """One login per process (createSession is limited to 30 per 5 minutes per account)."""
        from atproto import Client
        from atproto_client.request import Request

        with self._lock:
            if self._client is None:
                client = Client(self.base_url, request=Request(timeout=self.timeout))
                client.login(self._handle, self._password, fetch_bsky_profile=False)
                self._client = client
            return self._client

    def _call(self, call: Callable[[Any], T], what: str) -> T:
        from atproto_client import exceptions

        def attempt() -> T:
            try:
                return call(self._logged_in())
            except exceptions.RateLimitExceededError as error:
                wait = error.retry_after
                if wait is None and error.reset_at:
                    wait = max((error.reset_at - datetime.now(UTC)).total_seconds(), 0.0)
                raise TransientError(f"{what}: rate limited (HTTP 429)", retry_after=wait) from None
            except exceptions.NetworkError as error:  # transport faults, timeouts, 502
                raise TransientError(f"{what}: network error {error}") from None
            except exceptions.UnauthorizedError as error:
                self._client = None  # an expired session logs in again on the next attempt
                raise SourceError(
                    f"{what}: refused ({error}); check the handle and app password"
                ) from None
            except ValueError as error:  # a truncated or non-JSON body
                raise TransientError(f"{what}: unreadable answer ({error})") from None
            except exceptions.RequestErrorBase as error:
                status = error.response.status_code if error.response else 0
                if status >= 500:
                    raise TransientError(f"{what}: HTTP {status}") from None
                raise SourceError(f"{what}: {error}") from None

        return call_with_retries(attempt, source=self.name, policy=self.retry)

    # -- reading -----------------------------------------------------------------------------

    def _page(self, query: str, token: str | None, budget: int, since: datetime) -> Page:
        from atproto_client import models

        params = models.AppBskyFeedSearchPosts.Params(
            q=query,
            sort="latest",
            limit=max(1, min(budget, MAX_PAGE)),
            cursor=token,
            since=(since - SINCE_MARGIN).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            lang=self.lang,
        )

        def search(client: Any) -> Any:
            return client.invoke_query(
                "app.bsky.feed.searchPosts", params=params, output_encoding="application/json"
            ).content

        content = self._call(search, f"search {query!r}")
        if not isinstance(content, dict) or not isinstance(content.get("posts"), list):
            raise TransientError(f"search {query!r}: the answer has no 'posts' list")
        cursor = content.get("cursor")
        return Page(content["posts"], cursor if isinstance(cursor, str) and cursor else None)

    def _read_reactions(self, uris: list[str]) -> dict[str, int]:
        """Likes, reposts, replies and quotes now, by post URI (`app.bsky.feed.getPosts`,
        25 URIs a request). Deleted posts are simply not in the answer."""
        from atproto_client import models

        counts: dict[str, int] = {}
        for start in range(0, len(uris), GET_POSTS_MAX):
            params = models.AppBskyFeedGetPosts.Params(uris=uris[start : start + GET_POSTS_MAX])

            def get_posts(client: Any, params: Any = params) -> Any:
                return client.invoke_query(
                    "app.bsky.feed.getPosts", params=params, output_encoding="application/json"
                ).content

            content = self._call(get_posts, "getPosts")
            posts = content.get("posts") if isinstance(content, dict) else None
            if not isinstance(posts, list):
                raise TransientError("getPosts: the answer has no 'posts' list")
            for post in posts:
                count = _post_engagement(post)
                if count is not None:
                    counts[post["uri"]] = count
        return counts

    def _target(self, query: str) -> Target:
        return Target(
            key=query,
            label=f"search {query!r}",
            fetch=lambda token, budget, since: self._page(query, token, budget, since),
            parse=lambda post: post_to_mention(post, self.name),
        )

    def fetch(self, cursor: str | None) -> FetchResult:
        floor = self.clock() - self.backfill
        targets = [self._target(q) for q in self.queries]
        state = read_cursor(cursor, self.name)
        return walk_targets(
            state, targets, budget=self.max_items, floor=floor, order=_indexed, source=self.name
        )
