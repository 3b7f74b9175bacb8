"""App Store reviews collector against a local server serving Apple's customer-reviews JSON feed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from config.schema import AppStoreSource as AppStoreConfig
from config.schema import load_settings
from listener.sources.appstore import AppStoreReviews
from listener.sources.retry import TransientError
from tests.fake_apis import FAST, FakeAPI, Reply, Request, cursor_of, pipeline_alone, stored_ids

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
APP = "1234567890"
PER_PAGE = 50


def entry(number: int, *, minutes_ago: int, rating: int = 4, text: str | None = None) -> dict:
    """One review as Apple's feed spells it (every value wrapped in a `label`)."""
    at = (NOW - timedelta(minutes=minutes_ago)).astimezone(
        __import__("zoneinfo").ZoneInfo("America/Los_Angeles")
    )
    return {
        "author": {
            "uri": {"label": f"https://itunes.apple.com/us/reviews/id{9000 + number}"},
            "name": {"label": f"reviewer{number}"},
            "label": "",
        },
        "updated": {"label": at.isoformat()},
        "im:rating": {"label": str(rating)},
        "im:version": {"label": "3.2.1"},
        "id": {"label": str(10_000 + number)},
        "title": {"label": f"Title {number}"},
        "content": {
            "label": text or f"Review number {number} about the Lumora app",
            "attributes": {"type": "text"},
        },
        "link": {
            "attributes": {"rel": "related", "href": "https://itunes.apple.com/us/review?id=1"}
        },
        "im:voteSum": {"label": "0"},
        "im:contentType": {"attributes": {"term": "Application", "label": "Application"}},
        "im:voteCount": {"label": str(number)},
    }


class AppleFeed:
    """Serves `reviews[country]` (newest first) in pages of 50, 10 pages at most."""

    def __init__(self, api: FakeAPI) -> None:
        self.reviews: dict[str, list[dict]] = {"us": [], "de": []}
        api.route("GET", "/", self.answer)

    def answer(self, request: Request) -> Reply:
        parts = request.path.strip("/").split("/")
        # /{country}/rss/customerreviews/page={n}/id={app}/sortby=mostrecent/json
        country, page = parts[0], int(parts[3].removeprefix("page="))
        assert parts[4] == f"id={APP}"
        assert parts[5] == "sortby=mostrecent"
        assert parts[6] == "json"
        chunk = self.reviews.get(country, [])[(page - 1) * PER_PAGE : page * PER_PAGE]
        feed: dict = {
            "author": {
                "name": {"label": "iTunes Store"},
                "uri": {"label": "http://www.apple.com/itunes/"},
            },
            "updated": {"label": NOW.isoformat()},
            "id": {"label": request.path},
            "link": [{"attributes": {"rel": "self", "href": request.path}}],
        }
        if len(chunk) == 1:
            feed["entry"] = chunk[0]  # Apple's JSON feed drops the list for a single entry
        elif chunk:
            feed["entry"] = chunk
        return Reply(200, {"feed": feed})


@pytest.fixture
def apple(api):
    return api, AppleFeed(api)


def make_source(api: FakeAPI, *, countries=("us",), max_items=500, backfill=timedelta(days=7)):
    return AppStoreReviews(
        "appstore-main",
        app_ids=[APP],
        countries=list(countries),
        max_items=max_items,
        backfill=backfill,
        base_url=api.url,
        retry=FAST,
        clock=lambda: NOW,
    )


def test_first_run_maps_reviews_and_stops_at_the_backfill_window(apple):
    api, feed = apple
    feed.reviews["us"] = [
        entry(3, minutes_ago=5, rating=1, text="Crashes at login"),
        entry(2, minutes_ago=60),
        entry(1, minutes_ago=60 * 24 * 30),
    ]
    result = make_source(api).fetch(None)

    assert [m.native_id for m in result.mentions] == ["10003", "10002"]  # #1 is past 7 days
    first = result.mentions[0]
    assert first.source == "appstore"
    assert first.collector == "appstore-main"
    assert first.rating == 1
    assert first.text == "Title 3\nCrashes at login"
    assert first.author_handle == "reviewer3"
    assert first.engagement == 3  # "helpful?" votes
    assert first.created_at == NOW - timedelta(minutes=5)
    assert first.created_at.tzinfo == UTC
    assert first.url == f"https://apps.apple.com/us/app/id{APP}?see-all=reviews"
    assert first.raw["version"] == "3.2.1"
    assert first.raw["country"] == "us"
    json.dumps(first.raw)  # the raw payload is storable as JSON
    assert result.rejected == []


