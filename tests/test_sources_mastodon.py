"""Mastodon collector through Mastodon.py against a local server speaking Mastodon's REST API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from config.schema import MastodonSource as MastodonConfig
from config.schema import load_settings
from listener.sources import NotConfigured, SourceError
from listener.sources.mastodon_source import MastodonTimelines, connect, html_to_text
from tests.fake_apis import FAST, FakeAPI, Reply, Request, cursor_of, pipeline_alone, stored_ids

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TAG_PATH = "/api/v1/timelines/tag/lumora"
SEARCH_PATH = "/api/v2/search"
STATUS_PATH = "/api/v1/statuses/"


def status(number: int, *, minutes_ago: int, html: str | None = None, lang: str | None = "en"):
    """A status entity as Mastodon documents it (trimmed to the fields a client reads)."""
    return {
        "id": str(109_000_000_000_000_000 + number),
        "created_at": (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", ".000Z"),
        "in_reply_to_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": "public",
        "language": lang,
        "uri": f"https://social.example/users/anna/statuses/{number}",
        "url": f"https://social.example/@anna/{number}",
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 1,
        "content": html
        or f'<p>My <a href="https://social.example/tags/lumora">#lumora</a> lamp '
        f"number {number} broke &amp; support is silent</p><p>second line</p>",
        "reblog": None,
        "account": {
            "id": "42",
            "username": "anna",
            "acct": "anna@social.example",
            "display_name": "Anna B.",
            "followers_count": 1234,
            "url": "https://social.example/@anna",
        },
        "media_attachments": [],
        "mentions": [],
        "tags": [{"name": "lumora", "url": "https://social.example/tags/lumora"}],
        "emojis": [],
    }


class Instance:
    """Hashtag timeline and status search over `statuses`, with Mastodon's id paging."""

    def __init__(self, api: FakeAPI) -> None:
        self.statuses: list[dict] = []
        api.route("GET", TAG_PATH, self.timeline)
        api.route("GET", SEARCH_PATH, self.search)
        api.route("GET", STATUS_PATH, self.status)
        api.route(
            "GET",
            "/api/v2/instance",
            lambda _r: Reply(
                200,
                {
                    "domain": "social.example",
                    "version": "4.3.0",
                    "configuration": {
                        "timelines_access": {
                            "hashtag_feeds": {"local": "public", "remote": "public"}
                        }
                    },
                },
            ),
        )

    def _window(self, request: Request) -> list[dict]:
        limit = int(request.query.get("limit", 20))
        ordered = sorted(self.statuses, key=lambda s: int(s["id"]), reverse=True)
        if "min_id" in request.query:  # the page immediately after min_id
            newer = [s for s in ordered if int(s["id"]) > int(request.query["min_id"])]
            return newer[-limit:]
        if "max_id" in request.query:
            ordered = [s for s in ordered if int(s["id"]) < int(request.query["max_id"])]
        return ordered[:limit]

    def timeline(self, request: Request) -> Reply:
        page = self._window(request)
        headers = {}
        if page:
            headers["Link"] = (
                f'<http://x{TAG_PATH}?max_id={page[-1]["id"]}>; rel="next", '
                f'<http://x{TAG_PATH}?min_id={page[0]["id"]}>; rel="prev"'
            )
        return Reply(200, page, headers=headers)

    def status(self, request: Request) -> Reply:
        wanted = request.path.removeprefix(STATUS_PATH)
        found = next((s for s in self.statuses if s["id"] == wanted), None)
        return Reply(200, found) if found else Reply(404, {"error": "Record not found"})

    def search(self, request: Request) -> Reply:
        if request.headers.get("authorization") != "Bearer mastodon-test-token":
            return Reply(401, {"error": "The access token is invalid"})
        assert request.query["type"] == "statuses"
        # Search filters by min_id/max_id but always answers the newest matches first.
        q = request.query
        found = sorted(self.statuses, key=lambda s: int(s["id"]), reverse=True)
        found = [s for s in found if int(s["id"]) > int(q.get("min_id", 0))]
        found = [s for s in found if "max_id" not in q or int(s["id"]) < int(q["max_id"])]
        page = found[: int(q.get("limit", 20))]
        return Reply(200, {"accounts": [], "statuses": page, "hashtags": []})


@pytest.fixture
def instance(api):
    return api, Instance(api)


def make_source(api: FakeAPI, *, hashtags=("lumora",), queries=(), token=None, max_items=500):
    return MastodonTimelines(
        "mastodon-main",
        api=connect(api.url, token),
        hashtags=list(hashtags),
        queries=list(queries),
        max_items=max_items,
        retry=FAST,
        clock=lambda: NOW,
    )


