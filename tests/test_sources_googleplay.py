"""Google Play reviews collector against a local server answering Play's batchexecute RPC."""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from listener.sources.googleplay import GooglePlayReviews, parse_page
from listener.sources.retry import TransientError
from tests.fake_apis import FAST, FakeAPI, Reply, Request, cursor_of, pipeline_alone, stored_ids

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
APP = "com.lumora.app"
RPC_PATH = "/_/PlayStoreUi/data/batchexecute"


def review(number: int, *, minutes_ago: int, score: int = 4, text: str | None = None) -> list:
    """One review array in Play's positional layout (id, user, score, -, text, [secs, nanos]...)."""
    seconds = int((NOW - timedelta(minutes=minutes_ago)).timestamp())
    return [
        f"gp:review-{number}",
        [f"User {number}", [None, 2, None, [None, None, "https://play-lh.example/avatar"]]],
        score,
        None,
        text or f"Review {number}: the Lumora app keeps logging me out",
        [seconds, 123000000],
        3,
        None if number % 2 else [None, "Thanks, we are on it", [seconds + 60, 0]],
        None,
        None,
        "5.1.0",
    ]


def batchexecute(reviews: list, token: str | None) -> str:
    data = [reviews, [None, token]] if token else [reviews]
    envelope = [
        ["wrb.fr", "oCPfdb", json.dumps(data), None, None, None, "generic"],
        ["di", 48],
        ["af.httprm", 47, "-5419425542958153712", 9],
    ]
    return ")]}'\n\n" + json.dumps(envelope)


def rpc_args(request: Request) -> tuple[str, int, str | None, int]:
    """(app id, count, token, sort) from the f.req form field the client posted."""
    freq = json.loads(parse_qs(request.body)["f.req"][0])
    inner = json.loads(freq[0][0][1])
    paging = inner[1][2]
    return inner[2][0], paging[0], paging[2] if len(paging) > 2 else None, inner[1][1]


class PlayStore:
    """Serves `reviews[lang]` newest first, `count` at a time, with continuation tokens."""

    def __init__(self, api: FakeAPI) -> None:
        self.reviews: dict[str, list[list]] = {"en": [], "de": []}
        api.route("POST", RPC_PATH, self.answer)

    def answer(self, request: Request) -> Reply:
        app, count, token, sort = rpc_args(request)
        assert app == APP
        assert sort == 2
        assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
        items = self.reviews[request.query["hl"]]
        start = int(token.removeprefix("tok-")) if token else 0
        chunk = items[start : start + count]
        more = start + count < len(items)
        return Reply(
            200,
            batchexecute(chunk, f"tok-{start + count}" if more else None),
            content_type="application/json; charset=utf-8",
        )


@pytest.fixture
def play(api):
    return api, PlayStore(api)


def make_source(api: FakeAPI, *, locales=("en-US",), max_items=500):
    return GooglePlayReviews(
        "play-main",
        app_ids=[APP],
        locales=list(locales),
        max_items=max_items,
        base_url=api.url,
        retry=FAST,
        clock=lambda: NOW,
    )


def test_first_run_maps_reviews_with_rating_version_and_utc_time(play):
    api, store = play
    store.reviews["en"] = [review(2, minutes_ago=5, score=1), review(1, minutes_ago=60 * 24 * 9)]
    result = make_source(api).fetch(None)

    assert [m.native_id for m in result.mentions] == ["gp:review-2"]  # #1 is past the backfill
    mention = result.mentions[0]
    assert mention.source == "googleplay"
    assert mention.rating == 1
    assert mention.language == "en"
    assert mention.created_at == (NOW - timedelta(minutes=5)).replace(second=0)
    assert mention.author_name == "User 2"
    assert mention.engagement == 3  # thumbs up
    assert (
        mention.url == f"https://play.google.com/store/apps/details?id={APP}&reviewId=gp:review-2"
    )
    assert mention.raw["version"] == "5.1.0"
    assert mention.raw["reply"] == "Thanks, we are on it"
    json.dumps(mention.raw)
    assert api.calls(RPC_PATH)[0].query == {"hl": "en", "gl": "us"}


def test_incremental_run_returns_only_newer_reviews(play):
    api, store = play
    store.reviews["en"] = [review(2, minutes_ago=10), review(1, minutes_ago=20)]
    source = make_source(api)
    first = source.fetch(None)
    store.reviews["en"].insert(0, review(3, minutes_ago=1))

    second = source.fetch(first.cursor)

    assert [m.native_id for m in second.mentions] == ["gp:review-3"]
    assert source.fetch(second.cursor).mentions == []