def test_incremental_run_reads_only_new_reviews_and_stops_at_the_first_page(apple):
    api, feed = apple
    feed.reviews["us"] = [entry(2, minutes_ago=30), entry(1, minutes_ago=40)]
    source = make_source(api)
    first = source.fetch(None)
    feed.reviews["us"] = [entry(4, minutes_ago=1), entry(3, minutes_ago=2), *feed.reviews["us"]]
    api.requests.clear()

    second = source.fetch(first.cursor)

    assert [m.native_id for m in second.mentions] == ["10004", "10003"]
    assert [r.path.split("/")[4] for r in api.requests] == ["page=1"]
    assert source.fetch(second.cursor).mentions == []


def test_pagination_reads_every_page_and_each_country(apple):
    api, feed = apple
    feed.reviews["us"] = [entry(n, minutes_ago=200 - n) for n in range(120, 0, -1)]
    feed.reviews["de"] = [entry(500, minutes_ago=3)]  # a single entry: an object, not a list
    result = make_source(api, countries=("us", "de")).fetch(None)

    assert len(result.mentions) == 121
    assert len({m.native_id for m in result.mentions}) == 121
    pages = sorted(r.path.split("/")[4] for r in api.calls("/us/"))
    assert pages == ["page=1", "page=2", "page=3"]


def test_budget_ends_the_cycle_at_a_page_and_the_next_cycle_resumes_without_loss(apple):
    api, feed = apple
    feed.reviews["us"] = [entry(n, minutes_ago=300 - n) for n in range(120, 0, -1)]
    source = make_source(api, max_items=60)

    first = source.fetch(None)
    assert len(first.mentions) == 100  # two whole pages: the budget is checked per page
    feed.reviews["us"] = [entry(121, minutes_ago=0), *feed.reviews["us"]]  # arrives meanwhile
    second = source.fetch(first.cursor)
    third = source.fetch(second.cursor)

    seen = [m.native_id for m in first.mentions + second.mentions + third.mentions]
    assert sorted(set(seen)) == sorted(str(10_000 + n) for n in range(1, 122))
    assert source.fetch(third.cursor).mentions == []


def test_429_with_retry_after_then_success(apple):
    api, feed = apple
    feed.reviews["us"] = [entry(1, minutes_ago=1)]
    api.fail("/us/", Reply(429, {"error": "rate"}, headers={"Retry-After": "0"}))

    result = make_source(api).fetch(None)

    assert [m.native_id for m in result.mentions] == ["10001"]
    assert len(api.calls("/us/")) == 2


def test_html_error_page_is_retried_not_parsed(apple):
    api, feed = apple
    feed.reviews["us"] = [entry(1, minutes_ago=1)]
    api.fail("/us/", Reply(200, "<html><body>Bad gateway</body></html>", content_type="text/html"))

    assert len(make_source(api).fetch(None).mentions) == 1


def test_500_storm_gives_up_for_the_cycle_and_records_the_error(apple, engine):
    api, feed = apple
    feed.reviews["us"] = [entry(1, minutes_ago=1)]
    source = make_source(api)
    pipeline = pipeline_alone(engine, source)
    api.fail("/us/", Reply(500, "Internal Server Error", content_type="text/plain"), times=10)

    outcome = pipeline.collect(source)

    assert outcome.error is not None
    assert "HTTP 500" in outcome.error
    assert len(api.calls("/us/")) == 3  # the policy's attempts, then give up
    state = cursor_of(engine, "appstore-main")
    assert state.cursor is None
    assert state.consecutive_failures == 1
    assert stored_ids(engine, "appstore") == []


