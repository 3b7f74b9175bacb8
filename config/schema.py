"""The settings schema: every key of the YAML file, its type, default and an example.

Loading reports every problem at once (file, key path, what is wrong, an example of a right
value), so a team lead fixes a config in one round instead of one error per start.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from config.secrets import secret_warnings
from listener.enums import Formality, Intent, Sentiment, Urgency
from listener.models import PLATFORM_CHARS
from listener.nlp.keywords import KEYWORD_GROUPS
from listener.nlp.precision import PRECISIONS
from listener.textfiles import TextFileError, read_text

log = logging.getLogger("listener.config")
EXAMPLE_CONFIG = Path(__file__).with_name("example.yaml")
DEFAULT_SQLITE_NAME = "listener.db"

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
# Stored with each mention, in a column of PLATFORM_CHARS characters.
Platform = Annotated[
    str, StringConstraints(max_length=PLATFORM_CHARS, pattern=r"^[a-z0-9][a-z0-9_-]*$")
]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
# Slack names hold at most 80 characters (with the "#", 81); ids are shorter.
SlackChannel = Annotated[str, StringConstraints(min_length=1, max_length=81)]
_ENV_VAR = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _env_var_name(value: str) -> str:
    if not _ENV_VAR.match(value):
        raise ValueError(
            "must be the NAME of an environment variable (capitals, digits and _, like"
            " X_BEARER_TOKEN) that holds the secret, never the secret itself"
        )
    return value


EnvVarName = Annotated[str, AfterValidator(_env_var_name)]
WebUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s<>|]+$")]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_duration(value: Any) -> timedelta:
    """Accept `300`, `"30s"`, `"5m"`, `"2h"`, `"1d"` (or a timedelta)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{value!r} is not a duration")
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


