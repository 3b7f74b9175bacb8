"""Mastodon hashtag timelines and status search through Mastodon.py.

Named `mastodon_source` so it does not shadow the `mastodon` library. Hashtag timelines are
public on most instances (no account); full-text status search needs an access token and an
instance that allows it. Each stream keeps the newest status id it stored. A hashtag timeline
answers `min_id` with the page immediately after it, so it is read oldest page first; search
answers with the newest matches, so it is read newest first down to the cursor, and a pass cut
short by the budget resumes where it stopped. Either way a budget cut loses nothing.

Reactions are re-read one status a request (`GET /api/v1/statuses/:id`, in every Mastodon
version; the batch lookup exists only since 4.3), so a recheck asks for at most
`RECHECK_BATCH` statuses. The counts are the instance's: for a post from another server, the
favourites, boosts and replies that have federated to it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any, ClassVar, TypeVar

from config.schema import MastodonSource as MastodonConfig
from config.schema import Settings
from listener.models import Mention, utcnow
from listener.sources import FetchResult, NotConfigured, Source, SourceError
from listener.sources.common import (
    ItemError,
    engagement,
    json_safe,
    optional_secret,
    parse_time,
    require_str,
    to_utc,
)
from listener.sources.httpjson import DEFAULT_TIMEOUT, new_session
from listener.sources.paging import equal_share, read_cursor, unreadable_cursor
from listener.sources.retry import RetryPolicy, TransientError, call_with_retries

log = logging.getLogger(__name__)
DEFAULT_BASE_URL = "https://mastodon.social"
PLATFORM = "mastodon"
PAGE = 40  # Mastodon's largest page for timelines and search
T = TypeVar("T")


class _Text(HTMLParser):
    """Status HTML to plain text: paragraphs and line breaks kept, tags dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts).strip()


def _as_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        return parse_time(value, "created_at")
    raise ItemError("missing 'created_at'")


def status_to_mention(status: Any, collector: str) -> Mention:
    if not isinstance(status, dict):
        raise ItemError(f"expected a status object, got {type(status).__name__}")
    status_id = require_str(str(status.get("id") or ""), "id")
    account = status.get("account")
    if not isinstance(account, dict):
        raise ItemError(f"status {status_id}: missing 'account'")
    content = status.get("content")
    if not isinstance(content, str):
        raise ItemError(f"status {status_id}: missing 'content' (HTML string)")
    text = html_to_text(content)
    warning = status.get("spoiler_text")
    if isinstance(warning, str) and warning.strip():
        text = f"{warning.strip()}\n{text}"
    followers = account.get("followers_count")
    language = status.get("language")
    return Mention(
        source=PLATFORM,
        collector=collector,
        native_id=status_id,
        url=status.get("url") or status.get("uri"),
        author_handle=require_str(account.get("acct"), "account.acct"),
        author_name=account.get("display_name") or None,
        author_followers=followers if isinstance(followers, int) else None,
        engagement=_status_engagement(status),
        text=text,
        language=language.lower() if isinstance(language, str) and language else None,
        created_at=_as_utc(status.get("created_at")),
        raw=json_safe(status),
    )


def _status_engagement(status: dict[str, Any]) -> int | None:
    return engagement(
        status.get("favourites_count"), status.get("reblogs_count"), status.get("replies_count")
    )


def _id_key(status_id: str) -> tuple[int, str]:
    """Mastodon ids are numeric strings that grow with time; compare them as numbers."""
    return (len(status_id), status_id)


