"""Reddit through praw: search for submissions (sort=new), and new comments in the configured
subreddits filtered by brand keyword (Reddit's API cannot search comments).

Both listings are newest first with no "older than" parameter, so each is read back to its
watermark and the oldest new items within the budget are kept (see `paging.select_new`).
Reddit's listings end after about 1,000 items; more new items than that between two cycles
cannot be read back (a platform limit; the log warns when a listing ends before the last item
read).

Items are read from praw objects' own fields (`vars`), never through praw's lazy attributes,
which would each cost a request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import praw
import prawcore

from config.schema import RedditSource as RedditConfig
from config.schema import Settings
from listener.models import Mention, utcnow
from listener.sources import FetchResult, NotConfigured, Source, SourceError
from listener.sources.common import (
    BrandTerms,
    engagement,
    json_safe,
    optional_secret,
    secret,
    to_utc,
)
from listener.sources.httpjson import LONG_TIMEOUT, USER_AGENT
from listener.sources.paging import Listed, Watermark, read_cursor, select_new
from listener.sources.retry import (
    RetryPolicy,
    TransientError,
    call_with_retries,
    parse_retry_after,
)

log = logging.getLogger(__name__)
PLATFORM = "reddit"
SITE = "https://www.reddit.com"
DEFAULT_OAUTH_URL = "https://oauth.reddit.com"


class _NoRetry(prawcore.sessions.FiniteRetryStrategy):
    """prawcore retries 5xx itself with fixed sleeps; ours (`call_with_retries`) is the one
    layer that retries, honouring Retry-After and logging under the source's name."""

    def _sleep_seconds(self) -> float | None:
        return None

    def should_retry_on_failure(self) -> bool:
        return False


def _quote(term: str) -> str:
    term = term.replace('"', "")
    return f'"{term}"' if any(c.isspace() for c in term) else term


@dataclass(frozen=True)
class _Listing:
    kind: str  # "submissions" or "comments"
    open: Callable[[], Iterator[Any]]


