"""The X collector through tweepy against a local server answering like API v2 recent search."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from config.schema import TwitterSource as TwitterConfig
from listener.sources import NotConfigured, SourceError
from listener.sources.common import BrandTerms
from listener.sources.retry import TransientError
from listener.sources.twitter import TWITTER_EPOCH_MS, TwitterSource, build_query
from tests.fake_apis import (
    FAST,
    HTML_ERROR,
    FakeAPI,
    Reply,
    Request,
    assert_storm_is_recorded,
    stored,
)

SEARCH = "/2/tweets/search/recent"
LOOKUP = "/2/tweets"
TOKEN = "test-bearer-token"
PAGE_LIMIT = 10  # the emulator pages at 10 whatever max_results says, to exercise next_token


def snowflake(when: datetime, sequence: int) -> int:
    return ((int(when.timestamp() * 1000) - TWITTER_EPOCH_MS) << 22) + sequence


class FakeX:
    """Recent search over an in-memory list of tweets: since_id, until_id, start_time,
    max_results and next_token as the API documents them."""

    def __init__(self, api: FakeAPI) -> None:
        self.tweets: list[dict] = []
        self.users = {
            "1": {
                "id": "1",
                "username": "anna_b",
                "name": "Anna B",
                "public_metrics": {"followers_count": 210},
            },
            "2": {
                "id": "2",
                "username": "mike",
                "name": "Mike",
                "public_metrics": {"followers_count": 5},
            },
        }
        api.route("GET", SEARCH, self.search)
        api.route("GET", LOOKUP, self.lookup)

    def post(
        self,
        count: int,
        *,
        lang: str = "en",
        start: int = 0,
        text: str = "lumora order {n} still not here",
        age: timedelta = timedelta(hours=1),
    ) -> None:
        now = datetime.now(UTC) - age
        for n in range(start, start + count):
            when = now + timedelta(seconds=n)
            self.tweets.append(
                {
                    "id": str(snowflake(when, n % 4096)),
                    "text": text.format(n=n),
                    "author_id": "1" if n % 2 else "2",
                    "created_at": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "lang": lang,
                    "edit_history_tweet_ids": ["0"],
                    "public_metrics": {
                        "retweet_count": n,
                        "reply_count": 1,
                        "like_count": 2 * n,
                        "quote_count": 0,
                        "bookmark_count": 0,
                        "impression_count": 100,
                    },
                }
            )

    def search(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return Reply(
                401,
                {
                    "title": "Unauthorized",
                    "type": "about:blank",
                    "status": 401,
                    "detail": "Unauthorized",
                },
            )
        q = request.query
        size = int(q.get("max_results", 10))
        if not 10 <= size <= 100:
            return Reply(
                400,
                {"errors": [{"message": "max_results must be 10-100"}], "title": "Invalid Request"},
            )
        tweets = sorted(
            self.tweets, key=lambda t: -int(t["id"]) if str(t.get("id", "")).isdigit() else 0
        )
        if "since_id" in q:
            tweets = [t for t in tweets if _id(t) > int(q["since_id"])]
        elif "start_time" in q:
            tweets = [t for t in tweets if t.get("created_at", "9") >= q["start_time"]]
        if "until_id" in q:
            tweets = [t for t in tweets if _id(t) < int(q["until_id"])]
        offset = int(q.get("next_token", "0"))
        page = tweets[offset : offset + min(size, PAGE_LIMIT)]
        if not page:
            return Reply(200, {"meta": {"result_count": 0}})
        meta = {
            "result_count": len(page),
            "newest_id": page[0].get("id"),
            "oldest_id": page[-1].get("id"),
        }
        if offset + len(page) < len(tweets):
            meta["next_token"] = str(offset + len(page))
        authors = {t.get("author_id") for t in page}
        users = [u for key, u in self.users.items() if key in authors]
        return Reply(200, {"data": page, "includes": {"users": users}, "meta": meta})

    def lookup(self, request: Request) -> Reply:
        """GET /2/tweets: the posts still there, a not-found problem for each one gone."""
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return Reply(401, {"title": "Unauthorized", "status": 401, "detail": "Unauthorized"})
        ids = request.query["ids"].split(",")
        if len(ids) > 100:
            return Reply(400, {"errors": [{"message": "ids: at most 100"}]})
        fields = request.query.get("tweet.fields", "").split(",")
        by_id = {t["id"]: t for t in self.tweets}
        data = [
            {"id": i, "text": by_id[i]["text"], "edit_history_tweet_ids": [i]}
            | ({"public_metrics": by_id[i]["public_metrics"]} if "public_metrics" in fields else {})
            for i in ids
            if i in by_id
        ]
        errors = [
            {
                "value": i,
                "detail": f"Could not find tweet with ids: [{i}].",
                "title": "Not Found Error",
                "resource_type": "tweet",
                "parameter": "ids",
                "resource_id": i,
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            }
            for i in ids
            if i not in by_id
        ]
        return Reply(200, {"data": data} | ({"errors": errors} if errors else {}))

    def react(self, tweet_id: str, likes: int) -> None:
        """The post draws `likes` likes (its other counts stay)."""
        tweet = next(t for t in self.tweets if t["id"] == tweet_id)
        tweet["public_metrics"]["like_count"] = likes


def _id(tweet: dict) -> int:
    try:
        return int(tweet["id"])
    except (KeyError, ValueError):
        return 0


@pytest.fixture
def x(api):
    return FakeX(api)


def _make(settings, api, monkeypatch, **overrides) -> TwitterSource:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    fields = {"type": "twitter", "name": "x-main", "base_url": f"{api.url}/2/", **overrides}
    return TwitterSource.from_config(TwitterConfig(**fields), settings, policy=FAST)


def test_query_is_built_from_the_brand_config(settings):
    query = build_query(BrandTerms.from_settings(settings))
    assert query.startswith('(((lumora OR "lumora glow" OR "lumora powercube") lang:en) OR ')
    assert "((lumora) lang:de)" in query
    assert "(@LumoraShop)" in query
    assert "-from:LumoraShop" in query
    assert '-"lumora borealis"' in query
    assert query.endswith("-is:retweet")


def test_missing_token_disables_the_source(settings, monkeypatch):
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    with pytest.raises(NotConfigured, match="X_BEARER_TOKEN not set"):
        TwitterSource.from_config(TwitterConfig(type="twitter", name="x"), settings)


def test_first_run_reads_the_backfill_window_with_author_data(api, x, make):
    x.post(3, lang="de")
    source = make(backfill="2h")

    result = source.fetch(None)

    assert [m.text for m in result.mentions] == [
        f"lumora order {n} still not here" for n in (2, 1, 0)
    ]
    first = result.mentions[0]
    assert first.source == "twitter"
    assert first.collector == "x-main"
    assert first.author_handle == "mike"
    assert first.author_name == "Mike"
    assert first.author_followers == 5
    assert first.engagement == 7  # tweet 2: 2 retweets, 1 reply, 4 likes (not impressions)
    assert first.language == "de"
    assert first.url == f"https://x.com/mike/status/{first.native_id}"
    assert first.created_at.tzinfo is not None
    assert first.raw["tweet"]["id"] == first.native_id
    (call,) = api.calls(SEARCH)
    assert call.query["expansions"] == "author_id"
    assert "lang" in call.query["tweet.fields"]
    assert "created_at" in call.query["tweet.fields"]
    assert "public_metrics" in call.query["user.fields"]
    assert call.query["query"].endswith("-is:retweet")
    started = datetime.fromisoformat(call.query["start_time"].replace("Z", "+00:00"))
    assert (
        timedelta(hours=1, minutes=59) < datetime.now(UTC) - started < timedelta(hours=2, minutes=1)
    )
    assert "since_id" not in call.query


def test_incremental_run_reads_only_newer_tweets(api, x, make):
    x.post(3)
    source = make()
    first = source.fetch(None)
    x.post(2, start=3)

    second = source.fetch(first.cursor)

    assert [m.text for m in second.mentions] == [f"lumora order {n} still not here" for n in (4, 3)]
    assert api.calls(SEARCH)[-1].query["since_id"] == max(m.native_id for m in first.mentions)
    assert source.fetch(second.cursor).mentions == []


def test_pages_are_followed_and_a_budget_cut_is_filled_in_later_cycles(api, x, make):
    x.post(25)
    unlimited = make(name="x-all").fetch(None)
    assert len(unlimited.mentions) == 25
    assert [c.query.get("next_token") for c in api.calls(SEARCH)] == [None, "10", "20"]

    source = make(max_items_per_cycle=12)
    seen: list[str] = []
    cursor = None
    for _cycle in range(3):
        result = source.fetch(cursor)
        seen += [m.native_id for m in result.mentions]
        cursor = result.cursor
    assert len(seen) == 25
    assert len(set(seen)) == 25
    x.post(1, start=25)
    latest = source.fetch(cursor)
    assert [m.text for m in latest.mentions] == ["lumora order 25 still not here"]


def test_429_waits_for_the_reset_then_succeeds(api, x, make):
    x.post(2)
    reset = str(int(time.time()))  # the window has already reset
    api.fail(SEARCH, Reply(429, {"title": "Too Many Requests"}, {"x-rate-limit-reset": reset}))
    result = make().fetch(None)
    assert len(result.mentions) == 2
    assert len(api.calls(SEARCH)) == 2


def test_a_failed_page_is_retried_alone_so_posts_already_read_are_not_billed_again(
    api, x, settings, monkeypatch
):
    x.post(30)  # three pages of 10 in the emulator
    normal, failed = x.search, []

    def flaky(request: Request) -> Reply:
        if request.query.get("next_token") == "20" and not failed:
            failed.append(request)
            return Reply(503, {"title": "Service Unavailable"})
        return normal(request)

    api.route("GET", SEARCH, flaky)

    result = _make(settings, api, monkeypatch, max_items_per_cycle=100).fetch(None)

    assert len(result.mentions) == 30
    pages = [call.query.get("next_token", "first") for call in api.calls(SEARCH)]
    assert pages == ["first", "10", "20", "20"]


def test_a_page_that_keeps_failing_keeps_the_pages_read_and_the_next_cycle_reads_on(
    api, x, settings, monkeypatch, caplog
):
    x.post(30)  # three pages of 10 in the emulator
    normal = x.search
    down = [True]

    def third_page_down(request: Request) -> Reply:
        if request.query.get("next_token") == "20" and down[0]:
            return Reply(503, {"title": "Service Unavailable"})
        return normal(request)

    api.route("GET", SEARCH, third_page_down)
    source = _make(settings, api, monkeypatch, max_items_per_cycle=100)

    first = source.fetch(None)

    assert len(first.mentions) == 20  # the two pages read (and billed) are kept
    assert "X stopped answering after 20 posts" in caplog.text
    down[0] = False
    second = source.fetch(first.cursor)
    assert len(second.mentions) == 10  # only the rest: nothing read twice
    ids = {m.native_id for m in first.mentions + second.mentions}
    assert len(ids) == 30


def test_429_with_a_distant_reset_ends_the_cycle_at_once(api, x, make):
    reset = str(int(time.time()) + 900)
    api.fail(SEARCH, Reply(429, {"title": "Too Many Requests"}, {"x-rate-limit-reset": reset}))
    with pytest.raises(TransientError) as caught:
        make().fetch(None)
    assert caught.value.retry_after > 800
    assert len(api.calls(SEARCH)) == 1


def test_500_storm_and_html_pages_are_recorded_and_others_go_on(api, x, make, engine, pipeline_for):
    x.post(2)
    api.fail(SEARCH, Reply(503, {"title": "Service Unavailable"}), HTML_ERROR, Reply(500, "oops"))
    source = make()
    pipeline = pipeline_for(source)
    error = assert_storm_is_recorded(pipeline, engine, "x-main")
    assert "TransientError" in error
    assert "500" in error
    assert len(api.calls(SEARCH)) == FAST.attempts


def test_refused_token_is_a_clear_error(api, x, make):
    source = make()
    source.client.bearer_token = "wrong"
    with pytest.raises(SourceError, match="X refused the bearer token \\(HTTP 401\\)"):
        source.fetch(None)
    assert len(api.calls(SEARCH)) == 1  # not retried


def test_malformed_tweets_are_skipped_one_by_one(api, x, make):
    x.post(2)
    x.tweets.append(
        {
            "id": str(int(x.tweets[-1]["id"]) + 5),
            "author_id": "1",
            "created_at": x.tweets[-1]["created_at"],
        }
    )
    x.tweets.append(
        {
            "id": str(int(x.tweets[0]["id"]) + 7),
            "text": ["not", "text"],
            "created_at": x.tweets[0]["created_at"],
        }
    )
    x.tweets.append(
        {"id": str(int(x.tweets[0]["id"]) + 9), "text": "bad date", "created_at": "yesterday"}
    )

    result = make().fetch(None)

    assert len(result.mentions) == 2
    reasons = sorted(r.split(": ", 1)[1] for r in result.rejected)
    assert reasons[0] == "'text' is not a string"
    assert reasons[1].startswith("Invalid isoformat string")  # created_at "yesterday"
    assert reasons[2] == "missing field 'text'"


def test_restart_between_fetch_and_commit_stores_each_tweet_once(
    api, x, make, engine, pipeline_for
):
    x.post(3)
    source = make()
    source.fetch(None)  # fetched, then the process died before the commit
    pipeline = pipeline_for(source)

    assert pipeline.collect(source).stored == 3
    x.post(1, start=3)
    again = pipeline.collect(source)

    assert (again.stored, again.already_stored) == (1, 0)
    assert len({m.native_id for m in stored(engine, "x-main")}) == 4


@pytest.fixture
def make(settings, api, monkeypatch):
    """Build the source from its config entry, pointed at the local server."""
    return lambda **overrides: _make(settings, api, monkeypatch, **overrides)


@pytest.mark.parametrize("cursor", ["not json", '{"since_id": "abc"}', '{"start_time": "soon"}'])
def test_an_unreadable_cursor_restarts_from_the_backfill_window(api, x, make, cursor, caplog):
    x.post(2)
    result = make().fetch(cursor)
    assert len(result.mentions) == 2
    assert "start_time" in api.calls(SEARCH)[0].query
    assert "unreadable cursor" in caplog.text


def test_an_unreachable_server_is_transient(settings, monkeypatch):
    with FakeAPI() as gone:
        closed = gone
    source = _make(settings, closed, monkeypatch)
    with pytest.raises(TransientError, match="ConnectionError"):
        source.fetch(None)


def test_a_query_over_the_length_limit_is_refused_with_the_fix(settings, monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    config = TwitterConfig(type="twitter", name="x", max_query_length=60)
    with pytest.raises(NotConfigured, match=r"over max_query_length 60; set `query`"):
        TwitterSource.from_config(config, settings)


def test_reactions_are_read_again_by_one_lookup_and_deleted_posts_left_out(api, x, make):
    x.post(2)
    source = make()
    first, second = (m.native_id for m in source.fetch(None).mentions)
    x.react(first, 400)
    x.tweets = [t for t in x.tweets if t["id"] != second]  # deleted since

    counts = source.reactions([first, second])

    assert counts == {first: 400 + 1 + 1}  # likes, retweets (n=1), replies (1), quotes (0)
    (call,) = api.calls(LOOKUP)
    assert call.query["ids"] == f"{first},{second}"
    assert call.query["tweet.fields"] == "public_metrics"
    assert source.reactions([]) == {}
    assert len(api.calls(LOOKUP)) == 1  # nothing asked, no request


def test_reactions_lookup_refused_is_a_clear_error(api, x, make):
    source = make()
    api.fail(LOOKUP, Reply(403, {"title": "Forbidden", "status": 403, "detail": "Forbidden"}))

    with pytest.raises(SourceError, match="access level includes post lookup"):
        source.reactions(["1460323737035677698"])