class MastodonTimelines(Source):
    type: ClassVar[str] = "mastodon"
    can_recheck: ClassVar[bool] = True
    # One request each; 40 every recheck stays far below Mastodon's 300 requests in 5 minutes.
    RECHECK_BATCH: ClassVar[int] = 40

    def __init__(
        self,
        name: str,
        *,
        api: Any,
        hashtags: list[str],
        queries: list[str],
        max_items: int,
        backfill: timedelta = timedelta(days=7),
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(name, max_items)
        self.api = api
        self.streams = [f"tag:{t}" for t in hashtags] + [f"search:{q}" for q in queries]
        self.backfill = backfill
        self.retry = retry
        self.clock = clock

    @classmethod
    def from_config(cls, config: MastodonConfig, settings: Settings) -> MastodonTimelines:
        token = optional_secret(config.credentials, "access_token")
        if config.queries and not token:
            variable = config.credentials.get("access_token", "an access-token variable")
            raise NotConfigured(
                f"{variable} not set; status search needs a logged-in account"
                " (or keep only `hashtags`, which are public)"
            )
        return cls(
            config.name,
            api=connect(config.base_url or DEFAULT_BASE_URL, token),
            hashtags=config.hashtags,
            queries=config.queries,
            max_items=config.max_items_per_cycle,
            backfill=config.backfill,
        )

    # -- one call, its faults sorted for the retry policy ----------------------------------

    def _call(self, call: Callable[[], T], what: str) -> T:
        from mastodon import errors

        def attempt() -> T:
            try:
                return call()
            except errors.MastodonRatelimitError:
                reset = getattr(self.api, "ratelimit_reset", None)
                wait = max(float(reset) - time.time(), 0.0) if reset else None
                raise TransientError(f"{what}: rate limited (HTTP 429)", retry_after=wait) from None
            except errors.MastodonNetworkError as error:
                raise TransientError(f"{what}: network error: {error}") from None
            except errors.MastodonServerError as error:
                raise TransientError(f"{what}: HTTP {_status(error)}") from None
            except errors.MastodonUnauthorizedError:
                raise SourceError(f"{what}: the access token was refused (HTTP 401)") from None
            except errors.MastodonAPIError as error:
                if "Could not parse response as JSON" in str(error):
                    raise TransientError(f"{what}: the answer is not JSON") from None
                if _status(error) == 403:
                    raise SourceError(
                        f"{what}: HTTP 403: the access token lacks a scope this needs; give it"
                        " the `read` scope (or `read:search` and `read:statuses`)"
                    ) from None
                raise SourceError(f"{what}: HTTP {_status(error)}: {error}") from None

        return call_with_retries(attempt, source=self.name, policy=self.retry)

    def _page(self, stream: str, limit: int, **ids: str | None) -> list[Any]:
        kind, _, value = stream.partition(":")
        if kind == "tag":
            return list(
                self._call(
                    lambda: self.api.timeline_hashtag(value, limit=limit, **ids), f"#{value}"
                )
            )
        found = self._call(
            lambda: self.api.search_v2(
                value,
                result_type="statuses",
                resolve=False,
                exclude_unreviewed=False,
                limit=limit,
                **ids,
            ),
            f"search {value!r}",
        )
        return list(found.get("statuses") or [])

    def _read_reactions(self, native_ids: list[str]) -> dict[str, int]:
        """Favourites, boosts and replies now, by status id; deleted or hidden ones left out."""
        counts: dict[str, int] = {}
        for status_id in native_ids:
            status = self._call(
                lambda status_id=status_id: self._fetch_status(status_id), f"status {status_id}"
            )
            count = _status_engagement(status) if isinstance(status, dict) else None
            if count is not None:
                counts[status_id] = count
        return counts

    def _fetch_status(self, status_id: str) -> Any:
        """The status, or None where the instance no longer shows it (deleted or made private:
        404; gone: 410). Any other error is `_call`'s to sort."""
        from mastodon import errors

        try:
            return self.api.status(status_id)
        except errors.MastodonNotFoundError:
            return None
        except errors.MastodonAPIError as error:
            if _status(error) == 410:
                return None
            raise

    # -- reading -----------------------------------------------------------------------------

    def _newer(self, stream: str, after: str, budget: int) -> tuple[list[Any], str]:
        """Statuses after `after`, oldest page first; the newest id read becomes the cursor."""
        statuses: list[Any] = []
        while len(statuses) < budget:
            limit = min(PAGE, budget - len(statuses))
            page = self._page(stream, limit, min_id=after)
            ids = _ids(page)
            statuses += page
            if not ids or len(page) < limit:
                after = max([after, *ids], key=_id_key)
                break
            after = max(ids, key=_id_key)
        return statuses, after

    def _pass(
        self, stream: str, mark: dict[str, Any], budget: int
    ) -> tuple[list[Any], dict[str, Any] | str | None]:
        """Read newest first down to the cursor (`after`) or, on a first run, to the backfill
        window (`floor`); the stream's new cursor (None: still nothing read).

        Search always answers the newest matches above `min_id`, and a first run has no id to
        page up from, so both read down. A pass cut short by the budget keeps where it stopped
        (`before`) and the newest id it saw (`top`); the next cycle finishes it before moving
        the cursor up to `top`: nothing in between is skipped.
        """
        after, floor = mark.get("after"), mark.get("floor")
        window = to_utc(floor) if floor else None
        statuses, before, top = self._read_down(
            stream,
            budget,
            after=after,
            before=mark.get("before"),
            top=mark.get("top"),
            floor=window,
        )
        if window:
            statuses = [s for s in statuses if not _older(s, window)]
        if before is not None:
            unfinished = {"after": after, "before": before, "top": top, "floor": floor}
            return statuses, {key: value for key, value in unfinished.items() if value}
        newest = top or after
        if newest is None:
            return statuses, None
        return statuses, {"after": newest} if stream.startswith("search:") else newest

    def _read_down(
        self,
        stream: str,
        budget: int,
        *,
        after: str | None,
        before: str | None,
        top: str | None,
        floor: datetime | None,
    ) -> tuple[list[Any], str | None, str | None]:
        """Pages newest first below `before`, down to `after` or `floor`, within the budget:
        the statuses, where the budget stopped it (None: finished) and the newest id seen."""
        statuses: list[Any] = []
        while len(statuses) < budget:
            limit = min(PAGE, budget - len(statuses))
            page = self._page(stream, limit, min_id=after, max_id=before)
            statuses += page
            ids = _ids(page)
            top = max([top, *ids] if top else ids, key=_id_key) if ids else top
            if not ids or len(page) < limit or (floor and _oldest(page) < floor):
                return statuses, None, top
            before = min(ids, key=_id_key)
        return statuses, before, top

    def fetch(self, cursor: str | None) -> FetchResult:
        state = read_cursor(cursor, self.name)
        share = equal_share(self.max_items, len(self.streams))
        floor = (self.clock() - self.backfill).isoformat()
        mentions: list[Mention] = []
        rejected: list[str] = []
        for stream in self.streams:
            entry = state.get(stream)
            if entry is not None and not isinstance(entry, str | dict):
                unreadable_cursor(f"source {self.name}, {stream}", entry, "not an id or a mark")
                entry = None
            if isinstance(entry, str):
                statuses, state[stream] = self._newer(stream, entry, share)
            else:
                mark = entry if isinstance(entry, dict) else {"floor": floor}
                statuses, moved = self._pass(stream, mark, share)
                if moved is not None:
                    state[stream] = moved
            for status in statuses:
                try:
                    mentions.append(status_to_mention(status, self.name))
                except ItemError as error:
                    rejected.append(f"{stream}: {error}")
        return FetchResult(mentions, json.dumps(state, sort_keys=True), rejected)


def _ids(statuses: list[Any]) -> list[str]:
    """The ids of the statuses that have one (a malformed one is reported by the mapping)."""
    return [str(s["id"]) for s in statuses if isinstance(s, dict) and s.get("id")]


def _status(error: Exception) -> Any:
    return error.args[1] if len(error.args) > 1 else "error"


def _created(status: dict[str, Any]) -> datetime:
    try:
        return _as_utc(status.get("created_at"))
    except ItemError:
        return datetime.max.replace(tzinfo=UTC)  # keep it; the mapping reports the problem


def _older(status: Any, floor: datetime) -> bool:
    return isinstance(status, dict) and _created(status) < floor


def _oldest(page: list[Any]) -> datetime:
    return min(
        (_created(s) for s in page if isinstance(s, dict)), default=datetime.max.replace(tzinfo=UTC)
    )


def connect(base_url: str, token: str | None, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """A Mastodon.py client that raises on rate limits instead of sleeping in our thread."""
    from mastodon import Mastodon

    return Mastodon(
        api_base_url=base_url,
        access_token=token,
        ratelimit_method="throw",
        request_timeout=timeout,
        version_check_mode="created",
        # A stated version skips Mastodon.py's version probe, which recurses without end when
        # the instance endpoint fails; every feature used here exists since Mastodon 3.0.
        mastodon_version="4.0.0",
        session=new_session(),
    )
