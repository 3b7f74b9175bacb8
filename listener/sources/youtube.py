"""YouTube comment threads per video and per channel (Data API v3 `commentThreads.list`).

Plain HTTP with an API key (google-api-python-client would add a large discovery layer for one
call). Threads are read newest first (`order=time`), 100 a page with `pageToken`; each page
costs 1 quota unit of the default 10,000 a day. Only top-level comments are collected; replies
are counted in the raw payload (`totalReplyCount`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, ClassVar, Unpack
from zoneinfo import ZoneInfo

from config.schema import Settings
from config.schema import YouTubeSource as YouTubeConfig
from listener.models import Mention
from listener.sources import SourceError
from listener.sources.common import ItemError, engagement, parse_time, require_str, secret
from listener.sources.httpjson import ClientFault, get_json
from listener.sources.paging import HttpOptions, Page, PagedSource, Target, TargetGone
from listener.sources.retry import TransientError, call_with_retries

log = logging.getLogger(__name__)
DEFAULT_BASE_URL = "https://www.googleapis.com"
PLATFORM = "youtube"
MAX_PAGE = 100
QUOTA_ZONE = ZoneInfo("America/Los_Angeles")  # the daily quota resets at midnight Pacific
RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
GONE_REASONS = {"commentsDisabled", "videoNotFound", "channelNotFound", "forbidden"}


def thread_to_mention(thread: Any, collector: str) -> Mention:
    if not isinstance(thread, dict):
        raise ItemError(f"expected a commentThread object, got {type(thread).__name__}")
    snippet = thread.get("snippet")
    top = snippet.get("topLevelComment") if isinstance(snippet, dict) else None
    comment = top.get("snippet") if isinstance(top, dict) else None
    if not isinstance(comment, dict):
        raise ItemError(f"thread {thread.get('id')!r}: missing snippet.topLevelComment.snippet")
    comment_id = require_str(top.get("id"), "topLevelComment.id")
    text = comment.get("textOriginal") or comment.get("textDisplay")
    video = comment.get("videoId") or snippet.get("videoId")
    display = comment.get("authorDisplayName")
    url = (
        f"https://www.youtube.com/watch?v={video}&lc={comment_id}"
        if video
        else f"https://www.youtube.com/channel/{snippet.get('channelId')}"
    )
    return Mention(
        source=PLATFORM,
        collector=collector,
        native_id=comment_id,
        url=url,
        author_handle=display.lstrip("@") if isinstance(display, str) and display else None,
        author_name=display if isinstance(display, str) else None,
        engagement=engagement(comment.get("likeCount"), snippet.get("totalReplyCount")),
        text=require_str(text, "textOriginal"),
        language=None,  # YouTube does not tag comments with a language
        created_at=parse_time(comment.get("publishedAt"), "publishedAt"),
        raw=thread,
    )


def _reason(fault: ClientFault) -> str:
    body = fault.body if isinstance(fault.body, dict) else {}
    errors = body.get("error", {}).get("errors") if isinstance(body.get("error"), dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("reason", ""))
    return ""


def seconds_to_quota_reset(now: datetime) -> float:
    local = now.astimezone(QUOTA_ZONE)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - local).total_seconds()


class YouTubeComments(PagedSource):
    type: ClassVar[str] = "youtube"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL

    def __init__(
        self,
        name: str,
        *,
        api_key: str,
        video_ids: list[str],
        channel_ids: list[str],
        max_items: int,
        **options: Unpack[HttpOptions],
    ) -> None:
        super().__init__(name, max_items, **options)
        self._api_key = api_key
        self.video_ids = video_ids
        self.channel_ids = channel_ids

    def __repr__(self) -> str:  # never show the key
        return f"YouTubeComments(name={self.name!r})"

    @classmethod
    def from_config(cls, config: YouTubeConfig, settings: Settings) -> YouTubeComments:
        return cls(
            config.name,
            api_key=secret(config.credentials, "api_key"),
            video_ids=config.video_ids,
            channel_ids=config.channel_ids,
            max_items=config.max_items_per_cycle,
            backfill=config.backfill,
            base_url=config.base_url or DEFAULT_BASE_URL,
        )

    def _page(self, selector: dict[str, str], what: str, token: str | None, budget: int) -> Page:
        params = {
            "part": "snippet",
            "order": "time",
            "textFormat": "plainText",
            "maxResults": str(max(1, min(budget, MAX_PAGE))),
            **selector,
        }
        if token:
            params["pageToken"] = token

        def attempt() -> Any:
            try:
                return get_json(
                    self.session,
                    f"{self.base_url}/youtube/v3/commentThreads",
                    what=what,
                    params=params,
                    headers={"X-Goog-Api-Key": self._api_key},  # kept out of URLs and logs
                    timeout=self.timeout,
                )
            except ClientFault as fault:
                reason = _reason(fault)
                if reason == "quotaExceeded":
                    wait = seconds_to_quota_reset(self.clock())
                    raise TransientError(f"{what}: daily quota used up", retry_after=wait) from None
                if reason in RATE_REASONS:
                    raise TransientError(f"{what}: rate limited ({reason})") from None
                if reason in GONE_REASONS or fault.status == 404:
                    raise TargetGone(f"{what}: {reason or fault.status}; skipped") from None
                raise SourceError(
                    f"{what}: refused ({reason or fault.status}); check the key"
                    " and that the YouTube Data API is enabled for it"
                ) from None

        payload = call_with_retries(attempt, source=self.name, policy=self.retry)
        if not isinstance(payload, dict) or not isinstance(payload.get("items", []), list):
            raise TransientError(f"{what}: the answer has no 'items' list")
        token = payload.get("nextPageToken")
        return Page(payload.get("items", []), token if isinstance(token, str) and token else None)

    def _target(self, selector: dict[str, str]) -> Target:
        key, value = next(iter(selector.items()))
        kind = "video" if key == "videoId" else "channel"
        label = f"{kind} {value}"
        return Target(
            key=f"{kind}:{value}",
            label=label,
            fetch=lambda token, budget, _since: self._page(selector, label, token, budget),
            parse=lambda thread: thread_to_mention(thread, self.name),
        )

    def targets(self) -> list[Target]:
        selectors = [{"videoId": v} for v in self.video_ids] + [
            {"allThreadsRelatedToChannelId": c} for c in self.channel_ids
        ]
        return [self._target(selector) for selector in selectors]
