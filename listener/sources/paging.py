"""Cursors for newest-first listings: read up to what was read before, without loss.

Two schemes, because the platforms offer two kinds of listing and a budget cut must be handled
differently for each:

* `walk` / `walk_targets` (App Store, Google Play, YouTube, Bluesky): paged lists with a page
  token. Each target (an app in a country, a video, a query) keeps a `Mark`: the time of the
  newest item of the last finished pass and the ids at exactly that time. A pass reads pages until
  it meets an item older than the mark. When the cycle's budget runs out mid-pass, the cursor keeps
  the page token to resume from and the pass's newest time, so the next cycle finishes the pass
  before moving the mark: nothing between the two is skipped, and anything read twice is
  deduplicated by the store. The first pass stops at the configured backfill window.
* `select_new` (Reddit, Hacker News): listings with no stable token to resume from later (praw's
  generators, Algolia's page numbers shift as items arrive). The listing is read back to the
  stored `Watermark`; of the new items the *oldest* `budget` are kept and the watermark moves to
  the newest kept one, so a budget cut leaves the rest for the next cycle instead of a gap.

Mastodon (`mastodon_source`) keeps a third, id-based cursor: its API pages forward from a known
status id (`min_id`), so it needs neither a time watermark nor a page token.
"""

from __future__ import annotations

import json
import logging
import math
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypedDict

import requests

from listener.models import Mention, utcnow
from listener.sources import FetchResult, Source, SourceError
from listener.sources.common import ItemError
from listener.sources.httpjson import DEFAULT_TIMEOUT, new_session
from listener.sources.retry import RetryPolicy

log = logging.getLogger(__name__)
MAX_SEEN = 1000  # ids remembered at the watermark; bounded like praw's BoundedSet


class TargetGone(SourceError):
    """This one target cannot be read (app removed, comments off); the others still are."""


@dataclass
class Page:
    items: list[Any]
    next_token: str | None


@dataclass
class Mark:
    """One target's cursor, stored as JSON inside the source's cursor."""

    since: str | None = None  # ISO time of the newest item of the last finished pass
    seen: list[str] = field(default_factory=list)  # ids at exactly `since`
    resume: str | None = None  # page token of an unfinished pass
    top: str | None = None  # newest time met by the unfinished pass
    top_ids: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, data: Any, where: str) -> Mark:
        """The mark stored for `where` (a source and target, for the log); an unreadable one
        (edited by hand) is logged and read as none: the backfill window again."""
        if data is None:
            return cls()
        try:
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return cls(
                since=_stored_time(data.get("since"), "since"),
                seen=_stored_ids(data.get("seen"), "seen"),
                resume=_stored_token(data.get("resume")),
                top=_stored_time(data.get("top"), "top"),
                top_ids=_stored_ids(data.get("top_ids"), "top_ids"),
            )
        except ValueError as error:
            unreadable_cursor(where, data, error)
            return cls()

    def dump(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v not in (None, [])}


def unreadable_cursor(where: str, value: Any, reason: object) -> None:
    log.warning(
        "%s: unreadable cursor %s (%s); reading the backfill window",
        where,
        json.dumps(value)[:200] if not isinstance(value, str) else repr(value[:200]),
        reason,
    )


