"""A platform failing for several cycles, then recovering, seen through the daemon's own steps.

The App Store collector talks to a local server in Apple's feed shape that answers 429, 5xx, slow
(past the client's timeout) and garbage for four cycles; a replay source keeps collecting beside
it. The clock is simulated, so the pipeline's backoff is real but costs no waiting.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from config.schema import EXAMPLE_CONFIG, Settings, load_settings
from listener.cli import app
from listener.models import SourceCursor
from listener.pipeline import CycleReport, Pipeline
from listener.sources import SourceError, SourceSet
from listener.sources.appstore import AppStoreReviews
from listener.sources.httpjson import new_session, send
from listener.sources.replay import ReplaySource
from listener.sources.retry import TransientError
from listener.status import collect_status
from tests.conftest import write_feed
from tests.fake_apis import FAST, FakeAPI, Reply, Request, cursor_of, stored
from tests.test_alerts_slack_review import Clock
from tests.test_sources_appstore import APP, NOW, AppleFeed, entry

NAME = "appstore-main"
TIMEOUT_S = 0.1
OUTAGE = [  # one cycle each; every fetch tries three times (FAST)
    ("HTTP 429", Reply(429, {"error": "rate limited"}, {"Retry-After": "0"})),
    ("HTTP 503", Reply(503, "<html><h1>503 Service Unavailable</h1></html>", {}, "text/html")),
    ("timed out", None),  # the server answers after the client gave up
    ("not JSON", Reply(200, '{"feed": {"entry": [{"id": ', {}, "application/json")),
]


def _post(n: int) -> dict:
    return {"id": f"p{n}", "source": "twitter", "author": f"user{n}", "lang": "en",
            "text": f"Lumora order LM-{4_000_000 + n} is late again, day {n}",
            "created_at": (NOW + timedelta(minutes=n)).isoformat()}  # fmt: skip


class SlowFeed(AppleFeed):
    """Apple's feed that, while `slow` > 0, answers each request after the client's timeout."""

    slow = 0

    def answer(self, request: Request) -> Reply:
        if self.slow:
            self.slow -= 1
            time.sleep(TIMEOUT_S * 3)
        return super().answer(request)


@pytest.fixture
def apple(api):
    return api, SlowFeed(api)


def _settings(tmp_path: Path, api: FakeAPI, feed: Path) -> tuple[Path, Settings]:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["sources"] = [
        {"name": NAME, "type": "appstore", "app_ids": [APP], "countries": ["us"],
         "base_url": api.url, "interval": "5m"},
        {"name": "feed", "type": "replay", "paths": [str(feed)], "interval": "5m"},
    ]  # fmt: skip
    data["model"].update(name="baseline")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path, load_settings(path)


def _cycle(pipeline: Pipeline) -> dict:
    """What the daemon does when the sources' jobs fire: collect each (backoff respected),
    then process."""
    outcomes = {s.name: pipeline.collect(s) for s in pipeline.sources.enabled}
    pipeline.process(CycleReport())
    return outcomes


def _stored_ids(engine, collector: str) -> list[str]:
    return sorted(m.native_id for m in stored(engine, collector))


def test_a_platform_down_for_several_cycles_loses_nothing_and_status_shows_it(
    tmp_path, engine, apple
):
    api, apple_feed = apple
    feed_path = write_feed(tmp_path / "feed.jsonl", [_post(0)])
    config, settings = _settings(tmp_path, api, feed_path)
    clock = Clock(NOW)
    source = AppStoreReviews(
        NAME, app_ids=[APP], countries=["us"], max_items=500, base_url=api.url,
        retry=FAST, clock=clock, timeout=TIMEOUT_S,
    )  # fmt: skip
    replay = ReplaySource("feed", [feed_path], max_items=100)
    pipeline = Pipeline.build(
        settings, engine, sources=SourceSet(enabled=[source, replay], disabled={}), clock=clock
    )
    apple_feed.reviews["us"] = [entry(2, minutes_ago=10), entry(1, minutes_ago=20)]
    assert _cycle(pipeline)[NAME].stored == 2
    healthy_cursor = json.loads(_cursor(engine).cursor)
    reviews, posts = 2, 1

    for failures, (expected, reply) in enumerate(OUTAGE, start=1):
        # Reviews and posts keep arriving while Apple's feed is failing.
        reviews += 1
        apple_feed.reviews["us"].insert(0, entry(reviews, minutes_ago=-5 * failures))
        write_feed(feed_path, [_post(n) for n in range(posts + 1)])
        posts += 1
        clock.now = _cursor(engine).next_attempt_at or clock.now + timedelta(minutes=5)
        if reply is None:
            apple_feed.slow = 3
        else:
            api.fail("/us/", reply, times=3)

        outcomes = _cycle(pipeline)

        assert expected in outcomes[NAME].error
        assert outcomes["feed"].stored == 1  # the other source is unaffected
        _assert_outage_visible(
            engine, settings, clock.now, expected, failures=failures, healthy_cursor=healthy_cursor
        )
        skipped = pipeline.collect(source)  # before the backoff ends nothing is asked
        assert (skipped.skipped or "").startswith("backing off")

    assert _cli_status(config, 1)["sources"][NAME]["consecutive_failures"] == len(OUTAGE)
    backoffs = _cursor(engine).next_attempt_at - _cursor(engine).last_error_at
    assert backoffs >= timedelta(minutes=5 * 2 ** (len(OUTAGE) - 1) * 0.8)  # exponential

    clock.now = _cursor(engine).next_attempt_at
    recovered = _cycle(pipeline)

    assert (recovered[NAME].error, recovered[NAME].stored) == (None, len(OUTAGE))
    expected_ids = sorted(str(10_000 + n) for n in range(1, reviews + 1))
    assert _stored_ids(engine, NAME) == expected_ids  # every review once
    assert _stored_ids(engine, "feed") == sorted(f"p{n}" for n in range(posts))
    state = _cursor(engine)
    assert state.consecutive_failures == 0
    assert state.next_attempt_at is None
    newest = NOW + timedelta(minutes=5 * len(OUTAGE))
    assert json.loads(state.cursor)[f"{APP}/us"] == {
        "since": newest.isoformat(),
        "seen": [str(10_000 + reviews)],
    }
    clock.now += timedelta(minutes=5)
    assert _cycle(pipeline)[NAME].stored == 0  # the cursor is past everything read
    status = collect_status(engine, settings, now=clock.now)
    assert (status["healthy"], status["failing_sources"]) == (True, [])
    assert status["sources"][NAME]["last_error"] is None
    assert status["sources"][NAME]["last_success_at"] == clock.now.isoformat(timespec="seconds")
    assert status["backlog"] == {"collected": 0, "classified": 0, "responded": 0}
    # The CLI reads the real clock, days after this test's: recovered, but overdue by now.
    recovered = _cli_status(config, 1)
    assert (recovered["failing_sources"], recovered["overdue_sources"]) == (
        [],
        sorted([NAME, "feed"]),
    )


def _assert_outage_visible(
    engine, settings: Settings, now, expected: str, *, failures: int, healthy_cursor: dict
) -> None:
    """The cursor has not moved, the failure is counted, and `listener status` shows it."""
    state = _cursor(engine)
    assert state.consecutive_failures == failures
    assert json.loads(state.cursor) == healthy_cursor  # nothing committed past the outage
    status = collect_status(engine, settings, now=now)
    row = status["sources"][NAME]
    assert (status["healthy"], status["failing_sources"]) == (False, [NAME])
    assert expected in row["last_error"]
    assert row["consecutive_failures"] == failures
    assert row["backing_off_until"] == state.next_attempt_at.isoformat(timespec="seconds")
    assert status["sources"]["feed"]["last_error"] is None
    assert status["backlog"]["collected"] == 0


def _cursor(engine) -> SourceCursor:
    state = cursor_of(engine, NAME)
    assert state is not None
    return state


def _cli_status(config: Path, exit_code: int) -> dict:
    """`listener status --json`, as monitoring runs it (with the real clock): exit 1 while a
    source is failing."""
    result = CliRunner().invoke(app, ["status", "--json", "-c", str(config)])
    assert result.exit_code == exit_code, result.output
    return json.loads(result.output)


def test_a_replay_feed_is_read_in_steps_and_a_line_separator_in_a_text_is_no_line_break(tmp_path):
    texts = ["first\u2028second paragraph", "plain", "\u2029 and \x85 and \x1c inside", "last"]
    path = tmp_path / "feed.jsonl"
    lines = [
        json.dumps({"id": f"x{n}", "text": t}, ensure_ascii=False) for n, t in enumerate(texts)
    ]
    path.write_text("\n\n".join([*lines, "{not json"]) + "\n", encoding="utf-8")
    source = ReplaySource("feed", [path], max_items=2)

    first = source.fetch(None)
    second = source.fetch(first.cursor)
    third = source.fetch(second.cursor)

    assert [m.text for m in first.mentions + second.mentions] == texts
    assert (third.mentions, third.rejected) == (
        [],
        ["feed.jsonl line 9: not valid JSON (Expecting property name enclosed in double quotes)"],
    )
    assert json.loads(third.cursor)[str(path)]["records"] == 5
    assert source.fetch(third.cursor).mentions == []


@pytest.mark.parametrize("name", ["feed.jsonl", "feed.json"])
def test_a_replay_feed_saved_with_a_byte_order_mark_reads_its_first_mention(tmp_path, name):
    record = {"id": "x0", "text": "Saved from Excel"}
    body = json.dumps(record) if name.endswith("l") else json.dumps([record])
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + body.encode() + b"\r\n")

    batch = ReplaySource("feed", [path], max_items=10).fetch(None)

    assert ([m.text for m in batch.mentions], batch.rejected) == (["Saved from Excel"], [])


def test_replay_counts_must_be_whole_and_reactions_not_negative(tmp_path):
    records = [
        {"id": "a", "text": "fine", "engagement": 12},
        {"id": "b", "text": "bad", "engagement": -1},
        {"id": "c", "text": "bad", "engagement": "many"},
    ]
    feed = write_feed(tmp_path / "feed.jsonl", records)
    result = ReplaySource("feed", [feed], max_items=10).fetch(None)

    assert [(m.native_id, m.engagement) for m in result.mentions] == [("a", 12)]
    assert result.rejected == [
        "feed.jsonl line 2: 'engagement' counts people or reactions, so it cannot be negative: -1",
        "feed.jsonl line 3: 'engagement' must be a whole number or null, got 'many'",
    ]


def test_a_replay_source_with_an_unreadable_cursor_reads_its_feed_again(tmp_path, caplog):
    path = write_feed(tmp_path / "feed.jsonl", [_post(1), _post(2)])
    source = ReplaySource("feed", [path], max_items=10)

    result = source.fetch("garbage")

    assert [m.native_id for m in result.mentions] == ["p1", "p2"]  # the store drops repeats
    assert "unreadable cursor" in caplog.text
    assert json.loads(result.cursor)[str(path)]["records"] == 2


def test_a_request_that_cannot_be_made_is_a_source_error_not_a_crash():
    """Not worth retrying (nothing will change) but still this source's failure, said plainly."""
    with pytest.raises(SourceError, match=r"feed: the request failed \(InvalidURL") as caught:
        send(new_session(), "GET", "http://[bad-host/feed", what="feed")
    assert not isinstance(caught.value, TransientError)
