"""The Reddit collector through praw against a local server answering like Reddit's OAuth API:
the application-only token endpoint, subreddit search (sort=new) and subreddit comments."""

from __future__ import annotations

import base64
import time

import pytest

from config.schema import RedditSource as RedditConfig
from listener.sources import NotConfigured, SourceError
from listener.sources.reddit import RedditSource
from listener.sources.retry import TransientError
from tests.fake_apis import (
    FAST,
    HTML_ERROR,
    FakeAPI,
    Reply,
    Request,
    assert_storm_is_recorded,
    stored,
)

TOKEN_PATH = "/api/v1/access_token"
SUBS = "gadgets+BuyItForLife"
SEARCH = f"/r/{SUBS}/search/"
COMMENTS = f"/r/{SUBS}/comments/"
INFO = "/api/info/"
PAGE_LIMIT = 25  # Reddit's default page; the emulator ignores larger limits to exercise `after`


def listing(children: list[dict], after: str | None) -> dict:
    return {
        "kind": "Listing",
        "data": {
            "after": after,
            "dist": len(children),
            "modhash": "",
            "before": None,
            "children": children,
        },
    }


LISTING_CAP = 1000


class FakeReddit:
    def __init__(self, api: FakeAPI) -> None:
        self.posts: list[dict] = []
        self.comments: list[dict] = []
        self.secret = "s3cret"
        api.route("POST", TOKEN_PATH, self.token)
        api.route("GET", SEARCH, lambda r: self.page(r, self.posts, "t3"))
        api.route("GET", COMMENTS, lambda r: self.page(r, self.comments, "t1"))
        api.route("GET", INFO, self.info)

    def info(self, request: Request) -> Reply:
        """/api/info: a listing of the things asked for by fullname; gone ones are left out."""
        if request.headers.get("authorization") != "bearer app-token":
            return Reply(401, {"message": "Unauthorized", "error": 401})
        wanted = request.query["id"].split(",")
        things = {d["name"]: ("t3", d) for d in self.posts}
        things |= {d["name"]: ("t1", d) for d in self.comments}
        children = [{"kind": things[n][0], "data": things[n][1]} for n in wanted if n in things]
        return Reply(200, listing(children, None))

    def token(self, request: Request) -> Reply:
        expected = base64.b64encode(f"client-id:{self.secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return Reply(401, {"message": "Unauthorized", "error": 401})
        assert "grant_type=client_credentials" in request.body
        return Reply(
            200,
            {
                "access_token": "app-token",
                "token_type": "bearer",
                "expires_in": 86400,
                "scope": "*",
            },
        )

    def page(self, request: Request, items: list[dict], kind: str) -> Reply:
        if request.headers.get("authorization") != "bearer app-token":
            return Reply(401, {"message": "Unauthorized", "error": 401})
        # Like Reddit, a listing ends after its newest LISTING_CAP items.
        newest_first = sorted(items, key=lambda d: -_float(d.get("created_utc")))[:LISTING_CAP]
        after = request.query.get("after")
        start = 0
        if after:
            start = next(i for i, d in enumerate(newest_first) if d.get("name") == after) + 1
        size = min(int(request.query.get("limit", 25)), PAGE_LIMIT)
        chunk = newest_first[start : start + size]
        more = start + size < len(newest_first)
        children = [{"kind": kind, "data": d} for d in chunk]
        return Reply(200, listing(children, chunk[-1].get("name") if more and chunk else None))

    def submit(self, count: int, *, start: int = 0, base: float | None = None) -> None:
        base = base or time.time() - 3600
        for n in range(start, start + count):
            ident = f"p{n:05d}"
            self.posts.append(
                {
                    "id": ident,
                    "name": f"t3_{ident}",
                    "title": f"Lumora glow broke after {n} days",
                    "selftext": "Anyone else?",
                    "author": f"user{n}",
                    "created_utc": base + n,
                    "permalink": f"/r/gadgets/comments/{ident}/lumora_glow/",
                    "subreddit": "gadgets",
                    "score": 3,
                    "num_comments": 0,
                }
            )

    def comment(self, ident: str, body: str, created: float) -> None:
        self.comments.append(
            {
                "id": ident,
                "name": f"t1_{ident}",
                "body": body,
                "author": "commenter",
                "created_utc": created,
                "permalink": f"/r/gadgets/comments/p00000/x/{ident}/",
                "link_id": "t3_p00000",
                "subreddit": "gadgets",
            }
        )


def _float(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


@pytest.fixture
def reddit(api):
    return FakeReddit(api)


def _make(settings, api, monkeypatch, **overrides) -> RedditSource:
    monkeypatch.setenv("REDDIT_CLIENT_ID", "client-id")
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("REDDIT_USER_AGENT", "listener-tests/1.0 by u/listener")
    fields = {
        "type": "reddit",
        "name": "reddit-main",
        "base_url": api.url,
        "auth_url": api.url,
        "subreddits": SUBS.split("+"),
        **overrides,
    }
    return RedditSource.from_config(RedditConfig(**fields), settings, policy=FAST)


def test_missing_client_secret_disables_the_source(settings, monkeypatch):
    monkeypatch.setenv("REDDIT_CLIENT_ID", "client-id")
    monkeypatch.delenv("REDDIT_CLIENT_SECRET", raising=False)
    with pytest.raises(NotConfigured, match="REDDIT_CLIENT_SECRET not set"):
        RedditSource.from_config(RedditConfig(type="reddit", name="r"), settings)


def test_first_run_reads_submissions_and_keyword_comments(api, reddit, make):
    reddit.submit(3)
    now = time.time()
    reddit.comment("c1", "My Lumora PowerCube smells burnt", now - 60)
    reddit.comment("c2", "unrelated chat about kettles", now - 50)
    reddit.comment("c3", "lumora borealis photo from last night", now - 40)  # excluded term
    reddit.comment("c4", "old lumora complaint", now - 30 * 86400)  # before the backfill

    result = make(backfill="1d").fetch(None)

    texts = [m.text for m in result.mentions]
    assert texts[:3] == [f"Lumora glow broke after {n} days\n\nAnyone else?" for n in range(3)]
    assert texts[3:] == ["My Lumora PowerCube smells burnt"]
    post = result.mentions[0]
    assert (post.source, post.collector, post.native_id) == ("reddit", "reddit-main", "t3_p00000")
    assert post.url == "https://www.reddit.com/r/gadgets/comments/p00000/lumora_glow/"
    assert post.author_handle == "user0"
    assert post.engagement == 3  # score 3, no comments
    assert post.raw["subreddit"] == "gadgets"
    (search,) = api.calls(SEARCH)
    assert search.query["sort"] == "new"
    assert search.query["restrict_sr"] == "True"
    assert search.query["q"] == 'lumora OR "lumora glow" OR "lumora powercube" OR ルモラ'
    assert api.calls(TOKEN_PATH)


def test_incremental_run_stops_at_the_cursor(api, reddit, make):
    reddit.submit(3)
    source = make(comments=False)
    first = source.fetch(None)
    reddit.submit(2, start=3)

    second = source.fetch(first.cursor)

    assert [m.native_id for m in second.mentions] == ["t3_p00003", "t3_p00004"]
    assert source.fetch(second.cursor).mentions == []


def test_more_new_posts_than_reddit_lists_are_named_as_a_gap_in_the_log(api, reddit, make, caplog):
    reddit.submit(3)
    source = make(comments=False)
    first = source.fetch(None)
    reddit.submit(LISTING_CAP + 100, start=3)  # more than Reddit lists, between two cycles

    second = source.fetch(first.cursor)

    assert "Reddit's listing of new submissions ended after 1000 before reaching" in caplog.text
    caplog.clear()
    source.fetch(second.cursor)  # from there on the listing reaches the cursor: no gap
    assert "ended after" not in caplog.text


def test_pages_are_followed_and_a_budget_keeps_the_oldest_first(api, reddit, make):
    reddit.submit(60)
    source = make(comments=False, max_items_per_cycle=50)

    first = source.fetch(None)
    afters = [c.query.get("after") for c in api.calls(SEARCH)]
    assert afters == [None, "t3_p00035", "t3_p00010"]
    assert [m.native_id for m in first.mentions][:2] == ["t3_p00000", "t3_p00001"]
    assert len(first.mentions) == 50
    second = source.fetch(first.cursor)
    assert [m.native_id for m in second.mentions] == [f"t3_p{n:05d}" for n in range(50, 60)]


def test_429_honours_retry_after_then_succeeds(api, reddit, make):
    reddit.submit(2)
    api.fail(
        SEARCH, Reply(429, {"message": "Too Many Requests", "error": 429}, {"Retry-After": "0"})
    )
    result = make(comments=False).fetch(None)
    assert len(result.mentions) == 2
    assert len(api.calls(SEARCH)) == 2


def test_500_storm_is_recorded_and_others_go_on(api, reddit, make, engine, pipeline_for):
    reddit.submit(2)
    api.fail(
        SEARCH,
        Reply(500, {"message": "Internal Server Error", "error": 500}),
        HTML_ERROR,
        Reply(503, "<html>down</html>", {}, "text/html"),
    )
    source = make(comments=False)
    pipeline = pipeline_for(source)
    error = assert_storm_is_recorded(pipeline, engine, "reddit-main")
    assert "Reddit: HTTP 503" in error
    assert len(api.calls(SEARCH)) == FAST.attempts  # prawcore's own retries are off: one layer


def test_refused_credentials_are_a_clear_error(api, reddit, make):
    reddit.secret = "rotated"
    with pytest.raises(SourceError, match="Reddit refused the credentials"):
        make().fetch(None)


def test_truncated_json_is_transient(api, reddit, make):
    api.fail(SEARCH, *[Reply(200, '{"kind": "Listing", "data": {"chil')] * 3)
    with pytest.raises(TransientError, match="not JSON"):
        make(comments=False).fetch(None)


def test_malformed_items_are_skipped_one_by_one(api, reddit, make):
    reddit.submit(2)
    now = time.time()
    reddit.posts.append({"id": "bad1", "name": "t3_bad1", "created_utc": now - 10})  # no title
    reddit.posts.append({"id": "bad2", "name": "t3_bad2", "title": "lumora", "created_utc": "x"})

    result = make(comments=False).fetch(None)

    assert [m.native_id for m in result.mentions] == ["t3_p00000", "t3_p00001"]
    assert sorted(result.rejected) == [
        "submission t3_bad1: 'title'",
        "submission t3_bad2: 'created_utc' is not a number: 'x'",
    ]


def test_restart_between_fetch_and_commit_stores_each_item_once(
    api, reddit, make, engine, pipeline_for
):
    reddit.submit(3)
    source = make(comments=False)
    source.fetch(None)  # fetched, then the process died before the commit
    pipeline = pipeline_for(source)

    assert pipeline.collect(source).stored == 3
    reddit.submit(1, start=3)
    again = pipeline.collect(source)

    assert (again.stored, again.already_stored) == (1, 0)
    assert len({m.native_id for m in stored(engine, "reddit-main")}) == 4


@pytest.fixture
def make(settings, api, monkeypatch):
    """Build the source from its config entry, pointed at the local server."""
    return lambda **overrides: _make(settings, api, monkeypatch, **overrides)


def test_an_unreachable_server_is_transient(settings, monkeypatch):
    with FakeAPI() as gone:
        closed = gone
    source = _make(settings, closed, monkeypatch)
    with pytest.raises(TransientError, match="ConnectionError"):
        source.fetch(None)


def test_reactions_are_read_again_by_fullname_and_deleted_posts_left_out(api, reddit, make):
    reddit.submit(4)
    reddit.comment("c1", "my lumora glow died too", time.time() - 60)
    reddit.comment("c2", "mine too", time.time() - 50)
    reddit.comments[0]["score"] = 7  # comments have a score but no comment count
    reddit.posts[0].update(score=250, num_comments=40)
    # As /api/info lists what its author deleted or a moderator removed: still there, scored.
    reddit.posts[2].update(
        author="[deleted]", selftext="[deleted]", removed_by_category="deleted", score=900
    )
    reddit.posts[3].update(selftext="[removed]", removed_by_category="moderator", score=900)
    reddit.comments[1].update(author="[deleted]", body="[deleted]", score=900)
    wanted = ["t3_p00000", "t3_p00001", "t3_p00002", "t3_p00003", "t1_c1", "t1_c2", "t3_gone"]

    counts = make().reactions(wanted)

    assert counts == {"t3_p00000": 290, "t3_p00001": 3, "t1_c1": 7}
    (call,) = api.calls(INFO)
    assert call.query["id"] == ",".join(wanted)


def test_reactions_lookup_server_errors_are_transient(api, reddit, make):
    api.fail(INFO, HTML_ERROR, times=10)

    with pytest.raises(TransientError, match="Reddit: HTTP 502"):
        make().reactions(["t3_p00000"])