def parse_time_range(value: str) -> tuple[time, time]:
    """`"22:00-07:00"` → (22:00, 07:00); the range may cross midnight but not be empty."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in value.split("-"))
    except ValueError:
        raise ValueError(f"{value!r} is not a range like HH:MM-HH:MM") from None
    if start == end:
        raise ValueError(f"{value!r} is an empty range")
    return start, end


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
# Every duration field reads `300`, `"30s"`, `"5m"`, `"2h"` or `"1d"`.
Duration = Annotated[
    timedelta, BeforeValidator(parse_duration), Field(examples=['"5m"', '"1h"', "300"])
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Brand(_Model):
    name: str = Field(min_length=1, examples=['"Lumora"'])
    handles: dict[str, list[str]] = Field(
        default_factory=dict,
        description="The brand's own accounts per platform; their posts are never answered.",
        examples=["{twitter: [LumoraShop], reddit: [LumoraOfficial]}"],
    )
    keywords: dict[LanguageCode, list[str]] = Field(
        default_factory=dict, examples=["{en: [lumora, lumora glow], de: [lumora lampe]}"]
    )
    exclude: list[str] = Field(default_factory=list, examples=["[lumora borealis, aurora]"])
    help_articles: dict[Intent, dict[str, WebUrl]] = Field(
        default_factory=dict,
        description="Help-centre articles that drafts link, per intent and locale (`de`, `pt-BR`);"
        " a draft links only an article in the reply's own locale or language.",
        examples=["{refund_return: {en: https://help.example.com/returns}}"],
    )

    def own_handles(self) -> set[str]:
        return {h.lower().lstrip("@") for handles in self.handles.values() for h in handles}


class _SourceBase(_Model):
    name: Name = Field(examples=['"demo-feed"', '"twitter-main"'])
    enabled: bool = True
    interval: Duration = timedelta(minutes=5)
    max_items_per_cycle: int = Field(default=500, gt=0, examples=["500"])
    credentials: dict[str, EnvVarName] = Field(
        default_factory=dict,
        description="Secret name -> environment variable that holds it; never the secret itself.",
        examples=["{bearer_token: X_BEARER_TOKEN}"],
    )
    base_url: WebUrl | None = Field(
        default=None,
        description="The platform API's base URL, to go through a proxy or a test server;"
        " default: the platform's public endpoint.",
        examples=['"https://api.x.com/2/"'],
    )
    backfill: Duration = Field(
        default=timedelta(days=7),
        description="How far back the first run reads; later runs continue from the cursor.",
    )
    retention_days: int | None = Field(
        default=None,
        gt=0,
        description="Delete this source's mentions after so many days; default:"
        " storage.retention_days.",
        examples=["90"],
    )


class ReplaySource(_SourceBase):
    """Reads mentions from JSONL/JSON files: the demo feed, exports, tests."""

    type: Literal["replay"]
    paths: list[str] = Field(
        min_length=1,
        description="Files to read; relative paths are relative to the config file;"
        " `package:demo_feed.jsonl` names the bundled demo feed.",
        examples=['["package:demo_feed.jsonl"]', '["exports/mentions.jsonl"]'],
    )


class TwitterSource(_SourceBase):
    """X / Twitter API v2 recent search (the last 7 days; reads are paid per post)."""

    type: Literal["twitter"]
    credentials: dict[str, EnvVarName] = Field(
        default_factory=lambda: {"bearer_token": "X_BEARER_TOKEN"},
        examples=["{bearer_token: X_BEARER_TOKEN}"],
    )
    query: str | None = Field(
        default=None,
        description="An X search query used as is; default: built from the brands' handles,"
        " keywords per language (with lang: filters), exclusions and -is:retweet.",
        examples=['"(lumora OR @LumoraShop) lang:en -is:retweet"'],
    )
    max_query_length: int = Field(
        default=512,
        gt=0,
        description="X's limit for the account's access level (512 basic, 1024 pro).",
        examples=["512"],
    )


class RedditSource(_SourceBase):
    """Reddit search (submissions) and new comments in the configured subreddits."""

    type: Literal["reddit"]
    credentials: dict[str, EnvVarName] = Field(
        default_factory=lambda: {
            "client_id": "REDDIT_CLIENT_ID",
            "client_secret": "REDDIT_CLIENT_SECRET",
            "user_agent": "REDDIT_USER_AGENT",
        },
        examples=["{client_id: REDDIT_CLIENT_ID, client_secret: REDDIT_CLIENT_SECRET}"],
    )
    subreddits: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{2,21}$")]] = Field(
        default_factory=list,
        description="Where to search; empty: all of Reddit (submissions only).",
        examples=["[gadgets, BuyItForLife]"],
    )
    query: str | None = Field(
        default=None,
        description="A Reddit search query used as is; default: the brands' keywords OR-ed.",
        examples=['lumora OR "lumora glow"'],
    )
    comments: bool = Field(
        default=True,
        description="Also read new comments in the configured subreddits, kept when they name"
        " a brand keyword (Reddit's API cannot search comments).",
    )
    auth_url: WebUrl | None = Field(
        default=None,
        description="Where OAuth tokens come from; default https://www.reddit.com (tests:"
        " the same test server as base_url).",
        examples=['"https://www.reddit.com"'],
    )


class RssSource(_SourceBase):
    """RSS/Atom feeds: Google Alerts, Trustpilot, review and news sites."""

    type: Literal["rss"]
    feeds: list[Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]] = Field(
        min_length=1,
        examples=['["https://www.google.com/alerts/feeds/0123/4567"]'],
    )
    platform: Platform = Field(
        default="rss",
        description="The platform label stored with each mention, e.g. trustpilot.",
        examples=['"trustpilot"', '"google-alerts"'],
    )
    keywords_only: bool = Field(
        default=False,
        description="Keep only entries that name a brand keyword (for general news feeds).",
    )


class HackerNewsSource(_SourceBase):
    """Hacker News stories and comments through the free Algolia search API."""

    type: Literal["hackernews"]
    queries: list[str] = Field(
        default_factory=list,
        description="Search terms, one request each; default: the brands' keywords.",
        examples=['["lumora", "lumora glow"]'],
    )
    tags: list[Literal["story", "comment"]] = Field(
        default_factory=lambda: ["story", "comment"], min_length=1, examples=["[story, comment]"]
    )


# -- review and social sources (part B)

AppStoreAppId = Annotated[str, StringConstraints(pattern=r"^[0-9]{5,12}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
PlayAppId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")]
PlayLocale = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}-[A-Z]{2}$")]
YouTubeVideoId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{11}$")]
YouTubeChannelId = Annotated[str, StringConstraints(pattern=r"^UC[A-Za-z0-9_-]{22}$")]
Hashtag = Annotated[str, StringConstraints(pattern=r"^[^#\s/][^\s/]*$")]


class AppStoreSource(_SourceBase):
    """Apple App Store reviews from the public per-country feed: no account, 500 per country."""

    type: Literal["appstore"]
    app_ids: list[AppStoreAppId] = Field(
        min_length=1,
        description="Numeric App Store ids (the idNNN in the app's URL).",
        examples=["[1234567890]"],
    )
    countries: list[CountryCode] = Field(
        default_factory=lambda: ["us"], min_length=1, examples=["[us, de, jp]"]
    )
    max_pages: int = Field(
        default=10,
        ge=1,
        le=10,
        description="Apple serves at most 10 pages of 50 reviews.",
        examples=["10"],
    )


class GooglePlaySource(_SourceBase):
    """Google Play reviews, newest first, read like the Play Store web page does (no account)."""

    type: Literal["googleplay"]
    app_ids: list[PlayAppId] = Field(min_length=1, examples=['["com.lumora.app"]'])
    locales: list[PlayLocale] = Field(
        default_factory=lambda: ["en-US"],
        min_length=1,
        description="language-COUNTRY pairs; Play returns the reviews written in that language.",
        examples=['["en-US", "de-DE"]'],
    )


class MastodonSource(_SourceBase):
    """Mastodon hashtag timelines (public, no account) and status search (needs a token)."""

    type: Literal["mastodon"]
    credentials: dict[str, EnvVarName] = Field(
        default_factory=lambda: {"access_token": "MASTODON_ACCESS_TOKEN"},
        description="Optional for hashtags; needed for `queries`.",
        examples=["{access_token: MASTODON_ACCESS_TOKEN}"],
    )
    hashtags: list[Hashtag] = Field(
        default_factory=list, description="Without the #.", examples=["[lumora]"]
    )
    queries: list[str] = Field(
        default_factory=list,
        description="Full-text status search; needs credentials.access_token and an instance"
        " that allows it.",
        examples=['["lumora"]'],
    )

    @model_validator(mode="after")
    def _something_to_read(self) -> MastodonSource:
        if not self.hashtags and not self.queries:
            raise ValueError("give hashtags, queries or both")
        return self


class BlueskySource(_SourceBase):
    """Bluesky post search (app.bsky.feed.searchPosts); needs a handle and an app password."""

    type: Literal["bluesky"]
    credentials: dict[str, EnvVarName] = Field(
        default_factory=lambda: {
            "handle": "BLUESKY_HANDLE",
            "app_password": "BLUESKY_APP_PASSWORD",
        },
        examples=["{handle: BLUESKY_HANDLE, app_password: BLUESKY_APP_PASSWORD}"],
    )
    queries: list[str] = Field(
        default_factory=list,
        description="Search queries, one each; default: the brands' keywords.",
        examples=['["lumora", "#lumora"]'],
    )
    lang: LanguageCode | None = Field(default=None, examples=['"de"'])


class YouTubeSource(_SourceBase):
    """YouTube comment threads per video and per channel (Data API v3, 1 quota unit a page)."""

    type: Literal["youtube"]
    credentials: dict[str, EnvVarName] = Field(
        default_factory=lambda: {"api_key": "YOUTUBE_API_KEY"},
        examples=["{api_key: YOUTUBE_API_KEY}"],
    )
    video_ids: list[YouTubeVideoId] = Field(default_factory=list, examples=['["dQw4w9WgXcQ"]'])
    channel_ids: list[YouTubeChannelId] = Field(
        default_factory=list,
        description="Every comment thread on the channel's videos.",
        examples=['["UC_x5XG1OV2P6uZZ5FSM9Ttw"]'],
    )

    @model_validator(mode="after")
    def _something_to_read(self) -> YouTubeSource:
        if not self.video_ids and not self.channel_ids:
            raise ValueError("give video_ids, channel_ids or both")
        return self


SOURCE_MODELS = (
    ReplaySource,
    TwitterSource,
    RedditSource,
    RssSource,
    HackerNewsSource,
    AppStoreSource,
    GooglePlaySource,
    MastodonSource,
    BlueskySource,
    YouTubeSource,
)
SourceConfig = Annotated[Union[*SOURCE_MODELS], Field(discriminator="type")]


class Market(_Model):
    code: str = Field(pattern=r"^[a-z]{2}-[A-Z]{2}$", examples=['"de-DE"', '"pt-BR"'])
    language: LanguageCode = Field(examples=['"de"'])
    formality: Formality = Field(default=Formality.FORMAL, examples=['"formal"', '"informal"'])
    timezone: TimeZoneName = Field(default="UTC", examples=['"Europe/Berlin"'])
    business_hours: str = Field(default="09:00-18:00", examples=['"09:00-18:00"'])
    business_days: list[str] = Field(
        default_factory=lambda: list(WEEKDAYS[:5]), examples=["[mon, tue, wed, thu, fri]"]
    )
    country: str = Field(pattern=r"^[A-Z]{2}$", examples=['"DE"'])
    quiet_hours: str | None = Field(
        default=None,
        description="Local time range in which non-critical alerts for this market wait;"
        " may cross midnight.",
        examples=['"22:00-07:00"'],
    )

    @field_validator("business_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        try:
            start, end = (time.fromisoformat(part.strip()) for part in value.split("-"))
        except ValueError:
            raise ValueError(f"{value!r} is not a range like HH:MM-HH:MM") from None
        if start >= end:
            raise ValueError(f"{value!r} ends before it starts")
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str | None) -> str | None:
        if value is not None:
            parse_time_range(value)
        return value

    @field_validator("business_days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        unknown = [day for day in value if day not in WEEKDAYS]
        if unknown:
            raise ValueError(f"unknown day(s) {unknown}; use {', '.join(WEEKDAYS)}")
        return value


class AlertRoute(_Model):
    """Send matching classified mentions to a channel. Empty filters match everything."""

    channel: SlackChannel = Field(examples=['"#social-alerts"'])
    min_urgency: str = Field(default="high", examples=['"high"', '"critical"'])
    sentiments: list[Sentiment] = Field(default_factory=list, examples=["[negative]"])
    sources: list[str] = Field(default_factory=list, examples=["[twitter-main]"])
    languages: list[LanguageCode] = Field(default_factory=list, examples=["[de, fr]"])
    brands: list[str] = Field(default_factory=list, examples=['["Lumora"]'])
    notify: str | None = Field(
        default=None,
        description="Slack mention added for matching alerts, e.g. an on-call user group.",
        examples=['"<!subteam^S0123ABC>"'],
    )

    @field_validator("min_urgency")
    @classmethod
    def _urgency(cls, value: str) -> str:
        return Urgency.parse(value).label

    @property
    def urgency_floor(self) -> Urgency:
        return Urgency.parse(self.min_urgency)


SlackUserId = Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,}$")]


class ReviewConfig(_Model):
    """Draft review in Slack: who may act, and whether approval posts the reply."""

    post_drafts: bool = Field(
        default=True, description="Post each pending draft to the review channel (needs a token)."
    )
    reviewers: list[SlackUserId] = Field(
        default_factory=list,
        description="Slack user ids allowed to approve, edit, reject or assign; empty: anyone"
        " in the channel.",
        examples=['["U0123ABCD", "U0456EFGH"]'],
    )
    post_replies: bool = Field(
        default=False,
        description="On Approve, send the reply through the source's API where it can reply."
        " Off by default: approval only records the decision.",
    )


class SpikeConfig(_Model):
    """A burst of negative mentions per brand and language becomes one crisis alert."""

    enabled: bool = True
    window: Duration = timedelta(hours=1)
    baseline: Duration = Field(
        default=timedelta(hours=24), description="The recent past the window is compared with."
    )
    min_mentions: int = Field(default=10, gt=1, examples=["10"])
    ratio: float = Field(
        default=3.0, gt=1, description="Window count over the baseline's rate per window."
    )
    channel: SlackChannel = Field(default="#social-alerts", examples=['"#social-alerts"'])
    notify: str | None = Field(default=None, examples=['"<!subteam^S0123ABC>"'])
    examples: int = Field(default=3, gt=0, le=10, examples=["3"])


class SlackConfig(_Model):
    token_env: EnvVarName = Field(default="SLACK_BOT_TOKEN", examples=['"SLACK_BOT_TOKEN"'])
    base_url_env: EnvVarName = Field(default="SLACK_BASE_URL", examples=['"SLACK_BASE_URL"'])
    signing_secret_env: EnvVarName = Field(
        default="SLACK_SIGNING_SECRET", examples=['"SLACK_SIGNING_SECRET"']
    )
    app_token_env: EnvVarName = Field(default="SLACK_APP_TOKEN", examples=['"SLACK_APP_TOKEN"'])
    review_channel: SlackChannel = Field(default="#social-review", examples=['"#social-review"'])
    routes: list[AlertRoute] = Field(
        default_factory=lambda: [AlertRoute(channel="#social-alerts")],
        examples=['[{channel: "#social-alerts", min_urgency: high}]'],
    )
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    spike: SpikeConfig = Field(default_factory=SpikeConfig)
    reraise_after: Duration | None = Field(
        default=timedelta(minutes=30),
        description="Post an unacknowledged critical alert again after this long; null: never.",
    )


class SmtpConfig(_Model):
    host: str = Field(default="localhost", examples=['"smtp.example.com"'])
    port: int = Field(default=587, gt=0, lt=65536, examples=["587"])
    security: Literal["starttls", "ssl", "none"] = "starttls"
    sender: str = Field(default="listener@localhost", examples=['"listener@example.com"'])
    username_env: EnvVarName | None = Field(default=None, examples=['"SMTP_USERNAME"'])
    password_env: EnvVarName | None = Field(default=None, examples=['"SMTP_PASSWORD"'])


class DigestConfig(_Model):
    enabled: bool = False
    recipients: list[Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(
        default_factory=list, examples=['["cs-lead@example.com"]']
    )
    cron: str = Field(default="0 8 * * mon", examples=['"0 8 * * mon" (Mondays 08:00)'])
    timezone: TimeZoneName = Field(default="UTC", examples=['"Europe/Berlin"'])
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as error:
            raise ValueError(f"{value!r} is not a crontab expression: {error}") from None
        weekdays = value.rsplit(maxsplit=1)[-1]
        if any(ch.isdigit() for ch in weekdays):
            # crontab counts 0 (or 7) as Sunday, APScheduler 0 as Monday: a digit is ambiguous.
            raise ValueError(
                f"{value!r}: write the weekdays as names (mon, tue, … sun, e.g. mon-fri), not"
                f" {weekdays!r}: crontab counts 0 as Sunday, the scheduler 0 as Monday"
            )
        return value


class StorageConfig(_Model):
    url: str | None = Field(
        default=None,
        description="Any SQLAlchemy URL; DATABASE_URL overrides it. Default: a SQLite file in"
        " the user's data directory.",
        examples=['"sqlite:///var/lib/listener/listener.db"', '"postgresql+psycopg://..."'],
    )
    retention_days: int = Field(default=365, gt=0, examples=["365"])


SHIPPED_MODELS = ("e5-heads", "baseline")
KeywordGroup = Literal[KEYWORD_GROUPS]  # the intents with keywords, and churn
Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def _label_keys(value: Any) -> Any:
    """YAML reads `{0: negative}` with an int key; the model's label indices are meant."""
    return {str(key): v for key, v in value.items()} if isinstance(value, dict) else value


