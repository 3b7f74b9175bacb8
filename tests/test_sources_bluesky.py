"""Bluesky collector through the atproto SDK against a local PDS/AppView stand-in."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from config.schema import BlueskySource as BlueskyConfig
from config.schema import load_settings
from listener.sources import NotConfigured, SourceError
from listener.sources.bluesky import BlueskySearch
from tests.fake_apis import FAST, FakeAPI, Reply, Request, cursor_of, pipeline_alone, stored_ids

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SEARCH = "/xrpc/app.bsky.feed.searchPosts"
GET_POSTS = "/xrpc/app.bsky.feed.getPosts"
LOGIN = "/xrpc/com.atproto.server.createSession"
DID = "did:plc:testaccount000000000000"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


ACCESS_JWT = ".".join(
    [
        _b64({"typ": "at+jwt", "alg": "ES256K"}),
        _b64(
            {
                "scope": "com.atproto.appPass",
                "sub": DID,
                "iat": 1763600000,
                "exp": 4102444800,
                "aud": "did:web:bsky.social",
            }
        ),
        "c2lnbmF0dXJl",
    ]
)


def _z(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def post(number: int, *, minutes_ago: int, text: str | None = None, langs=("en",)) -> dict:
    """A post view as app.bsky.feed.defs#postView documents it."""
    at = NOW - timedelta(minutes=minutes_ago)
    return {
        "uri": f"at://did:plc:author{number:04d}/app.bsky.feed.post/3lrk{number:05d}",
        "cid": "bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5ovrb6mq6cxbpoi",
        "author": {
            "did": f"did:plc:author{number:04d}",
            "handle": f"user{number}.bsky.social",
            "displayName": f"User {number}",
            "labels": [],
            "createdAt": "2024-01-01T00:00:00.000Z",
        },
        "record": {
            "$type": "app.bsky.feed.post",
            "createdAt": _z(at),
            "text": text or f"@lumora my order {number} never arrived",
            "langs": list(langs),
        },
        "replyCount": 0,
        "repostCount": 0,
        "likeCount": 2,
        "quoteCount": 0,
        "indexedAt": _z(at + timedelta(seconds=1)),
        "labels": [],
    }


