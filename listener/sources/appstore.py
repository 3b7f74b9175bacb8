"""Apple App Store customer reviews from the public per-country feed (no account, no key).

`{base}/{country}/rss/customerreviews/page={n}/id={app}/sortby=mostrecent/json` serves 50 reviews
a page, newest first, 10 pages at most: the newest 500 reviews per app and country. Reviews have
no permalink of their own; the URL is the app's review page in that country's store.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Unpack

from config.schema import AppStoreSource as AppStoreConfig
from config.schema import Settings
from listener.models import Mention
from listener.sources.common import ItemError, engagement, parse_time, require_str
from listener.sources.httpjson import ClientFault, get_json
from listener.sources.paging import HttpOptions, Page, PagedSource, Target, TargetGone
from listener.sources.retry import call_with_retries

log = logging.getLogger(__name__)
DEFAULT_BASE_URL = "https://itunes.apple.com"
PLATFORM = "appstore"
FEED_PAGE_SIZE = 50


def _label(entry: dict[str, Any], key: str) -> Any:
    value = entry.get(key)
    return value.get("label") if isinstance(value, dict) else None


def review_to_mention(entry: Any, *, app_id: str, country: str, collector: str) -> Mention:
    """One feed entry as a mention, or ItemError naming what is missing."""
    if not isinstance(entry, dict):
        raise ItemError(f"expected a JSON object, got {type(entry).__name__}")
    review_id = require_str(_label(entry, "id"), "id.label")
    try:
        rating = int(_label(entry, "im:rating"))
    except (TypeError, ValueError):
        raise ItemError(f"review {review_id}: 'im:rating' is not a number 1-5") from None
    if not 1 <= rating <= 5:
        raise ItemError(f"review {review_id}: 'im:rating' must be 1-5, got {rating}")
    title = _label(entry, "title") or ""
    content = require_str(_label(entry, "content"), "content.label")
    author = entry.get("author") if isinstance(entry.get("author"), dict) else {}
    name = _label(author, "name")
    text = f"{title.strip()}\n{content.strip()}" if str(title).strip() else content.strip()
    return Mention(
        source=PLATFORM,
        collector=collector,
        native_id=review_id,
        url=f"https://apps.apple.com/{country}/app/id{app_id}?see-all=reviews",
        author_handle=name,
        author_name=name,
        engagement=_votes(_label(entry, "im:voteCount")),  # "helpful?" votes
        text=text,
        language=None,  # the feed says which store, not which language
        created_at=parse_time(_label(entry, "updated"), "updated.label"),
        rating=rating,
        raw={
            "app_id": app_id,
            "country": country,
            "version": _label(entry, "im:version"),
            "entry": entry,
        },
    )


def _votes(label: Any) -> int | None:
    try:
        return engagement(int(label))
    except (TypeError, ValueError):
        return None


def entries_of(payload: Any) -> list[Any]:
    """The review entries of one feed page: a list, a single object, or none at all."""
    if not isinstance(payload, dict) or not isinstance(payload.get("feed"), dict):
        raise ItemError("the page has no 'feed' object")
    entries = payload["feed"].get("entry", [])
    entries = [entries] if isinstance(entries, dict) else entries
    if not isinstance(entries, list):
        raise ItemError("'feed.entry' is neither a list nor an object")
    # Older feeds put the app itself first (it has im:name and no rating): not a review.
    return [e for e in entries if not (isinstance(e, dict) and "im:name" in e)]


class AppStoreReviews(PagedSource):
    type: ClassVar[str] = "appstore"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL

    def __init__(
        self,
        name: str,
        *,
        app_ids: list[str],
        countries: list[str],
        max_items: int,
        max_pages: int = 10,
        **options: Unpack[HttpOptions],
    ) -> None:
        super().__init__(name, max_items, **options)
        self.app_ids = app_ids
        self.countries = countries
        self.max_pages = max_pages

    @classmethod
    def from_config(cls, config: AppStoreConfig, settings: Settings) -> AppStoreReviews:
        return cls(
            config.name,
            app_ids=config.app_ids,
            countries=config.countries,
            max_items=config.max_items_per_cycle,
            max_pages=config.max_pages,
            backfill=config.backfill,
            base_url=config.base_url or DEFAULT_BASE_URL,
        )

    def _page(self, app_id: str, country: str, token: str | None) -> Page:
        number = int(token or 1)
        url = (
            f"{self.base_url}/{country}/rss/customerreviews/page={number}"
            f"/id={app_id}/sortby=mostrecent/json"
        )
        what = f"app {app_id} ({country}) page {number}"
        try:
            payload = call_with_retries(
                lambda: get_json(self.session, url, what=what, timeout=self.timeout),
                source=self.name,
                policy=self.retry,
            )
        except ClientFault as fault:
            if fault.status in (400, 404):  # no such app in this country's store
                raise TargetGone(f"{what}: HTTP {fault.status}; skipped") from None
            raise
        try:
            entries = entries_of(payload)
        except ItemError as error:
            # Apple answers an empty or odd document past the last review: end of the list.
            log.info("source %s: %s: %s; treating as the end", self.name, what, error)
            return Page([], None)
        # A short page is the last one (Apple's feed pads nothing; 50 a page).
        more = len(entries) >= FEED_PAGE_SIZE and number < self.max_pages
        return Page(entries, str(number + 1) if more else None)

    def _target(self, app_id: str, country: str) -> Target:
        return Target(
            key=f"{app_id}/{country}",
            label=f"app {app_id} ({country})",
            fetch=lambda token, _budget, _since: self._page(app_id, country, token),
            parse=lambda entry: review_to_mention(
                entry, app_id=app_id, country=country, collector=self.name
            ),
        )

    def targets(self) -> list[Target]:
        return [self._target(a, c) for a in self.app_ids for c in self.countries]
