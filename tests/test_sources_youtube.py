"""YouTube comments collector against a local server answering commentThreads.list (Data API v3)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from config.schema import YouTubeSource as YouTubeConfig
from config.schema import load_settings
from listener.sources import NotConfigured, SourceError
from listener.sources.retry import TransientError
from listener.sources.youtube import YouTubeComments, seconds_to_quota_reset
from tests.fake_apis import FAST, FakeAPI, Reply, Request, cursor_of, pipeline_alone, stored_ids

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PATH = "/youtube/v3/commentThreads"
VIDEO = "dQw4w9WgXcQ"
OTHER_VIDEO = "aBcDeFgHiJk"
CHANNEL = "UC_x5XG1OV2P6uZZ5FSM9Ttw"
KEY = "yt-key-placeholder"


def thread(number: int, *, minutes_ago: int, video: str = VIDEO, text: str | None = None) -> dict:
    """A youtube#commentThread resource with its top-level youtube#comment."""
    at = (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    comment_id = f"Ugz{number:05d}AaBbCc4AaABAg"
    return {
        "kind": "youtube#commentThread",
        "etag": f"etag-{number}",
        "id": comment_id,
        "snippet": {
            "channelId": CHANNEL,
            "videoId": video,
            "topLevelComment": {
                "kind": "youtube#comment",
                "etag": f"etag-c-{number}",
                "id": comment_id,
                "snippet": {
                    "channelId": CHANNEL,
                    "videoId": video,
                    "textDisplay": text or f"Comment {number}: my Lumora lamp flickers",
                    "textOriginal": text or f"Comment {number}: my Lumora lamp flickers",
                    "authorDisplayName": f"@viewer{number}",
                    "authorProfileImageUrl": "https://yt3.ggpht.example/a.jpg",
                    "authorChannelUrl": f"http://www.youtube.com/@viewer{number}",
                    "authorChannelId": {"value": f"UCviewer{number:017d}"},
                    "canRate": True,
                    "viewerRating": "none",
                    "likeCount": 3,
                    "publishedAt": at,
                    "updatedAt": at,
                },
            },
            "canReply": True,
            "totalReplyCount": 1,
            "isPublic": True,
        },
    }


def api_error(status: int, reason: str, message: str) -> Reply:
    return Reply(
        status,
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [
                    {"message": message, "domain": "youtube.commentThread", "reason": reason}
                ],
            }
        },
    )


class DataAPI:
    """commentThreads.list over `threads` (newest first) with nextPageToken paging."""

    def __init__(self, api: FakeAPI) -> None:
        self.threads: list[dict] = []
        self.disabled: set[str] = set()
        api.route("GET", PATH, self.answer)

    def answer(self, request: Request) -> Reply:
        q = request.query
        assert "key" not in q  # the key travels in a header, never in a logged URL
        if request.headers.get("x-goog-api-key") != KEY:
            return api_error(400, "keyInvalid", "API key not valid. Please pass a valid API key.")
        assert q["part"] == "snippet"
        assert q["order"] == "time"
        if "videoId" in q:
            if q["videoId"] in self.disabled:
                return api_error(403, "commentsDisabled", "The video has disabled comments.")
            items = [t for t in self.threads if t["snippet"]["videoId"] == q["videoId"]]
        else:
            assert q["allThreadsRelatedToChannelId"] == CHANNEL
            items = list(self.threads)
        items.sort(key=lambda t: t["id"], reverse=True)  # ids follow time in these tests
        start = int(q.get("pageToken", "0").removeprefix("page-") or 0)
        size = int(q["maxResults"])
        body: dict = {
            "kind": "youtube#commentThreadListResponse",
            "etag": "list-etag",
            "pageInfo": {"totalResults": len(items[start : start + size]), "resultsPerPage": size},
            "items": items[start : start + size],
        }
        if start + size < len(items):
            body["nextPageToken"] = f"page-{start + size}"
        return Reply(200, body)


@pytest.fixture
def youtube(api):
    return api, DataAPI(api)


def make_source(api: FakeAPI, *, videos=(VIDEO,), channels=(), max_items=500, key=KEY):
    return YouTubeComments(
        "youtube-main",
        api_key=key,
        video_ids=list(videos),
        channel_ids=list(channels),
        max_items=max_items,
        base_url=api.url,
        retry=FAST,
        clock=lambda: NOW,
    )


def test_first_run_maps_comment_threads(youtube):
    api, data = youtube
    data.threads = [thread(1, minutes_ago=60 * 24 * 8), thread(2, minutes_ago=3)]
    result = make_source(api).fetch(None)

    assert [m.native_id for m in result.mentions] == ["Ugz00002AaBbCc4AaABAg"]
    mention = result.mentions[0]
    assert mention.source == "youtube"
    assert mention.collector == "youtube-main"
    assert mention.author_handle == "viewer2"
    assert mention.author_name == "@viewer2"
    assert mention.url == f"https://www.youtube.com/watch?v={VIDEO}&lc=Ugz00002AaBbCc4AaABAg"
    assert mention.created_at == NOW - timedelta(minutes=3)
    assert mention.raw["snippet"]["totalReplyCount"] == 1
    assert mention.engagement == 4  # 3 likes, 1 reply
    assert api.calls(PATH)[0].query["maxResults"] == "100"