class AppView:
    """createSession plus searchPosts over `posts` (newest first), paged by an offset cursor."""

    def __init__(self, api: FakeAPI) -> None:
        self.posts: list[dict] = []
        self.logins = 0
        api.route("POST", LOGIN, self.login)
        api.route("GET", SEARCH, self.search)
        api.route("GET", GET_POSTS, self.get_posts)

    def login(self, request: Request) -> Reply:
        body = json.loads(request.body)
        if body != {"identifier": "lumora.bsky.social", "password": "app-pass-placeholder"}:
            return Reply(
                401,
                {"error": "AuthenticationRequired", "message": "Invalid identifier or password"},
            )
        self.logins += 1
        return Reply(
            200,
            {
                "accessJwt": ACCESS_JWT,
                "refreshJwt": ACCESS_JWT,
                "handle": "lumora.bsky.social",
                "did": DID,
                "active": True,
            },
        )

    def get_posts(self, request: Request) -> Reply:
        """app.bsky.feed.getPosts: the views of the URIs still there, in the order asked."""
        if request.headers.get("authorization") != f"Bearer {ACCESS_JWT}":
            return Reply(403, {"error": "AuthMissing", "message": "Authentication Required"})
        uris = request.params.get("uris", [])
        if len(uris) > 25:
            return Reply(400, {"error": "InvalidRequest", "message": "uris: at most 25"})
        by_uri = {p["uri"]: p for p in self.posts}
        return Reply(200, {"posts": [by_uri[u] for u in uris if u in by_uri]})

    def search(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {ACCESS_JWT}":
            return Reply(403, {"error": "AuthMissing", "message": "Authentication Required"})
        assert request.query["sort"] == "latest"
        since = datetime.fromisoformat(request.query["since"].replace("Z", "+00:00"))
        hits = [
            p
            for p in self.posts
            if datetime.fromisoformat(p["indexedAt"].replace("Z", "+00:00")) >= since
        ]
        hits.sort(key=lambda p: p["indexedAt"], reverse=True)
        start = int(request.query.get("cursor", 0))
        limit = int(request.query["limit"])
        body: dict = {"posts": hits[start : start + limit], "hitsTotal": len(hits)}
        if start + limit < len(hits):
            body["cursor"] = str(start + limit)
        return Reply(200, body)


@pytest.fixture
def appview(api):
    return api, AppView(api)


PLACEHOLDER_PASSWORD = "app-pass-placeholder"


def make_source(api: FakeAPI, *, max_items=500, password=PLACEHOLDER_PASSWORD):
    return BlueskySearch(
        "bluesky-main",
        handle="lumora.bsky.social",
        password=password,
        queries=["lumora"],
        max_items=max_items,
        base_url=api.url,
        retry=FAST,
        clock=lambda: NOW,
    )


def test_first_run_logs_in_once_and_maps_posts(appview):
    api, view = appview
    view.posts = [post(1, minutes_ago=60 * 24 * 8), post(2, minutes_ago=5, langs=("pt-BR",))]
    source = make_source(api)
    result = source.fetch(None)
    source.fetch(result.cursor)

    assert view.logins == 1
    assert [m.native_id for m in result.mentions] == [view.posts[1]["uri"]]
    mention = result.mentions[0]
    assert mention.source == "bluesky"
    assert mention.author_handle == "user2.bsky.social"
    assert mention.author_name == "User 2"
    assert mention.language == "pt"
    assert mention.url == "https://bsky.app/profile/user2.bsky.social/post/3lrk00002"
    assert mention.created_at == NOW - timedelta(minutes=5)
    assert mention.raw["likeCount"] == 2
    assert mention.engagement == 2  # likes, reposts, replies, quotes
    first_since = api.calls(SEARCH)[0].query["since"]
    assert first_since == _z(NOW - timedelta(days=7, minutes=10))  # the backfill window


def test_incremental_run_sends_since_and_returns_only_new_posts(appview):
    api, view = appview
    view.posts = [post(1, minutes_ago=30)]
    source = make_source(api)
    first = source.fetch(None)
    view.posts.append(post(2, minutes_ago=1))

    second = source.fetch(first.cursor)

    assert [m.native_id for m in second.mentions] == [view.posts[1]["uri"]]
    assert api.calls(SEARCH)[-1].query["since"] == _z(
        NOW - timedelta(minutes=29, seconds=59) - timedelta(minutes=10)
    )
    assert source.fetch(second.cursor).mentions == []


def test_cursor_pagination_and_budget_resume(appview):
    api, view = appview
    view.posts = [post(n, minutes_ago=300 - n) for n in range(1, 251)]
    source = make_source(api, max_items=150)

    first = source.fetch(None)
    assert [r.query.get("cursor") for r in api.calls(SEARCH)] == [None, "100"]
    second = source.fetch(first.cursor)

    assert len({m.native_id for m in first.mentions + second.mentions}) == 250
    assert api.calls(SEARCH)[2].query["cursor"] == "150"


def test_429_then_success(appview):
    api, view = appview
    view.posts = [post(1, minutes_ago=1)]
    api.fail(
        SEARCH,
        Reply(
            429,
            {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
            headers={"Retry-After": "0", "RateLimit-Limit": "3000", "RateLimit-Remaining": "0"},
        ),
    )

    assert len(make_source(api).fetch(None).mentions) == 1
    assert len(api.calls(SEARCH)) == 2


def test_500_storm_gives_up_for_the_cycle(appview, engine):
    api, view = appview
    view.posts = [post(1, minutes_ago=1)]
    source = make_source(api)
    api.fail(SEARCH, Reply(500, {"error": "InternalServerError"}), times=5)

    outcome = pipeline_alone(engine, source).collect(source)

    assert "HTTP 500" in outcome.error
    assert len(api.calls(SEARCH)) == 3
    assert cursor_of(engine, "bluesky-main").cursor is None


def test_wrong_app_password_is_a_clear_source_error(appview):
    api, _view = appview
    with pytest.raises(SourceError, match="check the handle and app password"):
        make_source(api, password="wrong").fetch(None)
    assert len(api.calls(LOGIN)) == 1  # not retried


def test_malformed_posts_are_skipped_with_the_reason(appview, engine):
    api, view = appview
    no_uri = post(2, minutes_ago=2)
    del no_uri["uri"]
    not_a_post = post(3, minutes_ago=1)
    not_a_post["record"] = {"$type": "app.bsky.feed.post", "text": 42}
    view.posts = [post(1, minutes_ago=3), no_uri, not_a_post]
    source = make_source(api)

    outcome = pipeline_alone(engine, source).collect(source)

    assert stored_ids(engine, "bluesky") == [view.posts[0]["uri"]]
    assert len(outcome.rejected) == 2
    assert any("not a post view (uri)" in r for r in outcome.rejected)
    assert any("is not an app.bsky.feed.post" in r for r in outcome.rejected)


def test_restart_between_fetch_and_commit_stores_each_post_once(appview, engine):
    api, view = appview
    view.posts = [post(1, minutes_ago=2), post(2, minutes_ago=1)]
    source = make_source(api)
    source.fetch(None)  # crash before the commit

    first = pipeline_alone(engine, source).collect(source)
    again = pipeline_alone(engine, source).collect(source)

    assert first.stored == 2
    assert again.fetched == 0
    assert len(stored_ids(engine, "bluesky")) == 2


def test_without_credentials_the_source_is_not_configured(monkeypatch):
    monkeypatch.delenv("BLUESKY_HANDLE", raising=False)
    config = BlueskyConfig(name="bluesky", type="bluesky")
    with pytest.raises(NotConfigured, match="BLUESKY_HANDLE not set"):
        BlueskySearch.from_config(config, load_settings())


def test_queries_default_to_the_brand_keywords(monkeypatch):
    monkeypatch.setenv("BLUESKY_HANDLE", "lumora.bsky.social")
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "app-pass-placeholder")
    source = BlueskySearch.from_config(BlueskyConfig(name="b", type="bluesky"), load_settings())
    assert "lumora" in source.queries
    assert "ルモラ" in source.queries
    assert "app-pass-placeholder" not in repr(source)


def test_reactions_are_read_again_25_uris_a_request_and_deleted_posts_left_out(appview):
    api, view = appview
    view.posts = [post(n, minutes_ago=30 + n) for n in range(30)]
    view.posts[0].update(likeCount=300, repostCount=50, replyCount=20, quoteCount=5)
    uris = [p["uri"] for p in view.posts] + ["at://did:plc:gone/app.bsky.feed.post/3lrkgone"]

    counts = make_source(api).reactions(uris)

    assert counts[uris[0]] == 375
    assert counts[uris[1]] == 2
    assert len(counts) == 30
    calls = api.calls(GET_POSTS)
    assert [len(c.params["uris"]) for c in calls] == [25, 6]
    assert len(api.calls(LOGIN)) == 1
