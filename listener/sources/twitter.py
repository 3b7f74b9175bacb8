"""X / Twitter: API v2 recent search through tweepy, incremental by tweet id.

Results come newest first. A cycle reads pages (next_token) down to the stored `since_id`; when
the item budget ends it first, or X stops answering after some pages, the cursor keeps the old
floor and remembers the oldest tweet read (`until_id`), so the next cycle fills that gap before
moving on. Nothing is read twice and nothing
is skipped, which matters because X bills every post returned. Recent search only reaches back
seven days: a cursor older than that restarts at the edge of the window (the platform allows no
more).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import requests
import tweepy

from config.schema import Settings
from config.schema import TwitterSource as TwitterConfig
from listener.models import Mention, utcnow
from listener.records import NO_LANGUAGE_TAGS
from listener.sources import FetchResult, NotConfigured, Source, SourceError
from listener.sources.common import BrandTerms, engagement, rejection_reason, secret, to_utc
from listener.sources.httpjson import LONG_TIMEOUT, request_fault
from listener.sources.paging import read_cursor, unreadable_cursor
from listener.sources.retry import RetryPolicy, TransientError, call_with_retries

log = logging.getLogger(__name__)
# tweepy's debug log prints request headers, the bearer token among them: keep it above debug.
logging.getLogger("tweepy.client").setLevel(logging.INFO)
PLATFORM = "twitter"
LIBRARY_HOSTS = ("https://api.twitter.com", "https://api.x.com")
RECENT_WINDOW = timedelta(days=7) - timedelta(minutes=5)  # margin for clock skew
TWITTER_EPOCH_MS = 1288834974657
PAGE_MIN, PAGE_MAX = 10, 100


class _HostSession(requests.Session):
    """tweepy's Client hard-codes its host; this session sends its requests to `base_url`
    instead, and gives every request a timeout (tweepy sets none)."""

    def __init__(self, base_url: str | None, timeout: float) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/").removesuffix("/2") if base_url else None
        self.timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        url = url.decode() if isinstance(url, bytes) else url
        if self.base_url:
            for host in LIBRARY_HOSTS:
                if url.startswith(host + "/"):
                    url = self.base_url + url[len(host) :]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def _quote(term: str) -> str:
    term = term.replace('"', "")
    return f'"{term}"' if any(c.isspace() for c in term) or "-" in term else term


def build_query(terms: BrandTerms) -> str:
    """`((kw OR "kw two" OR @handle) lang:en OR (...) lang:de) -from:handle -"excl" -is:retweet`."""
    mentions = [f"@{handle}" for handle in terms.handles.get(PLATFORM, [])]
    groups = []
    for language, keywords in terms.keywords.items():
        words = " OR ".join(_quote(k) for k in keywords)
        groups.append(f"(({words}) lang:{language})")
    if mentions:
        groups.append(f"({' OR '.join(mentions)})")
    if not groups:
        raise NotConfigured("the brands have no keywords or X handles to search for")
    parts = [f"({' OR '.join(groups)})" if len(groups) > 1 else groups[0]]
    parts += [f"-from:{handle}" for handle in terms.handles.get(PLATFORM, [])]
    parts += [f"-{_quote(term)}" for term in terms.exclude]
    parts.append("-is:retweet")
    return " ".join(parts)


def tweet_time(tweet_id: int) -> datetime:
    """The creation time encoded in a snowflake id."""
    return to_utc(((tweet_id >> 22) + TWITTER_EPOCH_MS) / 1000)


@dataclass
class TweetCursor:
    since_id: int | None = None
    start_time: str | None = None  # first run: the backfill floor
    until_id: int | None = None  # set while a budget-cut gap is being filled
    newest_id: int | None = None  # the newest id read before the gap, the next floor

    @classmethod
    def load(cls, cursor: str | None, source: str) -> TweetCursor:
        data = read_cursor(cursor, source)
        try:
            start = data.get("start_time")
            return cls(
                since_id=_as_int(data.get("since_id")),
                start_time=to_utc(start).isoformat() if start else None,
                until_id=_as_int(data.get("until_id")),
                newest_id=_as_int(data.get("newest_id")),
            )
        except (TypeError, ValueError) as error:
            unreadable_cursor(f"source {source}", cursor, error)
            return cls()

    def dump(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, sort_keys=True)


def _as_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


class TwitterSource(Source):
    type: ClassVar[str] = "twitter"
    can_recheck: ClassVar[bool] = True

    def __init__(
        self,
        name: str,
        client: tweepy.Client,
        query: str,
        *,
        max_items: int,
        backfill: timedelta,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(name, max_items)
        self.client = client
        self.query = query
        self.backfill = min(backfill, RECENT_WINDOW)
        self.policy = policy or RetryPolicy()
        self.clock = clock

    @classmethod
    def from_config(
        cls, config: TwitterConfig, settings: Settings, *, policy: RetryPolicy | None = None
    ) -> TwitterSource:
        token = secret(config.credentials, "bearer_token")
        query = config.query or build_query(BrandTerms.from_settings(settings))
        if len(query) > config.max_query_length:
            raise NotConfigured(
                f"the built X query has {len(query)} characters, over max_query_length"
                f" {config.max_query_length}; set `query` to a shorter one or fewer keywords"
            )
        client = tweepy.Client(bearer_token=token, return_type=dict, wait_on_rate_limit=False)
        client.session = _HostSession(config.base_url, LONG_TIMEOUT)
        return cls(
            config.name,
            client,
            query,
            max_items=config.max_items_per_cycle,
            backfill=config.backfill,
            policy=policy,
        )

    def fetch(self, cursor: str | None) -> FetchResult:
        return self._read(TweetCursor.load(cursor, self.name))

    def _window(self, state: TweetCursor) -> dict[str, Any]:
        now = self.clock()
        edge = now - RECENT_WINDOW
        params: dict[str, Any] = {}
        if state.since_id is not None and tweet_time(state.since_id) > edge:
            params["since_id"] = state.since_id
        else:
            if state.since_id is not None:
                log.warning(
                    "source %s: the cursor is older than X's 7-day search window; posts between"
                    " it and %s cannot be read",
                    self.name,
                    edge.isoformat(timespec="seconds"),
                )
            start = to_utc(state.start_time) if state.start_time else now - self.backfill
            params["start_time"] = max(start, edge)
        if state.until_id is not None:
            params["until_id"] = state.until_id
        return params

    def _read(self, state: TweetCursor) -> FetchResult:
        window = self._window(state)
        mentions: list[Mention] = []
        rejected: list[str] = []
        newest: int | None = None
        oldest: int | None = None
        next_token: str | None = None
        cut = False
        while True:
            room = self.max_items - len(mentions) - len(rejected)
            try:
                page = self._page(window, next_token, room)
            except TransientError as error:
                if newest is None:
                    raise  # nothing read yet: the cycle records the failure
                self._stopped_early(len(mentions) + len(rejected), error)
                cut = True  # keep what was read (and billed); the gap is read next cycle
                break
            users = _users(page)
            for tweet in page.get("data") or []:
                if len(mentions) + len(rejected) >= self.max_items:
                    cut = True
                    break
                tweet_id = _tweet_id(tweet)
                if tweet_id is not None:
                    newest = max(newest or tweet_id, tweet_id)
                    oldest = min(oldest or tweet_id, tweet_id)
                try:
                    mentions.append(self._mention(tweet, users))
                except (KeyError, TypeError, ValueError) as error:
                    rejected.append(f"tweet {_describe(tweet)}: {rejection_reason(error)}")
            next_token = (page.get("meta") or {}).get("next_token")
            if cut or not next_token:
                break
            if len(mentions) + len(rejected) >= self.max_items:
                cut = True
                break
        return FetchResult(mentions, self._advance(state, window, newest, oldest, cut), rejected)

    def _stopped_early(self, read: int, error: TransientError) -> None:
        log.warning(
            "source %s: X stopped answering after %d posts of this cycle (%s); they are kept,"
            " and the next cycle reads on from the oldest of them",
            self.name,
            read,
            error,
        )

    def _page(self, window: dict[str, Any], next_token: str | None, room: int) -> dict[str, Any]:
        """One page of results, retried on its own: X bills every post of the pages already
        read, so a retry must not read them again."""
        return call_with_retries(
            lambda: self._search(window, next_token, room), source=self.name, policy=self.policy
        )

    def _search(self, window: dict[str, Any], next_token: str | None, room: int) -> dict[str, Any]:
        with self._x_errors("recent search"):
            page = self.client.search_recent_tweets(
                self.query,
                max_results=max(PAGE_MIN, min(PAGE_MAX, room)),
                next_token=next_token,
                expansions=["author_id"],
                tweet_fields=["created_at", "lang", "author_id", "public_metrics"],
                user_fields=["username", "name", "public_metrics"],
                **window,
            )
        return self._checked(page)

    def _read_reactions(self, native_ids: list[str]) -> dict[str, int]:
        """Likes, reposts, replies and quotes now, by tweet id: one posts lookup (GET /2/tweets,
        up to 100 ids). X bills each post returned, as it does for search."""
        return call_with_retries(
            lambda: self._lookup(native_ids), source=self.name, policy=self.policy
        )

    def _lookup(self, native_ids: list[str]) -> dict[str, int]:
        with self._x_errors("post lookup"):
            page = self.client.get_tweets(native_ids, tweet_fields=["public_metrics"])
        page = self._checked(page, log_problems=False)
        if page.get("errors"):  # deleted or protected since: expected, so not a warning
            log.info(
                "source %s: %d of %d posts could not be read again (deleted or protected)",
                self.name,
                len(page["errors"]),
                len(native_ids),
            )
        counts = {}
        for tweet in page.get("data") or []:
            tweet_id = _tweet_id(tweet)
            count = _engagement(tweet.get("public_metrics")) if tweet_id is not None else None
            if count is not None:
                counts[str(tweet_id)] = count
        return counts

    @contextmanager
    def _x_errors(self, endpoint: str) -> Iterator[None]:
        """tweepy's and requests' exceptions as retryable (`TransientError`) or not."""
        try:
            yield
        except tweepy.TooManyRequests as error:
            wait = None
            if error.reset_time is not None:
                wait = max(error.reset_time - self.clock().timestamp(), 0.0)
            raise TransientError("X: 429 rate limit", retry_after=wait) from None
        except tweepy.TwitterServerError as error:
            raise TransientError(f"X: HTTP {error.response.status_code}") from None
        except (tweepy.Unauthorized, tweepy.Forbidden) as error:
            raise SourceError(
                f"X refused the bearer token (HTTP {error.response.status_code}): check the"
                f" token and that the app's access level includes {endpoint}"
            ) from None
        except tweepy.HTTPException as error:
            raise SourceError(f"X: HTTP {error.response.status_code}: {error}") from None
        except requests.RequestException as error:
            raise request_fault(error, "X", LONG_TIMEOUT) from None
        except ValueError:  # a 200 whose body is not JSON (an HTML error page, a cut body)
            raise TransientError("X: the answer is not JSON") from None

    def _checked(self, page: Any, *, log_problems: bool = True) -> dict[str, Any]:
        """The answer as an object, with the problems X reports beside the data logged."""
        if not isinstance(page, dict):
            raise TransientError("X: the answer is not a JSON object")
        if log_problems:
            for problem in page.get("errors") or []:
                log.warning("source %s: X reported: %s", self.name, str(problem)[:300])
        return page

    def _advance(
        self,
        state: TweetCursor,
        window: dict[str, Any],
        newest: int | None,
        oldest: int | None,
        cut: bool,
    ) -> str:
        start = window.get("start_time")
        start_iso = start.isoformat() if start is not None else None
        floor_id = window.get("since_id")
        known = [i for i in (state.newest_id, newest, floor_id) if i is not None]
        top = max(known) if known else None
        if cut and oldest is not None:
            start_iso = start_iso if floor_id is None else None
            return TweetCursor(floor_id, start_iso, oldest, top).dump()
        if top is None:
            return TweetCursor(start_time=start_iso).dump()
        return TweetCursor(since_id=top).dump()

    def _mention(self, tweet: dict[str, Any], users: dict[str, dict[str, Any]]) -> Mention:
        if not isinstance(tweet, dict):
            raise TypeError(f"expected an object, got {type(tweet).__name__}")
        native_id = str(int(tweet["id"]))
        text = tweet["text"]
        if not isinstance(text, str):
            raise TypeError("'text' is not a string")
        user = users.get(str(tweet.get("author_id")), {})
        handle = user.get("username")
        followers = (user.get("public_metrics") or {}).get("followers_count")
        lang = tweet.get("lang")
        url = f"https://x.com/{handle or 'i/web'}/status/{native_id}"
        return Mention(
            source=PLATFORM,
            collector=self.name,
            native_id=native_id,
            url=url,
            author_handle=handle,
            author_name=user.get("name"),
            author_followers=followers if isinstance(followers, int) else None,
            engagement=_engagement(tweet.get("public_metrics")),
            text=text,
            language=None if not lang or lang in NO_LANGUAGE_TAGS else str(lang).lower(),
            created_at=to_utc(tweet["created_at"]),
            raw={"tweet": tweet, "author": user or None},
        )


def _engagement(metrics: Any) -> int | None:
    if not isinstance(metrics, dict):
        return None
    return engagement(
        *(metrics.get(f"{kind}_count") for kind in ("like", "retweet", "reply", "quote"))
    )


def _users(page: dict[str, Any]) -> dict[str, dict[str, Any]]:
    users = (page.get("includes") or {}).get("users") or []
    return {str(u["id"]): u for u in users if isinstance(u, dict) and "id" in u}


def _tweet_id(tweet: Any) -> int | None:
    try:
        return int(tweet["id"])
    except (KeyError, TypeError, ValueError):
        return None


def _describe(tweet: Any) -> str:
    return str(tweet.get("id", "?")) if isinstance(tweet, dict) else "?"
