"""Items PostgreSQL would refuse, through the real pipeline on a real PostgreSQL.

PostgreSQL enforces the mentions columns' lengths and refuses a NUL character in text, where
SQLite takes both; one such item used to fail its source's whole batch, cycle after cycle.
"""

from __future__ import annotations

import time
from datetime import timedelta

from config.schema import HackerNewsSource as HackerNewsConfig
from config.schema import RssSource as RssConfig
from listener.sources.hackernews import HackerNewsSource
from listener.sources.rss import RssSource
from tests.fake_apis import FAST, cursor_of, pipeline_alone, stored
from tests.test_sources_hackernews import FakeAlgolia
from tests.test_sources_rss import RSS_PATH, FakeFeeds

NOW = int(time.time())


def test_an_over_long_author_is_cut_and_the_feed_moves_on(api, settings, pg_engine):
    feeds = FakeFeeds(api)
    feeds.add(1, author=", ".join(f"Author Number{n}" for n in range(25)))  # a dc:creator list
    feeds.add(2, age=timedelta(minutes=30))
    config = RssConfig(type="rss", name="reviews", feeds=[api.url + RSS_PATH])
    source = RssSource.from_config(config, settings, policy=FAST)
    pipeline = pipeline_alone(pg_engine, source)

    outcome = pipeline.collect(source)
    again = pipeline.collect(source)

    assert (outcome.error, outcome.stored, again.fetched) == (None, 2, 0)
    authors = sorted(len(m.author_handle) for m in stored(pg_engine, "reviews"))
    assert authors == [len("reviewer2"), 256]
    assert cursor_of(pg_engine, "reviews").last_error is None


def test_a_nul_is_removed_and_an_over_long_id_is_reported_while_the_rest_are_stored(
    api, settings, pg_engine
):
    hn = FakeAlgolia(api)
    hn.comment(1, "lumora lamp died\u0000 last night", NOW - 60)
    hn.comment(int("9" * 300), "lumora support ignored me", NOW - 50)
    hn.comment(3, "lumora refund still missing", NOW - 40)
    config = HackerNewsConfig(
        type="hackernews", name="hn", base_url=f"{api.url}/api/v1/", queries=["lumora"]
    )
    source = HackerNewsSource.from_config(config, settings, policy=FAST)
    pipeline = pipeline_alone(pg_engine, source)

    outcome = pipeline.collect(source)

    assert (outcome.error, outcome.fetched, outcome.stored) == (None, 3, 2)
    assert outcome.rejected == [
        f"item {'9' * 80!r}: 'native_id' is at most 256 characters, got 300"
    ]
    texts = sorted(m.text for m in stored(pg_engine, "hn"))
    assert texts == ["lumora lamp died last night", "lumora refund still missing"]
    assert cursor_of(pg_engine, "hn").cursor is not None