def test_first_run_maps_statuses_and_stops_at_the_backfill_window(instance):
    api, server = instance
    server.statuses = [
        status(1, minutes_ago=60 * 24 * 10),
        status(2, minutes_ago=30),
        status(3, minutes_ago=5, lang="de"),
    ]
    result = make_source(api).fetch(None)

    assert [m.native_id for m in result.mentions] == [
        server.statuses[2]["id"],
        server.statuses[1]["id"],
    ]
    newest = result.mentions[0]
    assert newest.source == "mastodon"
    assert newest.collector == "mastodon-main"
    assert newest.text == "My #lumora lamp number 3 broke & support is silent\n\nsecond line"
    assert newest.author_handle == "anna@social.example"
    assert newest.author_name == "Anna B."
    assert newest.author_followers == 1234
    assert newest.engagement == 1  # favourites, reblogs, replies
    assert newest.language == "de"
    assert newest.created_at == NOW - timedelta(minutes=5)
    assert newest.url == "https://social.example/@anna/3"
    json.dumps(newest.raw)
    assert json.loads(result.cursor) == {"tag:lumora": server.statuses[2]["id"]}


def test_incremental_runs_ask_for_statuses_after_the_cursor(instance):
    api, server = instance
    server.statuses = [status(1, minutes_ago=10)]
    source = make_source(api)
    first = source.fetch(None)
    server.statuses += [status(2, minutes_ago=2), status(3, minutes_ago=1)]

    second = source.fetch(first.cursor)

    assert sorted(m.native_id for m in second.mentions) == [
        server.statuses[1]["id"],
        server.statuses[2]["id"],
    ]
    assert api.calls(TAG_PATH)[-1].query["min_id"] == server.statuses[0]["id"]
    assert source.fetch(second.cursor).mentions == []