class RedditSource(Source):
    type: ClassVar[str] = "reddit"
    can_recheck: ClassVar[bool] = True

    def __init__(
        self,
        name: str,
        reddit: praw.Reddit,
        query: str,
        terms: BrandTerms,
        *,
        subreddits: list[str],
        comments: bool,
        max_items: int,
        backfill_seconds: float,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(name, max_items)
        self.reddit = reddit
        self.query = query
        self.terms = terms
        self.where = "+".join(subreddits) if subreddits else "all"
        self.comments = comments and bool(subreddits)
        self.backfill_seconds = backfill_seconds
        self.policy = policy or RetryPolicy()
        self.clock = clock
        for core in (reddit._read_only_core, reddit._authorized_core):
            if core is not None and hasattr(core, "_retry_strategy_class"):
                core._retry_strategy_class = _NoRetry

    @classmethod
    def from_config(
        cls, config: RedditConfig, settings: Settings, *, policy: RetryPolicy | None = None
    ) -> RedditSource:
        client_id = secret(config.credentials, "client_id")
        client_secret = secret(config.credentials, "client_secret")
        agent = optional_secret(config.credentials, "user_agent") or USER_AGENT
        terms = BrandTerms.from_settings(settings)
        query = config.query or " OR ".join(_quote(k) for k in terms.all_keywords())
        if not query:
            raise NotConfigured("the brands have no keywords to search Reddit for")
        reddit = praw.Reddit(
            client_id=client_id,
            client_secret=client_secret,
            user_agent=agent,
            oauth_url=(config.base_url or DEFAULT_OAUTH_URL).rstrip("/"),
            reddit_url=(config.auth_url or SITE).rstrip("/"),
            check_for_updates=False,
            check_for_async=False,
            timeout=LONG_TIMEOUT,
        )
        reddit.read_only = True
        return cls(
            config.name,
            reddit,
            query,
            terms,
            subreddits=config.subreddits,
            comments=config.comments,
            max_items=config.max_items_per_cycle,
            backfill_seconds=config.backfill.total_seconds(),
            policy=policy,
        )

    def _listings(self) -> list[_Listing]:
        subreddit = self.reddit.subreddit(self.where)
        listings = [
            _Listing("submissions", lambda: subreddit.search(self.query, sort="new", limit=None))
        ]
        if self.comments:
            listings.append(_Listing("comments", lambda: subreddit.comments(limit=None)))
        return listings

    def fetch(self, cursor: str | None) -> FetchResult:
        state = read_cursor(cursor, self.name)
        mentions: list[Mention] = []
        rejected: list[str] = []
        new_state: dict[str, Any] = {}
        for listing in self._listings():
            mark = Watermark.from_json(
                state.get(listing.kind), f"source {self.name}, {listing.kind}"
            )
            budget = self.max_items - len(mentions) - len(rejected)
            if budget <= 0:
                new_state[listing.kind] = mark.to_json()
                continue
            selection = call_with_retries(
                lambda listing=listing, mark=mark, budget=budget: self._select(
                    listing, mark, budget
                ),
                source=self.name,
                policy=self.policy,
            )
            for item in selection.items:
                try:
                    mention = self._mention(item.payload, listing.kind)
                except (KeyError, TypeError, ValueError) as error:
                    rejected.append(f"{listing.kind[:-1]} {item.key}: {error}")
                    continue
                if mention is not None:
                    mentions.append(mention)
            if selection.more_waiting:
                log.info(
                    "source %s: %d more new %s wait for the next cycle (max_items_per_cycle)",
                    self.name,
                    selection.more_waiting,
                    listing.kind,
                )
            if selection.ended_short:
                log.warning(
                    "source %s: Reddit's listing of new %s ended after %d before reaching the"
                    " last one read; any between them cannot be read (Reddit caps its"
                    " listings): collect more often",
                    self.name,
                    listing.kind,
                    selection.listed,
                )
            new_state[listing.kind] = selection.mark.to_json()
        return FetchResult(mentions, json.dumps(new_state, sort_keys=True), rejected)

    def _select(self, listing: _Listing, mark: Watermark, budget: int) -> Any:
        floor = self.clock().timestamp() - self.backfill_seconds
        with self._reddit_errors():
            return select_new(self._walk(listing), mark, floor, budget)

    def _read_reactions(self, native_ids: list[str]) -> dict[str, int]:
        """Score and comment count now, by fullname: one `/api/info` request (up to 100)."""
        return call_with_retries(
            lambda: self._lookup(native_ids), source=self.name, policy=self.policy
        )

    def _lookup(self, native_ids: list[str]) -> dict[str, int]:
        with self._reddit_errors():
            things = list(self.reddit.info(fullnames=native_ids))
        counts = {}
        for thing in things:
            fields = vars(thing)
            count = engagement(fields.get("score"), fields.get("num_comments"))
            if isinstance(fields.get("name"), str) and count is not None and not _gone(fields):
                counts[fields["name"]] = count
        return counts

    @contextmanager
    def _reddit_errors(self) -> Iterator[None]:
        """prawcore's exceptions as retryable (`TransientError`) or not."""
        try:
            yield
        except prawcore.TooManyRequests as error:
            raise TransientError(
                "Reddit: 429 rate limit", _seconds(error.response.headers)
            ) from None
        except prawcore.ServerError as error:
            raise TransientError(f"Reddit: HTTP {error.response.status_code}") from None
        except prawcore.BadJSON:
            raise TransientError("Reddit: the answer is not JSON") from None
        except prawcore.RequestException as error:
            raise TransientError(f"Reddit: {type(error.original_exception).__name__}") from None
        except prawcore.Redirect:
            raise SourceError(f"Reddit: r/{self.where} does not exist") from None
        except prawcore.OAuthException as error:
            raise SourceError(_refused(str(error))) from None
        except prawcore.ResponseException as error:
            status = error.response.status_code
            if status in (401, 403):
                raise SourceError(_refused(f"HTTP {status}")) from None
            raise SourceError(f"Reddit: HTTP {status}") from None
        except prawcore.PrawcoreException as error:
            raise SourceError(f"Reddit: {type(error).__name__}: {error}") from None

    def _walk(self, listing: _Listing) -> Iterator[Listed]:
        """Listed items newest first; an item without a usable id or time is passed on with
        created=+inf so it is kept and rejected by the parser, never stopping the walk."""
        for thing in listing.open():
            fields = vars(thing)
            key = str(fields.get("name") or fields.get("id") or "?")
            created = fields.get("created_utc")
            if isinstance(created, int | float) and not isinstance(created, bool):
                yield Listed(key, float(created), thing)
            else:
                yield Listed(key, float("inf"), thing)

    def _mention(self, thing: Any, kind: str) -> Mention | None:
        fields = {k: v for k, v in vars(thing).items() if not k.startswith("_")}
        name = fields["name"]
        if not isinstance(name, str) or not name:
            raise ValueError("'name' is not a fullname")
        if kind == "submissions":
            title = fields["title"]
            if not isinstance(title, str):
                raise TypeError("'title' is not a string")
            body = fields.get("selftext") or ""
            text = f"{title}\n\n{body}".strip() if isinstance(body, str) else title
        else:
            text = fields["body"]
            if not isinstance(text, str):
                raise TypeError("'body' is not a string")
            if not self.terms.names_a_keyword(text):
                return None
        if self.terms.excluded(text):
            return None
        created = fields["created_utc"]
        if not isinstance(created, int | float) or isinstance(created, bool):
            raise TypeError(f"'created_utc' is not a number: {created!r}")
        author = fields.get("author")
        permalink = fields.get("permalink")
        return Mention(
            source=PLATFORM,
            collector=self.name,
            native_id=name,
            url=f"{SITE}{permalink}" if isinstance(permalink, str) else None,
            author_handle=str(author) if author is not None else None,
            author_name=None,
            author_followers=None,  # Reddit shows no follower counts for accounts
            engagement=engagement(fields.get("score"), fields.get("num_comments")),
            text=text,
            language=None,
            created_at=to_utc(created),
            raw=json_safe(fields),
        )


def _refused(detail: str) -> str:
    return (
        f"Reddit refused the credentials ({detail}): check the client id and secret"
        " (REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET) and that Reddit approved the app"
    )


GONE_MARKERS = {"[deleted]", "[removed]"}


def _gone(fields: dict[str, Any]) -> bool:
    """A post or comment its author deleted or a moderator removed: /api/info still lists it
    (with its score), as "[deleted]" or "[removed]"; it no longer counts as a complaint."""
    text = fields.get("selftext") or fields.get("body")
    # praw reads a "[deleted]" author as None; a removed one keeps its author.
    author_gone = "author" in fields and fields["author"] in (None, *GONE_MARKERS)
    return bool(fields.get("removed_by_category")) or author_gone or text in GONE_MARKERS


def _seconds(headers: Any) -> float | None:
    value = headers.get("retry-after") or headers.get("x-ratelimit-reset")
    return parse_retry_after(value)