class ViralRecheck(_Model):
    """Re-reading recent complaints' reactions where the platform allows it (X, Reddit, Bluesky,
    Mastodon)."""

    enabled: bool = Field(
        default=True,
        description="Re-read the likes, reposts and replies of recent complaints, so one that"
        " goes viral after it was collected becomes critical and raises an alert. X bills each"
        " post read back, as it does for search.",
    )
    window: Duration = Field(
        default=timedelta(days=1),
        description="How long after it was posted a complaint is watched.",
    )
    every: Duration = Field(
        default=timedelta(minutes=30),
        description="How often each source's watched complaints are re-read: the newest 100 of"
        " them (X and Reddit one request, Bluesky four) or, on Mastodon, the newest 40 (one"
        " request each).",
    )


class ModelConfig(_Model):
    name: str = Field(
        default="e5-heads",
        min_length=1,
        description="e5-heads (the shipped multilingual transformer), baseline (keywords), or any"
        " Hugging Face sequence-classification model for sentiment: a directory written by"
        " save_pretrained, or a hub name (downloaded once; needs hub access).",
        examples=['"e5-heads"', '"baseline"', '"cardiffnlp/twitter-xlm-roberta-base-sentiment"'],
    )
    labels: Annotated[dict[str, Sentiment], BeforeValidator(_label_keys)] = Field(
        default_factory=dict,
        description="For a Hugging Face model: the sentiment each of its labels (names from its"
        " config's id2label, or their indices) means. Labels named negative/neutral/positive"
        " need none; several labels may share a sentiment.",
        examples=["{LABEL_0: negative, LABEL_1: neutral, LABEL_2: positive}"],
    )
    keywords: dict[KeywordGroup, dict[LanguageCode, list[Keyword]]] = Field(
        default_factory=dict,
        description="Your own keywords per intent (or churn) and language, added to the built-in"
        " lexicon (listener/nlp/lexicon.yaml); every model uses them for intent and urgency."
        ' Case-insensitive word prefixes ("rückruf" finds "Rückrufaktion"); a $ at the end makes'
        ' a whole word ("ocu$" finds "OCU", not "ocupado").',
        examples=["{safety: {en: [recall, choking], de: [rückruf]}, churn: {fr: [je résilie]}}"],
    )
    viral_followers: int = Field(
        default=50_000,
        gt=0,
        description="A negative post by an author with this many followers is critical.",
        examples=["50000"],
    )
    viral_reactions: int = Field(
        default=100,
        gt=0,
        description="A negative post that drew this many likes, reposts and replies is critical:"
        " counted when it is collected and, on X, Reddit, Bluesky and Mastodon, again while"
        " `viral_recheck` watches it.",
        examples=["100"],
    )
    viral_recheck: ViralRecheck = Field(default_factory=ViralRecheck)
    threads: int = Field(default=2, gt=0, examples=["2"])
    batch_size: int = Field(default=32, gt=0, examples=["32"])
    precision: Literal[PRECISIONS] = Field(
        default="auto",
        description="How the transformer (e5-heads or a Hugging Face model) computes on CPU:"
        " auto = bf16 where the CPU does bf16 in"
        " hardware (AVX512-BF16 or AMX; fastest, as accurate as fp32), else int8 (fast, a little"
        " less accurate); fp32 = exact and slowest.",
        examples=['"auto"', '"fp32"'],
    )

    @model_validator(mode="after")
    def _labels_need_a_hub_model(self) -> ModelConfig:
        if self.labels and self.name in SHIPPED_MODELS:
            raise ValueError(
                f"labels map a Hugging Face model's labels; {self.name} has its own"
                " (remove model.labels, or name a Hugging Face model)"
            )
        return self


