"""Collectors: one small class per platform behind one interface.

A source builds itself from its config entry (`from_config`), may switch itself off by raising
`NotConfigured` with the reason (e.g. a missing token), and answers `fetch(cursor)` with the new
mentions and the cursor to store once they are committed. Sources of posts that can spread
(X, Reddit, Bluesky, Mastodon) also answer `reactions(native_ids)`, so a complaint that goes
viral after it was collected is still caught (`listener.recheck`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from config.schema import Settings
from listener.models import Mention

log = logging.getLogger(__name__)


class NotConfigured(Exception):
    """Raised by `from_config` when a source cannot run here; the message says why."""


class SourceError(Exception):
    """A fetch failed as a whole; the cycle records it and tries again later."""


@dataclass
class FetchResult:
    mentions: list[Mention]
    cursor: str | None
    # Items the platform returned that could not be turned into mentions, with the reason.
    rejected: list[str] = field(default_factory=list)


class Source(ABC):
    type: ClassVar[str]
    # Whether `reply` can post an approved draft on the platform (tweepy reply, praw reply).
    can_reply: ClassVar[bool] = False

    def __init__(self, name: str, max_items: int) -> None:
        self.name = name
        self.max_items = max_items

    def reply(self, mention: Mention, text: str) -> str:
        """Post `text` in answer to `mention` on the platform; return the reply's id.

        Only sources declaring `can_reply = True` implement it; the review workflow calls it on
        Approve when `slack.review.post_replies` is on.
        """
        raise NotImplementedError(f"{self.type} sources cannot post replies")

    # Whether `reactions` can re-read a collected post's likes, reposts and replies.
    can_recheck: ClassVar[bool] = False
    # The most posts one `reactions` call may ask for (one request on the platforms that have it).
    RECHECK_BATCH: ClassVar[int] = 100

    def reactions(self, native_ids: Sequence[str]) -> dict[str, int]:
        """The current engagement of these posts (the first `RECHECK_BATCH`), by native id.

        Posts the platform no longer shows (deleted, made private) or shows without counts are
        left out; no ids, no request.
        """
        ids = list(native_ids)[: self.RECHECK_BATCH]
        return self._read_reactions(ids) if ids else {}

    def _read_reactions(self, native_ids: list[str]) -> dict[str, int]:
        """`reactions` on the platform; sources declaring `can_recheck = True` implement it."""
        raise NotImplementedError(f"{self.type} sources cannot re-read reactions")

    @classmethod
    @abstractmethod
    def from_config(cls, config: Any, settings: Settings) -> Source: ...

    @abstractmethod
    def fetch(self, cursor: str | None) -> FetchResult: ...


def _registry() -> dict[str, type[Source]]:
    from listener.sources.appstore import AppStoreReviews
    from listener.sources.bluesky import BlueskySearch
    from listener.sources.googleplay import GooglePlayReviews
    from listener.sources.hackernews import HackerNewsSource
    from listener.sources.mastodon_source import MastodonTimelines
    from listener.sources.reddit import RedditSource
    from listener.sources.replay import ReplaySource
    from listener.sources.rss import RssSource
    from listener.sources.twitter import TwitterSource
    from listener.sources.youtube import YouTubeComments

    classes: list[type[Source]] = [
        ReplaySource,
        TwitterSource,
        RedditSource,
        RssSource,
        HackerNewsSource,
        AppStoreReviews,
        GooglePlayReviews,
        MastodonTimelines,
        BlueskySearch,
        YouTubeComments,
    ]
    registry: dict[str, type[Source]] = {}
    for cls in classes:
        if cls.type in registry:
            raise RuntimeError(f"two source classes claim the type {cls.type!r}")
        registry[cls.type] = cls
    return registry


@dataclass
class SourceSet:
    enabled: list[Source]
    disabled: dict[str, str]  # name -> why


def build_sources(settings: Settings) -> SourceSet:
    """Every configured source, enabled or disabled with the reason, logged once at start."""
    registry = _registry()
    enabled: list[Source] = []
    disabled: dict[str, str] = {}
    for config in settings.sources:
        if not config.enabled:
            disabled[config.name] = "enabled: false in the config"
            continue
        try:
            enabled.append(registry[config.type].from_config(config, settings))
        except NotConfigured as reason:
            disabled[config.name] = str(reason)
    for source in enabled:
        log.info("source %s (%s): enabled", source.name, source.type)
    for name, reason in disabled.items():
        log.info("source %s: disabled, %s", name, reason)
    return SourceSet(enabled=enabled, disabled=disabled)