def test_continuation_tokens_page_through_and_the_budget_resumes_next_cycle(play):
    api, store = play
    store.reviews["en"] = [review(n, minutes_ago=500 - n) for n in range(450, 0, -1)]
    source = make_source(api, max_items=300)

    first = source.fetch(None)
    tokens = [rpc_args(r)[2] for r in api.calls(RPC_PATH)]
    assert tokens == [None, "tok-200"]
    assert len(first.mentions) == 300
    second = source.fetch(first.cursor)

    ids = {m.native_id for m in first.mentions + second.mentions}
    assert len(ids) == 450
    assert rpc_args(api.calls(RPC_PATH)[2])[2] == "tok-300"  # resumed where the budget stopped


def test_each_locale_is_its_own_list(play):
    api, store = play
    store.reviews["en"] = [review(1, minutes_ago=1)]
    store.reviews["de"] = [review(2, minutes_ago=1, text="Die App stürzt ab")]
    result = make_source(api, locales=("en-US", "de-DE")).fetch(None)

    assert {(m.native_id, m.language) for m in result.mentions} == {
        ("gp:review-1", "en"),
        ("gp:review-2", "de"),
    }
    assert json.loads(result.cursor).keys() == {f"{APP}/en-US", f"{APP}/de-DE"}


def test_429_then_success_and_the_gateway_rate_limit_answer_is_retried(play):
    api, store = play
    store.reviews["en"] = [review(1, minutes_ago=1)]
    api.fail(RPC_PATH, Reply(429, "Too Many Requests", headers={"Retry-After": "0"}))
    api.fail(
        RPC_PATH,
        Reply(
            200,
            ')]}\'\n\n[["er",null,null,null,null,429,null,null,null,'
            '["com.google.play.gateway.proto.PlayGatewayError"]]]',
        ),
    )

    result = make_source(api).fetch(None)

    assert [m.native_id for m in result.mentions] == ["gp:review-1"]
    assert len(api.calls(RPC_PATH)) == 3


def test_500_storm_gives_up_for_the_cycle_and_keeps_the_cursor(play, engine):
    api, store = play
    store.reviews["en"] = [review(1, minutes_ago=1)]
    source = make_source(api)
    api.fail(RPC_PATH, Reply(503, "<html>unavailable</html>", content_type="text/html"), times=9)

    outcome = pipeline_alone(engine, source).collect(source)

    assert "HTTP 503" in outcome.error
    assert cursor_of(engine, "play-main").cursor is None
    assert stored_ids(engine, "googleplay") == []


def test_malformed_reviews_are_skipped_with_the_reason(play, engine):
    api, store = play
    bad_score = review(3, minutes_ago=1, score=9)
    no_time = review(2, minutes_ago=2)
    no_time[5] = None
    store.reviews["en"] = [bad_score, no_time, {"not": "an array"}, review(1, minutes_ago=3)]
    source = make_source(api)

    outcome = pipeline_alone(engine, source).collect(source)

    assert stored_ids(engine, "googleplay") == ["gp:review-1"]
    assert len(outcome.rejected) == 3
    assert any("score must be 1-5, got 9" in r for r in outcome.rejected)
    assert any("no time at [5][0]" in r for r in outcome.rejected)


def test_truncated_answer_is_transient():
    with pytest.raises(TransientError, match="not readable"):
        parse_page(')]}\'\n\n[["wrb.fr","oCPfdb","[[[\\"gp:1')


def test_restart_between_fetch_and_commit_stores_each_review_once(play, engine):
    api, store = play
    store.reviews["en"] = [review(2, minutes_ago=1), review(1, minutes_ago=2)]
    source = make_source(api)
    source.fetch(None)  # crash before the commit

    first = pipeline_alone(engine, source).collect(source)
    again = pipeline_alone(engine, source).collect(source)

    assert first.stored == 2
    assert again.fetched == 0
    assert stored_ids(engine, "googleplay") == ["gp:review-1", "gp:review-2"]


def test_importing_the_scraper_leaves_tls_verification_on():
    from listener.sources.googleplay import _scraper

    _scraper()
    assert ssl._create_default_https_context is ssl.create_default_context


def test_an_unknown_app_is_skipped_and_reported(play):
    api, store = play
    store.reviews["de"] = [review(1, minutes_ago=1)]
    api.fail(RPC_PATH, Reply(404, "<html>Not Found</html>", content_type="text/html"))

    result = make_source(api, locales=("en-US", "de-DE")).fetch(None)

    assert [m.native_id for m in result.mentions] == ["gp:review-1"]
    assert result.rejected == [f"app {APP} (en-US): no such app on Google Play (404); skipped"]