class GenerativeConfig(_Model):
    """An OpenAI-compatible chat endpoint that may rewrite template drafts to sound natural."""

    enabled: bool = False
    base_url: WebUrl = Field(
        default="http://127.0.0.1:8000/v1",
        examples=['"https://api.openai.com/v1"', '"http://localhost:11434/v1" (Ollama)'],
    )
    model: str = Field(default="gpt-4o-mini", examples=['"gpt-4o-mini"', '"llama3.1"'])
    api_key_env: EnvVarName | None = Field(
        default=None,
        description="Environment variable holding the API key; none for a local server.",
        examples=['"OPENAI_API_KEY"'],
    )
    timeout: float = Field(default=20.0, gt=0, examples=["20"])


class RespondersConfig(_Model):
    generative: GenerativeConfig = Field(default_factory=GenerativeConfig)


class CeleryConfig(_Model):
    """`executor: celery`: stages run as Celery tasks on worker machines (see the README)."""

    broker_url_env: EnvVarName = Field(
        default="LISTENER_BROKER_URL",
        description="Environment variable holding the broker URL (it may hold a password).",
        examples=['"LISTENER_BROKER_URL" (e.g. redis://redis.internal:6379/0)'],
    )
    queue: Name = Field(
        default="listener", description="Collect, draft, route and deliver tasks go here."
    )
    classify_queue: Name = Field(
        default="classify", description="Classification batches: give it the GPU machines."
    )
    dispatch_every: Duration = Field(
        default=timedelta(seconds=30),
        description="How often the scheduler enqueues work for every stage with a backlog;"
        " what rebuilds the queues after a broker restart.",
    )
    tasks_per_stage: int = Field(
        default=8,
        gt=0,
        description="At most this many tasks of a stage enqueued per dispatch (≥ worker slots).",
        examples=["8"],
    )