def _stored_time(value: Any, key: str) -> str | None:
    """An ISO-8601 time with its offset, as `walk` writes it; ValueError naming `key` if not."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(f"{key!r} is not an ISO-8601 time with an offset: {value!r}")
    return value


def _stored_ids(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{key!r} is not a list of ids: {value!r}")
    return [str(item) for item in value]


def _stored_token(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"'resume' is not a page token: {value!r}")
    return value


@dataclass
class Walked:
    mentions: list[Mention]
    mark: Mark
    rejected: list[str]


def walk(
    mark: Mark,
    *,
    fetch: Callable[[str | None, int, datetime], Page],
    parse: Callable[[Any], Mention],
    budget: int,
    floor: datetime,
    label: str,
    order: Callable[[Mention], datetime] = lambda mention: mention.created_at,
    max_pages: int = 100,
) -> Walked:
    """Read pages newest first until the watermark (or `floor` on a first pass) or the budget."""
    since = datetime.fromisoformat(mark.since) if mark.since else floor
    seen = set(mark.seen)
    token = mark.resume
    top = datetime.fromisoformat(mark.top) if mark.resume and mark.top else None
    top_ids = list(mark.top_ids) if mark.resume else []
    mentions: list[Mention] = []
    rejected: list[str] = []
    for _ in range(max_pages):
        page = fetch(token, budget - len(mentions), since)
        reached = False
        for raw in page.items:
            try:
                mention = parse(raw)
            except ItemError as error:
                rejected.append(f"{label}: {error}")
                continue
            at = order(mention)
            if at < since:
                reached = True
                break
            if at == since and mention.native_id in seen:
                continue
            if top is None or at > top:
                top, top_ids = at, [mention.native_id]
            elif at == top:
                top_ids.append(mention.native_id)
            mentions.append(mention)
        if reached or page.next_token is None:
            return Walked(mentions, _finished(mark, top, top_ids), rejected)
        token = page.next_token
        if len(mentions) >= budget:
            break
    resumed = Mark(mark.since, mark.seen, token, _iso(top), top_ids)
    return Walked(mentions, resumed, rejected)


@dataclass
class Target:
    """One list to walk: `key` names its cursor entry, `label` its log lines."""

    key: str
    label: str
    fetch: Callable[[str | None, int, datetime], Page]
    parse: Callable[[Any], Mention]


def equal_share(budget: int, parts: int) -> int:
    """Each of `parts` lists' share of a cycle's item budget: rounded up, at least 1."""
    return max(1, -(-budget // max(parts, 1)))


def walk_targets(
    state: dict[str, Any],
    targets: list[Target],
    *,
    budget: int,
    floor: datetime,
    order: Callable[[Mention], datetime] = lambda mention: mention.created_at,
    source: str,
) -> FetchResult:
    """Walk every target with an equal share of the budget; `state` (the source's cursor, as
    `read_cursor` decodes it) maps key -> Mark; `source` names the source in the log.

    A target that raises `TargetGone` is reported in `rejected` and keeps its cursor; any other
    error fails the whole fetch, so nothing is committed and the cycle is retried later.
    """
    share = equal_share(budget, len(targets))
    mentions: list[Mention] = []
    rejected: list[str] = []
    for target in targets:
        try:
            walked = walk(
                Mark.load(state.get(target.key), f"source {source}, {target.label}"),
                fetch=target.fetch,
                parse=target.parse,
                budget=share,
                floor=floor,
                label=target.label,
                order=order,
            )
        except TargetGone as gone:  # reported, its cursor kept, the other targets read
            rejected.append(str(gone))
            continue
        mentions += walked.mentions
        rejected += walked.rejected
        state[target.key] = walked.mark.dump()
    return FetchResult(
        mentions=mentions, cursor=json.dumps(state, sort_keys=True), rejected=rejected
    )


class HttpOptions(TypedDict, total=False):
    """The keyword arguments every `PagedSource` takes besides its own."""

    backfill: timedelta  # how far back the first pass reads (default 7 days)
    base_url: str  # default: the class's `default_base_url`
    session: requests.Session | None
    retry: RetryPolicy | None
    clock: Callable[[], datetime]
    timeout: float  # seconds per request (default `httpjson.DEFAULT_TIMEOUT`)


class PagedSource(Source):
    """A collector whose targets are paged HTTP lists read with `walk_targets` (App Store,
    Google Play, YouTube): the base URL, session, timeout, retry policy and clock they all keep."""

    default_base_url: ClassVar[str]

    def __init__(
        self,
        name: str,
        max_items: int,
        *,
        backfill: timedelta = timedelta(days=7),
        base_url: str | None = None,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(name, max_items)
        self.backfill = backfill
        self.base_url = (self.default_base_url if base_url is None else base_url).rstrip("/")
        self.session = session or new_session()
        self.retry = retry
        self.clock = clock
        self.timeout = timeout

    @abstractmethod
    def targets(self) -> list[Target]:
        """The lists to walk this cycle, each with its own cursor entry."""

    def fetch(self, cursor: str | None) -> FetchResult:
        floor = self.clock() - self.backfill
        state = read_cursor(cursor, self.name)
        return walk_targets(
            state, self.targets(), budget=self.max_items, floor=floor, source=self.name
        )


def _finished(mark: Mark, top: datetime | None, top_ids: list[str]) -> Mark:
    if top is None:
        return Mark(since=mark.since, seen=mark.seen)
    if mark.since and datetime.fromisoformat(mark.since) == top:
        top_ids = sorted(set(top_ids) | set(mark.seen))
    return Mark(since=_iso(top), seen=top_ids)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# -- newest-first listings read back to a watermark -----------------------------------------


@dataclass
class Watermark:
    """Items created before `after` (epoch seconds) were read; `seen` holds ids at the edge."""

    after: float = 0.0
    seen: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"after": self.after, "seen": self.seen[-MAX_SEEN:]}

    @classmethod
    def from_json(cls, data: Any, where: str) -> Watermark:
        """The watermark stored for `where` (a source and listing, for the log); an unreadable
        one (edited by hand) is logged and read as none: the backfill window again."""
        if data is None:
            return cls()
        try:
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            after = data.get("after") or 0.0
            if not isinstance(after, int | float) or isinstance(after, bool):
                raise ValueError(f"'after' is not epoch seconds: {after!r}")
            if not 0 <= after < math.inf:
                raise ValueError(f"'after' is not a time: {after!r}")
            return cls(after=float(after), seen=_stored_ids(data.get("seen"), "seen"))
        except ValueError as error:
            unreadable_cursor(where, data, error)
            return cls()


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
    listed: int = 0  # items the listing gave
    ended_short: bool = False  # it ended before reaching the watermark: older new ones unlisted


def select_new(listing: Iterator[Listed], mark: Watermark, floor: float, budget: int) -> Selection:
    """Read a newest-first listing back to the watermark (or `floor` on a first run); keep the
    oldest `budget` new items and move the watermark to the newest kept one."""
    stop_at = mark.after if mark.after else floor
    seen = set(mark.seen)
    fresh: dict[str, Listed] = {}
    listed, reached = 0, False
    for item in listing:
        listed += 1
        if item.created < stop_at:
            reached = True
            break
        if item.key not in seen and item.key not in fresh:
            fresh[item.key] = item
    ended_short = bool(mark.after) and not reached
    ordered = sorted(fresh.values(), key=lambda item: item.created)
    kept = ordered[:budget]
    if not kept:
        return Selection([], Watermark(stop_at, mark.seen), 0, listed, ended_short)
    timed = [item.created for item in kept if math.isfinite(item.created)]
    newest = max(timed) if timed else stop_at  # an item without a time moves nothing
    carried = mark.seen if newest == mark.after else []  # still at the same edge second
    edge = carried + [item.key for item in kept]
    mark = Watermark(newest, edge[-MAX_SEEN:])
    return Selection(kept, mark, len(ordered) - len(kept), listed, ended_short)


def read_cursor(cursor: str | None, source: str) -> dict[str, Any]:
    """The stored cursor as a dict; an unreadable one restarts from the backfill window."""
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        unreadable_cursor(f"source {source}", cursor, "not a JSON object")
        return {}
    return data
