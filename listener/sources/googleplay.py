"""Google Play reviews, newest first, as the Play Store web page loads them (no account).

The request body, its URL path and the review layout come from google-play-scraper (its
`Formats.Reviews` and `ElementSpecs.Review`), so a Play change is fixed by upgrading it; the HTTP
goes through our own session because the library's `reviews()` hard-codes
https://play.google.com, retries without backoff and turns every HTTP error into "no reviews".
Importing the library also switches off TLS verification for the whole process
(`ssl._create_default_https_context`); `_scraper()` undoes that.
"""

from __future__ import annotations

import json
import logging
import ssl
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, ClassVar, Unpack

from config.schema import GooglePlaySource as GooglePlayConfig
from config.schema import Settings
from listener.models import Mention
from listener.sources.common import ItemError, engagement, require_str
from listener.sources.httpjson import ClientFault, send
from listener.sources.paging import HttpOptions, Page, PagedSource, Target, TargetGone
from listener.sources.retry import TransientError, call_with_retries

log = logging.getLogger(__name__)
DEFAULT_BASE_URL = "https://play.google.com"
PLATFORM = "googleplay"
MAX_PAGE = 200
RPC_ID = "oCPfdb"
GATEWAY_ERROR = "com.google.play.gateway.proto.PlayGatewayError"


def _scraper() -> SimpleNamespace:
    """google-play-scraper's request format and review layout, TLS verification left on."""
    saved = ssl._create_default_https_context
    try:
        from google_play_scraper import Sort
        from google_play_scraper.constants.element import ElementSpecs
        from google_play_scraper.constants.regex import Regex
        from google_play_scraper.constants.request import PLAY_STORE_BASE_URL, Formats
    finally:
        ssl._create_default_https_context = saved
    return SimpleNamespace(
        Sort=Sort,
        Review=ElementSpecs.Review,
        Regex=Regex,
        Formats=Formats,
        base=PLAY_STORE_BASE_URL,
    )


def parse_page(text: str) -> tuple[list[Any], str | None]:
    """The reviews and next-page token of a batchexecute answer; TransientError if unreadable."""
    gp = _scraper()
    if GATEWAY_ERROR in text:
        raise TransientError("Google Play rate-limited the request (PlayGatewayError)")
    found = gp.Regex.REVIEWS.findall(text)
    try:
        envelope = json.loads(found[0])
        payload = next(p for p in envelope if p[:2] == ["wrb.fr", RPC_ID])[2]
        data = json.loads(payload) if payload else []
    except (IndexError, StopIteration, TypeError, ValueError):
        raise TransientError(f"the reviews answer is not readable: {text[:120]!r}") from None
    reviews = data[0] if data and isinstance(data[0], list) else []
    return reviews, _next_token(data)


def _next_token(data: list[Any]) -> str | None:
    """The continuation token: the string ending the `[null, "token"]` part after the reviews."""
    for part in reversed(data[1:]):
        if isinstance(part, list) and part and isinstance(part[-1], str):
            return part[-1]
    return None


def review_to_mention(review: Any, *, app_id: str, locale: str, collector: str) -> Mention:
    spec = _scraper().Review
    if not isinstance(review, list):
        raise ItemError(f"expected a review array, got {type(review).__name__}")
    review_id = require_str(spec["reviewId"].extract_content(review), "reviewId")
    score = spec["score"].extract_content(review)
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise ItemError(f"review {review_id}: score must be 1-5, got {score!r}")
    text = require_str(spec["content"].extract_content(review), "content")
    try:
        seconds = review[5][0]
        created = datetime.fromtimestamp(float(seconds), UTC)
    except (IndexError, TypeError, ValueError, OverflowError):
        raise ItemError(f"review {review_id}: no time at [5][0]") from None
    language, _country = locale.split("-")
    thumbs_up = spec["thumbsUpCount"].extract_content(review)
    return Mention(
        source=PLATFORM,
        collector=collector,
        native_id=review_id,
        url=f"https://play.google.com/store/apps/details?id={app_id}&reviewId={review_id}",
        author_name=spec["userName"].extract_content(review),
        engagement=engagement(thumbs_up),  # "helpful" votes
        text=text,
        language=language,  # Play returns the reviews written in the requested language
        created_at=created,
        rating=score,
        raw={
            "app_id": app_id,
            "locale": locale,
            "version": spec["appVersion"].extract_content(review),
            "thumbs_up": thumbs_up,
            "reply": spec["replyContent"].extract_content(review),
            "review": review,
        },
    )


class GooglePlayReviews(PagedSource):
    type: ClassVar[str] = "googleplay"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL

    def __init__(
        self,
        name: str,
        *,
        app_ids: list[str],
        locales: list[str],
        max_items: int,
        **options: Unpack[HttpOptions],
    ) -> None:
        super().__init__(name, max_items, **options)
        self.app_ids = app_ids
        self.locales = locales

    @classmethod
    def from_config(cls, config: GooglePlayConfig, settings: Settings) -> GooglePlayReviews:
        return cls(
            config.name,
            app_ids=config.app_ids,
            locales=config.locales,
            max_items=config.max_items_per_cycle,
            backfill=config.backfill,
            base_url=config.base_url or DEFAULT_BASE_URL,
        )

    def _page(self, app_id: str, locale: str, token: str | None, budget: int) -> Page:
        gp = _scraper()
        language, country = locale.split("-")
        # The library's URL (path and query) on our base URL.
        url = gp.Formats.Reviews.build(lang=language, country=country.lower())
        url = self.base_url + url.removeprefix(gp.base)
        count = max(1, min(budget, MAX_PAGE))
        body = gp.Formats.Reviews.build_body(
            app_id, gp.Sort.NEWEST.value, count, "null", "null", token
        )
        what = f"app {app_id} ({locale})"

        def call() -> tuple[list[Any], str | None]:
            response = send(
                self.session,
                "POST",
                url,
                what=what,
                data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
                timeout=self.timeout,
            )
            return parse_page(response.text)

        try:
            reviews, next_token = call_with_retries(call, source=self.name, policy=self.retry)
        except ClientFault as fault:
            if fault.status == 404:
                raise TargetGone(f"{what}: no such app on Google Play (404); skipped") from None
            raise
        return Page(reviews, next_token)

    def _target(self, app_id: str, locale: str) -> Target:
        return Target(
            key=f"{app_id}/{locale}",
            label=f"app {app_id} ({locale})",
            fetch=lambda token, budget, _since: self._page(app_id, locale, token, budget),
            parse=lambda review: review_to_mention(
                review, app_id=app_id, locale=locale, collector=self.name
            ),
        )

    def targets(self) -> list[Target]:
        return [self._target(a, loc) for a in self.app_ids for loc in self.locales]