class Settings(_Model):
    version: Literal[1] = 1
    brands: list[Brand] = Field(min_length=1)
    sources: list[SourceConfig] = Field(default_factory=list)
    markets: list[Market] = Field(min_length=1)
    default_market: str = Field(examples=['"en-US"'])
    slack: SlackConfig = Field(default_factory=SlackConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    responders: RespondersConfig = Field(default_factory=RespondersConfig)
    executor: Literal["inprocess", "celery"] = Field(
        default="inprocess",
        description="inprocess: one process does everything (SQLite is fine); celery: the"
        " scheduler enqueues stage tasks for `listener worker` processes (PostgreSQL + Redis).",
        examples=['"inprocess"', '"celery"'],
    )
    celery: CeleryConfig = Field(default_factory=CeleryConfig)

    # Not a YAML key: the file this came from, for resolving relative paths.
    config_path: Path | None = Field(default=None, exclude=True)

    def market(self, code: str | None = None) -> Market:
        wanted = code or self.default_market
        return next(m for m in self.markets if m.code == wanted)

    def market_for_language(self, language: str | None) -> Market:
        """The first market that speaks `language`, else the default market."""
        return next((m for m in self.markets if m.language == language), self.market())

    @property
    def languages(self) -> list[str]:
        """Languages the product expects: markets' and brand keywords', English always."""
        found = {m.language for m in self.markets} | {"en"}
        for brand in self.brands:
            found |= set(brand.keywords)
        return sorted(found)

    def database_url(self) -> str:
        url = os.environ.get("DATABASE_URL") or self.storage.url
        if url:
            return url
        from platformdirs import user_data_path

        return f"sqlite:///{user_data_path('listener') / DEFAULT_SQLITE_NAME}"

    def resolve_path(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        if candidate.is_absolute() or self.config_path is None:
            return candidate
        return self.config_path.parent / candidate


class Problem(BaseModel):
    file: str
    path: str
    message: str
    example: str | None = None

    def __str__(self) -> str:
        hint = f" (for example: {self.example})" if self.example else ""
        return f"{self.file}: {self.path or '<top>'}: {self.message}{hint}"


class ConfigError(Exception):
    """The config cannot be used; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        lines = [f"{count} problem{'s' if count != 1 else ''} in the configuration:"]
        lines += [f"  - {problem}" for problem in problems]
        super().__init__("\n".join(lines))


def _examples_by_field() -> dict[tuple[type[BaseModel], str], str]:
    """Each field's first example, by model and field: a source's `name` is not a brand's."""
    examples: dict[tuple[type[BaseModel], str], str] = {}
    for model in (
        Brand,
        *SOURCE_MODELS,
        Market,
        AlertRoute,
        ReviewConfig,
        SpikeConfig,
        SlackConfig,
        SmtpConfig,
        DigestConfig,
        StorageConfig,
        ModelConfig,
        Settings,
    ):
        for name, info in model.model_fields.items():
            if info.examples:
                examples[(model, name)] = str(info.examples[0])
    return examples


_EXAMPLES = _examples_by_field()
_SOURCE_TYPES = {get_args(model.model_fields["type"].annotation)[0] for model in SOURCE_MODELS}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models a field's annotation holds (through lists, dicts, optionals and unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _example_at(loc: tuple[Any, ...]) -> str | None:
    """The example of the field a validation error's location ends at, found in its own model."""
    owner: type[BaseModel] | None = None
    candidates: list[type[BaseModel]] = [Settings]
    field = ""
    for part in loc:
        if not isinstance(part, str):
            continue
        tagged = [m for m in candidates if _type_tag(m) == part]
        if len(candidates) > 1 and tagged:  # the source type pydantic put in the location
            candidates = tagged
            continue
        if not candidates:
            break  # a key of a plain mapping (a language, a platform): the mapping's example
        owner = next((m for m in candidates if part in m.model_fields), None)
        if owner is None:
            return None  # a key the model does not have
        field = part
        candidates = _models_in(owner.model_fields[part].annotation)
    return _EXAMPLES.get((owner, field)) if owner else None


def _type_tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    args = get_args(field.annotation) if field else ()
    return args[0] if args else None


def _format_location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for index, item in enumerate(loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif index > 0 and isinstance(loc[index - 1], int) and item in _SOURCE_TYPES:
            continue  # pydantic's discriminator tag, not a key the user wrote
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _problems_from_validation(error: ValidationError, file: str) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        # pydantic marks a bad dict key with a "[key]" step; the key itself names the place.
        loc = tuple(part for part in item["loc"] if part != "[key]")
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (misspelt, or not valid here)"
        example = _example_at(loc)
        if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            tag = item.get("ctx", {}).get("tag", "")
            message = f"unknown source type {tag!r}; known: {sorted(_SOURCE_TYPES)}"
            if item["type"] == "union_tag_not_found":
                message = f"missing 'type'; known: {sorted(_SOURCE_TYPES)}"
            example = '"replay"'
        problems.append(
            Problem(
                file=file,
                path=_format_location(loc),
                message=message,
                example=example,
            )
        )
    return problems


def _cross_checks(settings: Settings, file: str) -> list[Problem]:
    problems: list[Problem] = []
    codes = [m.code for m in settings.markets]
    if settings.default_market not in codes:
        problems.append(
            Problem(
                file=file,
                path="default_market",
                message=f"{settings.default_market!r} is not one of the markets {codes}",
                example=f'"{codes[0]}"',
            )
        )
    names = [s.name for s in settings.sources]
    for index, name in enumerate(names):
        if name in names[:index]:
            problems.append(
                Problem(
                    file=file,
                    path=f"sources[{index}].name",
                    message=f"duplicate source name {name!r}; each source needs its own name",
                    example=f'"{name}-2"',
                )
            )
    for index, route in enumerate(settings.slack.routes):
        for unknown in sorted(set(route.sources) - set(names)):
            problems.append(
                Problem(
                    file=file,
                    path=f"slack.routes[{index}].sources",
                    message=f"{unknown!r} is not a configured source name",
                    example=f"[{names[0]}]" if names else None,
                )
            )
    problems += _unused_quiet_hours(settings, file)
    if settings.digest.enabled and not settings.digest.recipients:
        problems.append(
            Problem(
                file=file,
                path="digest.recipients",
                message="the digest is enabled but has no recipients",
                example=_EXAMPLES[(DigestConfig, "recipients")],
            )
        )
    return problems


def _unused_quiet_hours(settings: Settings, file: str) -> list[Problem]:
    """quiet_hours on a market that alerts never use (`Settings.market_for_language`); the
    default market is used for languages no market speaks, so its quiet hours always apply.

    A mention carries its language, not its country, so its alert takes the first market of that
    language: quiet hours on a later one (en-GB after en-US) would be silently ignored.
    """
    first: dict[str, str] = {}
    for market in settings.markets:
        first.setdefault(market.language, market.code)
    return [
        Problem(
            file=file,
            path=f"markets[{index}].quiet_hours",
            message=f"{market.code}'s quiet hours would never apply: alerts for language"
            f" {market.language!r} use the first market of that language, {first[market.language]}"
            f" (a mention has a language, not a country); move quiet_hours to"
            f" {first[market.language]}, or list {market.code} before it in markets (drafts in"
            f" {market.language!r} then use {market.code}'s locale and formality too)",
        )
        for index, market in enumerate(settings.markets)
        if market.quiet_hours
        and first[market.language] != market.code
        and market.code != settings.default_market  # it takes languages no market speaks
    ]


def parse_settings(data: Any, file: str = "<config>", path: Path | None = None) -> Settings:
    if not isinstance(data, dict):
        raise ConfigError(
            [Problem(file=file, path="", message="the file must hold a mapping of keys")]
        )
    try:
        settings = Settings.model_validate({**data, "config_path": path})
    except ValidationError as error:
        raise ConfigError(_problems_from_validation(error, file)) from None
    problems = _cross_checks(settings, file)
    if problems:
        raise ConfigError(problems)
    return settings


def load_settings(path: Path | str | None = None) -> Settings:
    """Load and validate a YAML config; the bundled example when `path` is None."""
    config_path = Path(path) if path else EXAMPLE_CONFIG
    file = str(config_path)
    try:
        text = read_text(config_path)
    except OSError as error:
        raise ConfigError(
            [Problem(file=file, path="", message=f"cannot read the file: {error.strerror}")]
        ) from None
    except TextFileError as error:
        raise ConfigError(
            [Problem(file=file, path=f"line {error.line}", message=error.problem)]
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        message = f"not valid YAML: {getattr(error, 'problem', error)}"
        raise ConfigError([Problem(file=file, path=where, message=message)]) from None
    for warning in secret_warnings(data, file):
        log.warning("%s", warning)
    return parse_settings(data, file=file, path=config_path.resolve())
