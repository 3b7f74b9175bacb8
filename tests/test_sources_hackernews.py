"""The Hacker News collector against a local server answering like Algolia's HN Search API
(`search_by_date`: query, tags, numericFilters, page / nbPages)."""

from __future__ import annotations

import json
import re
import signal
import time

import pytest
import yaml

from config.schema import EXAMPLE_CONFIG
from config.schema import HackerNewsSource as HackerNewsConfig
from listener.sources.hackernews import HackerNewsSource
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
from tests.test_pipeline import _run_once

SEARCH = "/api/v1/search_by_date"
PAGE_LIMIT = 20  # the emulator pages at 20 whatever hitsPerPage says, to exercise `page`


class FakeAlgolia:
    def __init__(self, api: FakeAPI) -> None:
        self.hits: list[dict] = []
        api.route("GET", SEARCH, self.search)

    def search(self, request: Request) -> Reply:
        q = request.query
        wanted = set(q.get("tags", "(story,comment)").strip("()").split(","))
        since = int(re.fullmatch(r"created_at_i>=(\d+)", q["numericFilters"]).group(1))
        words = q["query"].casefold()
        found = [
            h
            for h in self.hits
            if wanted & set(h.get("_tags", []))
            and _time(h) >= since
            and words in " ".join(str(h.get(k) or "") for k in _TEXT).casefold()
        ]
        found.sort(key=lambda h: -_time(h))
        size = min(int(q.get("hitsPerPage", 20)), PAGE_LIMIT)
        page = int(q.get("page", 0))
        pages = (len(found) + size - 1) // size
        body = {
            "hits": found[page * size : (page + 1) * size],
            "nbHits": len(found),
            "page": page,
            "nbPages": pages,
            "hitsPerPage": size,
            "exhaustiveNbHits": True,
            "query": q["query"],
            "params": "",
            "processingTimeMS": 1,
        }
        return Reply(200, body)

    def story(self, ident: int, title: str, created: int) -> None:
        self.hits.append(
            {
                "objectID": str(ident),
                "title": title,
                "url": "https://example.com/lumora",
                "author": "pg",
                "points": 10,
                "story_text": None,
                "comment_text": None,
                "num_comments": 0,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
                "created_at_i": created,
                "_tags": ["story", "author_pg", f"story_{ident}"],
            }
        )

    def comment(self, ident: int, html: str, created: int) -> None:
        self.hits.append(
            {
                "objectID": str(ident),
                "comment_text": html,
                "author": "dang",
                "story_id": 1,
                "story_title": "Ask HN",
                "parent_id": 1,
                "points": None,  # HN shows no points for comments
                "num_comments": None,
                "created_at_i": created,
                "_tags": ["comment", "author_dang", "story_1"],
            }
        )


_TEXT = ("title", "story_text", "comment_text")


def _time(hit: dict) -> int:
    value = hit.get("created_at_i")
    return value if isinstance(value, int) else 2**40


@pytest.fixture
def hn(api):
    return FakeAlgolia(api)


@pytest.fixture
def make(settings, api):
    def build(**overrides) -> HackerNewsSource:
        fields = {
            "type": "hackernews",
            "name": "hn",
            "base_url": f"{api.url}/api/v1/",
            "queries": ["lumora"],
            **overrides,
        }
        return HackerNewsSource.from_config(HackerNewsConfig(**fields), settings, policy=FAST)

    return build


NOW = int(time.time())


def test_first_run_reads_stories_and_comments_in_the_window(api, hn, make):
    hn.story(1, "Lumora Glow teardown", NOW - 600)
    hn.comment(2, "<p>My <i>Lumora</i> order never came &amp; support is silent</p>", NOW - 300)
    hn.story(3, "Lumora borealis over Iceland", NOW - 200)  # an excluded term
    hn.story(4, "Lumora, years ago", NOW - 30 * 86400)  # before the backfill window

    result = make(backfill="1d").fetch(None)

    assert [m.text for m in result.mentions] == [
        "Lumora Glow teardown",
        "My Lumora order never came & support is silent",
    ]
    story, comment = result.mentions
    assert (story.source, story.collector, story.native_id) == ("hackernews", "hn", "1")
    assert story.url == "https://news.ycombinator.com/item?id=1"
    assert story.author_handle == "pg"
    assert comment.author_handle == "dang"
    assert (story.engagement, comment.engagement) == (10, None)
    assert comment.raw["story_title"] == "Ask HN"
    (call,) = api.calls(SEARCH)
    assert call.query["tags"] == "(story,comment)"
    assert abs(int(call.query["numericFilters"].split(">=")[1]) - (time.time() - 86400)) < 60


def test_incremental_run_and_several_queries_without_duplicates(api, hn, make):
    hn.story(1, "Lumora Glow teardown", NOW - 600)
    source = make(queries=[])  # the brands' keywords: lumora, lumora glow, ...
    first = source.fetch(None)
    assert [m.native_id for m in first.mentions] == ["1"]  # found by two queries, taken once
    hn.comment(2, "lumora glow flickers", NOW - 100)

    second = source.fetch(first.cursor)

    assert [m.native_id for m in second.mentions] == ["2"]
    assert source.fetch(second.cursor).mentions == []
    last = [c for c in api.calls(SEARCH) if c.query["query"] == "lumora glow"][-1]
    assert last.query["numericFilters"] == f"created_at_i>={NOW - 100}"