def test_incremental_run_stops_at_the_last_comment_read(youtube):
    api, data = youtube
    data.threads = [thread(1, minutes_ago=20)]
    source = make_source(api)
    first = source.fetch(None)
    data.threads.append(thread(2, minutes_ago=1))

    second = source.fetch(first.cursor)

    assert [m.native_id for m in second.mentions] == ["Ugz00002AaBbCc4AaABAg"]
    assert source.fetch(second.cursor).mentions == []


def test_page_tokens_and_budget_resume_for_a_channel(youtube):
    api, data = youtube
    data.threads = [
        thread(n, minutes_ago=400 - n, video=VIDEO if n % 2 else OTHER_VIDEO) for n in range(1, 251)
    ]
    source = make_source(api, videos=(), channels=(CHANNEL,), max_items=120)

    first = source.fetch(None)
    assert [r.query.get("pageToken") for r in api.calls(PATH)] == [None, "page-100"]
    second = source.fetch(first.cursor)
    third = source.fetch(second.cursor)

    ids = {m.native_id for m in first.mentions + second.mentions + third.mentions}
    assert len(ids) == 250


def test_a_video_with_comments_off_is_skipped_and_the_others_are_read(youtube):
    api, data = youtube
    data.threads = [thread(1, minutes_ago=1, video=OTHER_VIDEO)]
    data.disabled = {VIDEO}
    result = make_source(api, videos=(VIDEO, OTHER_VIDEO)).fetch(None)

    assert [m.native_id for m in result.mentions] == ["Ugz00001AaBbCc4AaABAg"]
    assert result.rejected == [f"video {VIDEO}: commentsDisabled; skipped"]


def test_429_then_success(youtube):
    api, data = youtube
    data.threads = [thread(1, minutes_ago=1)]
    api.fail(
        PATH,
        Reply(429, {"error": {"code": 429, "message": "Too many"}}, headers={"Retry-After": "0"}),
    )
    assert len(make_source(api).fetch(None).mentions) == 1
    assert len(api.calls(PATH)) == 2


def test_quota_exceeded_ends_the_cycle_until_the_pacific_midnight(youtube):
    api, data = youtube
    data.threads = [thread(1, minutes_ago=1)]
    api.fail(
        PATH,
        api_error(
            403,
            "quotaExceeded",
            "The request cannot be completed because you have exceeded your quota.",
        ),
    )
    with pytest.raises(TransientError, match="daily quota used up") as raised:
        make_source(api).fetch(None)
    assert raised.value.retry_after == seconds_to_quota_reset(NOW) == 20 * 3600  # 04:00 PST
    assert len(api.calls(PATH)) == 1


def test_500_storm_gives_up_for_the_cycle_and_records_it(youtube, engine):
    api, data = youtube
    data.threads = [thread(1, minutes_ago=1)]
    source = make_source(api)
    api.fail(PATH, api_error(500, "backendError", "Backend Error"), times=5)

    outcome = pipeline_alone(engine, source).collect(source)

    assert "HTTP 500" in outcome.error
    assert len(api.calls(PATH)) == 3
    assert cursor_of(engine, "youtube-main").consecutive_failures == 1


def test_invalid_key_is_a_source_error_and_the_key_is_never_logged(youtube, caplog):
    api, _data = youtube
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceError, match="keyInvalid") as raised:
        make_source(api, key="yt-wrong-key").fetch(None)
    assert "yt-wrong-key" not in str(raised.value)
    assert "yt-wrong-key" not in caplog.text


def test_malformed_threads_are_skipped_with_the_reason(youtube, engine):
    api, data = youtube
    no_time = thread(2, minutes_ago=2)
    no_time["snippet"]["topLevelComment"]["snippet"]["publishedAt"] = "yesterday"
    no_comment = thread(3, minutes_ago=1)
    del no_comment["snippet"]["topLevelComment"]
    data.threads = [thread(1, minutes_ago=3), no_time, no_comment]
    source = make_source(api)

    outcome = pipeline_alone(engine, source).collect(source)

    assert stored_ids(engine, "youtube") == ["Ugz00001AaBbCc4AaABAg"]
    assert sorted(outcome.rejected) == sorted(
        [
            f"video {VIDEO}: 'publishedAt' is not an ISO-8601 time: 'yesterday'",
            f"video {VIDEO}: thread 'Ugz00003AaBbCc4AaABAg':"
            " missing snippet.topLevelComment.snippet",
        ]
    )


def test_restart_between_fetch_and_commit_stores_each_comment_once(youtube, engine):
    api, data = youtube
    data.threads = [thread(1, minutes_ago=2), thread(2, minutes_ago=1)]
    source = make_source(api)
    source.fetch(None)  # crash before the commit

    first = pipeline_alone(engine, source).collect(source)
    again = pipeline_alone(engine, source).collect(source)

    assert first.stored == 2
    assert again.fetched == 0
    assert len(stored_ids(engine, "youtube")) == 2
    assert json.loads(cursor_of(engine, "youtube-main").cursor).keys() == {f"video:{VIDEO}"}


def test_without_the_key_the_source_is_not_configured(monkeypatch):
    monkeypatch.delenv("YOUTUBE_API_KEY", raising=False)
    config = YouTubeConfig(name="youtube", type="youtube", video_ids=[VIDEO])
    with pytest.raises(NotConfigured, match="YOUTUBE_API_KEY not set"):
        YouTubeComments.from_config(config, load_settings())