def test_pages_of_40_and_a_budget_cut_loses_nothing(instance):
    api, server = instance
    server.statuses = [status(0, minutes_ago=100)]
    source = make_source(api, max_items=50)
    cursor = source.fetch(None).cursor
    server.statuses += [status(n, minutes_ago=90 - n // 2) for n in range(1, 101)]

    seen: list[str] = []
    for _ in range(3):
        result = source.fetch(cursor)
        seen += [m.native_id for m in result.mentions]
        cursor = result.cursor
    assert sorted(seen) == sorted(s["id"] for s in server.statuses[1:])
    assert {r.query["limit"] for r in api.calls(TAG_PATH)[1:]} <= {"40", "10"}


@pytest.mark.parametrize(
    ("hashtags", "queries", "token"),
    [(("lumora",), (), None), ((), ("lumora",), "mastodon-test-token")],
)
def test_a_first_run_cut_by_the_budget_resumes_next_cycle(instance, hashtags, queries, token):
    """100 posts inside the backfill window and a budget of 50: none are dropped."""
    api, server = instance
    server.statuses = [status(n, minutes_ago=3000 - n * 20) for n in range(100)]
    too_old = status(-1, minutes_ago=60 * 24 * 8)  # older than the backfill window
    server.statuses.append(too_old)
    source = make_source(api, hashtags=hashtags, queries=queries, token=token, max_items=50)

    first = source.fetch(None)
    server.statuses.append(status(100, minutes_ago=0))  # posted while the pass is unfinished
    seen = [m.native_id for m in first.mentions]
    cursor = first.cursor
    for _ in range(3):
        result = source.fetch(cursor)
        seen += [m.native_id for m in result.mentions]
        cursor = result.cursor

    assert len(first.mentions) == 50
    assert sorted(seen) == sorted(s["id"] for s in server.statuses if s is not too_old)
    assert len(seen) == len(set(seen))
    (mark,) = json.loads(cursor).values()
    newest = server.statuses[-1]["id"]
    assert mark == (newest if hashtags else {"after": newest})


def test_search_needs_a_token_and_uses_it(instance, monkeypatch):
    api, server = instance
    server.statuses = [status(1, minutes_ago=1)]
    settings = load_settings()
    config = MastodonConfig(name="m", type="mastodon", queries=["lumora"], base_url=api.url)
    monkeypatch.delenv("MASTODON_ACCESS_TOKEN", raising=False)
    with pytest.raises(NotConfigured, match="MASTODON_ACCESS_TOKEN not set"):
        MastodonTimelines.from_config(config, settings)

    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", "mastodon-test-token")
    source = MastodonTimelines.from_config(config, settings)
    source.clock = lambda: NOW  # from_config gives the real clock; the statuses are dated by NOW
    assert [m.native_id for m in source.fetch(None).mentions] == [server.statuses[0]["id"]]


def test_a_refused_token_is_a_source_error_not_retried(instance):
    api, server = instance
    server.statuses = [status(1, minutes_ago=1)]
    source = make_source(api, hashtags=(), queries=("lumora",), token="wrong")
    with pytest.raises(SourceError, match="HTTP 401"):
        source.fetch(None)
    assert len(api.calls(SEARCH_PATH)) == 1


def test_429_then_success(instance):
    api, server = instance
    server.statuses = [status(1, minutes_ago=1)]
    api.fail(
        TAG_PATH,
        Reply(
            429,
            {"error": "Too many requests"},
            headers={
                "X-RateLimit-Limit": "300",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": (NOW + timedelta(seconds=1)).isoformat(),
            },
        ),
    )

    result = make_source(api).fetch(None)

    assert len(result.mentions) == 1
    assert len(api.calls(TAG_PATH)) == 2


def test_500_storm_gives_up_for_the_cycle_and_records_it(instance, engine):
    api, server = instance
    server.statuses = [status(1, minutes_ago=1)]
    source = make_source(api)
    api.fail(TAG_PATH, Reply(502, "<html>Bad Gateway</html>", content_type="text/html"), times=5)

    outcome = pipeline_alone(engine, source).collect(source)

    assert "HTTP 502" in outcome.error
    assert len(api.calls(TAG_PATH)) == 3
    state = cursor_of(engine, "mastodon-main")
    assert state.cursor is None
    assert state.last_error.startswith("TransientError")


def test_malformed_statuses_are_skipped_with_the_reason(instance, engine):
    api, server = instance
    no_account = status(2, minutes_ago=2)
    del no_account["account"]
    bad_content = status(3, minutes_ago=1)
    bad_content["content"] = None
    server.statuses = [status(1, minutes_ago=3), no_account, bad_content]
    source = make_source(api)

    outcome = pipeline_alone(engine, source).collect(source)

    assert stored_ids(engine, "mastodon") == [server.statuses[0]["id"]]
    assert sorted(outcome.rejected) == sorted(
        [
            f"tag:lumora: status {no_account['id']}: missing 'account'",
            f"tag:lumora: status {bad_content['id']}: missing 'content' (HTML string)",
        ]
    )


def test_restart_between_fetch_and_commit_stores_each_status_once(instance, engine):
    api, server = instance
    server.statuses = [status(1, minutes_ago=2), status(2, minutes_ago=1)]
    source = make_source(api)
    source.fetch(None)  # crash before the commit

    first = pipeline_alone(engine, source).collect(source)
    server.statuses.append(status(3, minutes_ago=0))
    again = pipeline_alone(engine, source).collect(source)

    assert first.stored == 2
    assert again.stored == 1
    assert again.already_stored == 0
    assert len(stored_ids(engine, "mastodon")) == 3


def test_reactions_are_read_again_one_status_a_request_and_deleted_ones_left_out(instance):
    api, server = instance
    server.statuses = [status(n, minutes_ago=30 + n) for n in range(45)]
    server.statuses[0].update(favourites_count=300, reblogs_count=50, replies_count=20)
    ids = [s["id"] for s in server.statuses]

    counts = make_source(api).reactions([*ids[:3], "109000000000999999", *ids[3:]])

    assert counts[ids[0]] == 370
    assert counts[ids[1]] == 1
    assert "109000000000999999" not in counts  # deleted: 404, left out
    assert len(counts) == 39  # the first 40 asked for, one of them gone
    assert len(api.calls(STATUS_PATH)) == 40


def test_reactions_server_errors_are_transient_and_retried(instance):
    api, server = instance
    server.statuses = [status(1, minutes_ago=5)]
    api.fail(STATUS_PATH, Reply(503, {"error": "busy"}))

    assert make_source(api).reactions([server.statuses[0]["id"]]) == {server.statuses[0]["id"]: 1}
    assert len(api.calls(STATUS_PATH)) == 2


def test_a_status_gone_is_left_out_and_a_token_without_read_scope_says_so(instance):
    api, server = instance
    server.statuses = [status(1, minutes_ago=5), status(2, minutes_ago=4)]
    first, second = (s["id"] for s in server.statuses)
    api.fail(f"{STATUS_PATH}{first}", Reply(410, {"error": "Gone"}))

    assert make_source(api).reactions([first, second]) == {second: 1}

    api.fail(STATUS_PATH, Reply(403, {"error": "This action is outside the authorized scopes"}))
    with pytest.raises(SourceError, match="give it the `read` scope"):
        make_source(api).reactions([second])


def test_html_to_text_keeps_breaks_and_unescapes():
    assert html_to_text("<p>a<br>b &lt;3</p><p>c</p>") == "a\nb <3\n\nc"


def test_search_reads_down_to_the_cursor_and_a_budget_cut_resumes(instance):
    api, server = instance
    server.statuses = [status(0, minutes_ago=100)]
    source = make_source(
        api, hashtags=(), queries=("lumora",), token="mastodon-test-token", max_items=50
    )
    cursor = source.fetch(None).cursor
    server.statuses += [status(n, minutes_ago=90 - n // 2) for n in range(1, 101)]

    seen: list[str] = []
    for _ in range(3):
        result = source.fetch(cursor)
        seen += [m.native_id for m in result.mentions]
        cursor = result.cursor
    server.statuses.append(status(101, minutes_ago=0))
    seen += [m.native_id for m in source.fetch(cursor).mentions]

    assert sorted(seen) == sorted(s["id"] for s in server.statuses[1:])
    assert len(seen) == len(set(seen))


def test_an_unreadable_cursor_restarts_from_the_backfill_window(instance, caplog):
    api, server = instance
    server.statuses = [status(1, minutes_ago=60 * 24 * 10), status(2, minutes_ago=30)]

    result = make_source(api).fetch("{not json")

    assert [m.native_id for m in result.mentions] == [server.statuses[1]["id"]]
    assert "unreadable cursor" in caplog.text
    assert json.loads(result.cursor) == {"tag:lumora": server.statuses[1]["id"]}