def test_pages_are_followed_and_a_budget_keeps_the_oldest_first(api, hn, make):
    for n in range(45):
        hn.story(100 + n, f"lumora story {n}", NOW - 1000 + n)
    source = make(max_items_per_cycle=30)

    first = source.fetch(None)

    assert [c.query["page"] for c in api.calls(SEARCH)] == ["0", "1", "2"]
    assert [m.native_id for m in first.mentions] == [str(100 + n) for n in range(30)]
    second = source.fetch(first.cursor)
    assert [m.native_id for m in second.mentions] == [str(100 + n) for n in range(30, 45)]


def test_429_honours_retry_after_then_succeeds(api, hn, make):
    hn.story(1, "Lumora Glow teardown", NOW - 600)
    api.fail(SEARCH, Reply(429, {"message": "Too many requests"}, {"Retry-After": "0"}))
    assert len(make().fetch(None).mentions) == 1
    assert len(api.calls(SEARCH)) == 2


def test_500_storm_is_recorded_and_others_go_on(api, hn, make, engine, pipeline_for):
    api.fail(
        SEARCH, Reply(500, {"message": "oops"}), HTML_ERROR, Reply(503, "down", {}, "text/plain")
    )
    source = make()
    error = assert_storm_is_recorded(pipeline_for(source), engine, "hn")
    assert "HTTP 503" in error


def test_html_at_200_is_transient(api, hn, make):
    api.fail(SEARCH, *[Reply(200, "<html>maintenance</html>", {}, "text/html")] * 3)
    with pytest.raises(TransientError, match="not JSON"):
        make().fetch(None)


def test_an_answer_cut_off_mid_body_is_retried(api, hn, make):
    """A connection reset mid-answer (ChunkedEncodingError in requests) is worth another try."""
    hn.story(1, "Lumora Glow teardown", NOW - 600)
    api.fail(SEARCH, Reply(200, {"hits": [{"objectID": "1"}] * 50}, cut_after=40))

    result = make().fetch(None)

    assert [m.native_id for m in result.mentions] == ["1"]
    assert len(api.calls(SEARCH)) == 2


def test_malformed_hits_are_skipped_one_by_one(api, hn, make):
    hn.story(1, "Lumora Glow teardown", NOW - 600)
    hn.hits.append({"objectID": "7", "title": "lumora", "created_at_i": "soon", "_tags": ["story"]})
    hn.hits.append(
        {
            "objectID": "8",
            "title": None,
            "story_text": "lumora",
            "created_at_i": NOW - 50,
            "_tags": ["story"],
        }
    )

    result = make().fetch(None)

    assert [m.native_id for m in result.mentions] == ["1"]
    assert sorted(result.rejected) == [
        "hit 7: 'created_at_i' is not a whole number: 'soon'",
        "hit 8: 'title' is not a string",
    ]


def test_restart_between_fetch_and_commit_stores_each_item_once(
    api, hn, make, engine, pipeline_for
):
    hn.story(1, "Lumora Glow teardown", NOW - 600)
    hn.story(2, "Lumora support is great", NOW - 500)
    source = make()
    source.fetch(None)  # fetched, then the process died before the commit
    pipeline = pipeline_for(source)

    assert pipeline.collect(source).stored == 2
    hn.story(3, "Lumora again", NOW - 100)
    again = pipeline.collect(source)

    assert (again.stored, again.already_stored) == (1, 0)
    assert sorted(m.native_id for m in stored(engine, "hn")) == ["1", "2", "3"]


@pytest.mark.parametrize(
    "mark",
    [{"after": "2026-11-20T12:00:00Z"}, {"after": float("inf")}, {"after": 1, "seen": 3}, [5]],
)
def test_a_hand_edited_cursor_is_logged_and_the_backfill_read_again(api, hn, make, mark, caplog):
    hn.story(1, "Lumora Glow teardown", NOW - 600)

    result = make().fetch(json.dumps({"lumora": mark}))

    assert [m.native_id for m in result.mentions] == ["1"]
    assert "source hn, query 'lumora': unreadable cursor" in caplog.text
    assert make().fetch(result.cursor).mentions == []  # a good cursor again


def test_an_unreachable_server_is_transient(settings):
    with FakeAPI() as gone:
        url = f"{gone.url}/api/v1/"
    config = HackerNewsConfig(type="hackernews", name="hn", base_url=url, queries=["lumora"])
    source = HackerNewsSource.from_config(config, settings, policy=FAST)
    with pytest.raises(TransientError, match="ConnectionError"):
        source.fetch(None)


@pytest.mark.slow
def test_killed_between_fetch_and_commit_then_rerun_stores_each_hit_once(api, hn, tmp_path, engine):
    """A real SIGKILL after the fetch (failpoint), then a clean run: the cursor had not moved,
    the same hits are fetched again and each is stored once."""
    hn.story(1, "Lumora Glow teardown", NOW - 600)
    hn.comment(2, "lumora support never answers", NOW - 300)
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["sources"] = [
        {
            "name": "hn",
            "type": "hackernews",
            "base_url": f"{api.url}/api/v1/",
            "queries": ["lumora"],
        }
    ]
    data["model"]["name"] = "baseline"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    killed = _run_once(config, "after_fetch")
    assert killed.returncode == -signal.SIGKILL
    assert stored(engine, "hn") == []
    assert _run_once(config).returncode == 0

    assert sorted(m.native_id for m in stored(engine, "hn")) == ["1", "2"]
    filters = [c.query["numericFilters"] for c in api.calls(SEARCH)]
    assert len(filters) == 2
    since = [int(f.split(">=")[1]) for f in filters]
    assert all(t < NOW - 600 for t in since)  # both from the backfill: no cursor was committed