def test_malformed_reviews_are_skipped_one_by_one_with_the_reason(apple, engine):
    api, feed = apple
    no_rating = entry(3, minutes_ago=1)
    no_rating["im:rating"] = {"label": "five"}
    no_text = entry(2, minutes_ago=2)
    del no_text["content"]
    feed.reviews["us"] = [no_rating, no_text, "garbage", entry(1, minutes_ago=3)]
    source = make_source(api)

    outcome = pipeline_alone(engine, source).collect(source)

    assert stored_ids(engine, "appstore") == ["10001"]
    assert len(outcome.rejected) == 3
    assert any("'im:rating' is not a number" in r for r in outcome.rejected)
    assert any("content.label" in r for r in outcome.rejected)
    assert all(r.startswith(f"app {APP} (us)") for r in outcome.rejected)


def test_restart_between_fetch_and_commit_stores_each_review_once(apple, engine):
    api, feed = apple
    feed.reviews["us"] = [entry(2, minutes_ago=1), entry(1, minutes_ago=2)]
    source = make_source(api)
    source.fetch(None)  # fetched, then the process died before the commit: cursor not stored

    outcome = pipeline_alone(engine, source).collect(source)
    again = pipeline_alone(engine, source).collect(source)

    assert outcome.stored == 2
    assert again.fetched == 0
    assert stored_ids(engine, "appstore") == ["10001", "10002"]


def test_transient_error_type_for_a_dead_server():
    source = AppStoreReviews(
        "appstore-main",
        app_ids=[APP],
        countries=["us"],
        max_items=10,
        base_url="http://127.0.0.1:9",
        retry=FAST,
        clock=lambda: NOW,
    )
    with pytest.raises(TransientError, match="cannot connect"):
        source.fetch(None)


def test_config_builds_the_source_with_the_platform_default_url():
    settings = load_settings()
    config = AppStoreConfig(name="appstore", type="appstore", app_ids=[APP], countries=["us"])
    source = AppStoreReviews.from_config(config, settings)
    assert source.base_url == "https://itunes.apple.com"
    assert source.max_items == 500


def test_an_app_missing_from_one_store_is_skipped_and_the_other_countries_read(apple):
    api, feed = apple
    feed.reviews["de"] = [entry(1, minutes_ago=1)]
    api.fail("/us/", Reply(404, "<html>Not Found</html>", content_type="text/html"))

    result = make_source(api, countries=("us", "de")).fetch(None)

    assert [m.native_id for m in result.mentions] == ["10001"]
    assert result.rejected == [f"app {APP} (us) page 1: HTTP 404; skipped"]
    assert json.loads(result.cursor).keys() == {f"{APP}/de"}  # us keeps its (empty) cursor


def test_a_slow_answer_times_out_and_is_retried(apple):
    import time

    api, feed = apple
    feed.reviews["us"] = [entry(1, minutes_ago=1)]
    answer = feed.answer
    calls = []

    def slow_once(request: Request) -> Reply:
        calls.append(request)
        if len(calls) == 1:
            time.sleep(0.5)
        return answer(request)

    api.route("GET", "/us/", slow_once)
    source = make_source(api)
    source.timeout = 0.1

    assert [m.native_id for m in source.fetch(None).mentions] == ["10001"]
    assert len(calls) == 2


@pytest.mark.parametrize(
    "cursor",
    [
        "not json",
        "[1, 2]",
        json.dumps({f"{APP}/us": {"since": "2026-11-20 12:00 UTC"}}),  # edited by hand
        json.dumps({f"{APP}/us": {"since": "2026-11-20T12:00:00"}}),  # no offset
        json.dumps({f"{APP}/us": {"seen": "10002"}}),
        json.dumps({f"{APP}/us": {"resume": 2}}),
        json.dumps({f"{APP}/us": "x"}),
    ],
)
def test_an_unreadable_cursor_restarts_from_the_backfill_window(apple, cursor, caplog):
    api, feed = apple
    feed.reviews["us"] = [entry(2, minutes_ago=5), entry(1, minutes_ago=60 * 24 * 30)]

    result = make_source(api).fetch(cursor)

    assert [m.native_id for m in result.mentions] == ["10002"]
    assert "unreadable cursor" in caplog.text
    assert make_source(api).fetch(result.cursor).mentions == []  # a good cursor again
