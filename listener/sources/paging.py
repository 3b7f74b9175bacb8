"""Reading a newest-first, paginated list up to what was read before, without loss.

App Store, Google Play, YouTube and Bluesky list items newest first, page by page. Each target
(an app in a country, a video, a query) keeps a watermark: the time of the newest item of the
last finished pass and the ids at exactly that time. A pass reads pages until it meets an item
older than the watermark. When the cycle's budget runs out mid-pass, the cursor keeps the page
token to resume from and the pass's newest time, so the next cycle finishes the pass before
moving the watermark: nothing between the two is skipped, and anything read twice is
deduplicated by the store. The first pass stops at the configured backfill window.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from listener.models import Mention
from listener.sources import FetchResult, SourceError
from listener.sources.httpjson import ItemError


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
    def load(cls, data: Any) -> Mark:
        if not isinstance(data, dict):
            return cls()
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def dump(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v not in (None, [])}


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


def walk_targets(
    cursor: str | None,
    targets: list[Target],
    *,
    budget: int,
    floor: datetime,
    order: Callable[[Mention], datetime] = lambda mention: mention.created_at,
) -> FetchResult:
    """Walk every target with an equal share of the budget; the cursor maps key -> Mark.

    A target that raises `TargetGone` is reported in `rejected` and keeps its cursor; any other
    error fails the whole fetch, so nothing is committed and the cycle is retried later.
    """
    state: dict[str, Any] = json.loads(cursor) if cursor else {}
    share = max(1, -(-budget // max(len(targets), 1)))
    mentions: list[Mention] = []
    rejected: list[str] = []
    for target in targets:
        try:
            walked = walk(
                Mark.load(state.get(target.key)),
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


def _finished(mark: Mark, top: datetime | None, top_ids: list[str]) -> Mark:
    if top is None:
        return Mark(since=mark.since, seen=mark.seen)
    if mark.since and datetime.fromisoformat(mark.since) == top:
        top_ids = sorted(set(top_ids) | set(mark.seen))
    return Mark(since=_iso(top), seen=top_ids)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
