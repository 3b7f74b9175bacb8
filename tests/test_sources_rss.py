"""The RSS/Atom collector through feedparser against a local server serving RSS 2.0 and Atom 1.0
documents with ETag / Last-Modified and 304 answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

import pytest

from config.schema import RssSource as RssConfig
from listener.sources.rss import RssSource
from tests.fake_apis import (
    FAST,
    HTML_ERROR,
    FakeAPI,
    Reply,
    Request,
    assert_storm_is_recorded,
    stored,
)

RSS_PATH = "/reviews/lumora.rss"
ATOM_PATH = "/alerts/lumora.atom"
NOW = datetime.now(UTC).replace(microsecond=0)


class FakeFeeds:
    def __init__(self, api: FakeAPI) -> None:
        self.rss: list[dict] = []
        self.atom: list[dict] = []
        api.route("GET", RSS_PATH, lambda r: self.serve(r, self.render_rss()))
        api.route("GET", ATOM_PATH, lambda r: self.serve(r, self.render_atom(), atom=True))

    def serve(self, request: Request, document: str, *, atom: bool = False) -> Reply:
        etag = f'"{abs(hash(document))}"'
        if request.headers.get("if-none-match") == etag:
            return Reply(304, b"", {"ETag": etag})
        kind = "application/atom+xml" if atom else "application/rss+xml"
        return Reply(200, document, {"ETag": etag}, f"{kind}; charset=utf-8")

    def add(self, n: int, *, age: timedelta = timedelta(hours=1), **fields: str) -> None:
        entry = {
            "id": f"https://reviews.example/lumora/{n}",
            "title": f"Review {n}: lamp arrived broken",
            "summary": f"<p>Stars: 1. The <b>Lumora</b> lamp #{n} was cracked.</p>",
            "author": f"reviewer{n}",
            "when": NOW - age,
            **fields,
        }
        self.rss.append(entry)

    def render_rss(self) -> str:
        items = "".join(
            "<item>"
            + (f"<title>{escape(e['title'])}</title>" if e.get("title") else "")
            + f"<link>{e['id']}</link><guid isPermaLink='true'>{e['id']}</guid>"
            + (f"<description>{escape(e['summary'])}</description>" if e.get("summary") else "")
            + f"<dc:creator>{e['author']}</dc:creator>"
            + f"<pubDate>{format_datetime(e['when'], usegmt=True)}</pubDate></item>"
            for e in self.rss
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"'
            ' xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Lumora reviews</title>'
            "<link>https://reviews.example/lumora</link><description>Reviews</description>"
            f"<language>en-us</language>{items}</channel></rss>"
        )

    def render_atom(self) -> str:
        entries = "".join(
            f"<entry><id>tag:google.com,2013:googlealerts/feed:{e['id']}</id>"
            f"<title type='html'>{escape(e['title'])}</title>"
            f"<link href='https://news.example/{e['id']}'/>"
            f"<published>{e['when'].isoformat()}</published>"
            f"<updated>{e['when'].isoformat()}</updated>"
            f"<content type='html'>{escape(e['summary'])}</content>"
            "<author><name></name></author></entry>"
            for e in self.atom
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"'
            ' xml:lang="de"><id>tag:google.com,2005:reader/user/1/state/com.google/alerts/1</id>'
            f"<title>Google Alert - lumora</title><updated>{NOW.isoformat()}</updated>"
            f"{entries}</feed>"
        )


@pytest.fixture
def feeds(api):
    return FakeFeeds(api)


@pytest.fixture
def make(settings, api):
    def build(paths=(RSS_PATH,), **overrides) -> RssSource:
        fields = {
            "type": "rss",
            "name": "reviews",
            "platform": "trustpilot",
            "feeds": [api.url + path for path in paths],
            **overrides,
        }
        return RssSource.from_config(RssConfig(**fields), settings, policy=FAST)

    return build


def test_first_run_reads_rss_and_atom_within_the_backfill(api, feeds, make):
    feeds.add(1)
    feeds.add(2, age=timedelta(days=30))  # older than the backfill window
    feeds.atom.append(
        {
            "id": "a1",
            "title": "<b>Lumora</b> recalls lamps",
            "summary": "Lumora GmbH ...",
            "when": NOW - timedelta(minutes=5),
        }
    )

    result = make(paths=(RSS_PATH, ATOM_PATH), backfill="7d").fetch(None)

    review, alert = result.mentions
    assert (
        review.text == "Review 1: lamp arrived broken\n\nStars: 1. The Lumora lamp #1 was cracked."
    )
    assert (review.source, review.collector) == ("trustpilot", "reviews")
    assert review.native_id == review.url == "https://reviews.example/lumora/1"
    assert review.author_handle == "reviewer1"
    assert review.language == "en"
    assert review.created_at == NOW - timedelta(hours=1)
    assert review.raw["title"] == "Review 1: lamp arrived broken"
    assert alert.text == "Lumora recalls lamps\n\nLumora GmbH ..."
    assert alert.language == "de"
    assert alert.url == "https://news.example/a1"


def test_incremental_run_uses_the_etag_and_takes_only_new_entries(api, feeds, make):
    feeds.add(1)
    source = make()
    first = source.fetch(None)

    unchanged = source.fetch(first.cursor)
    assert unchanged.mentions == []
    assert api.calls(RSS_PATH)[-1].headers["if-none-match"]
    feeds.add(3, age=timedelta(minutes=1))
    changed = source.fetch(unchanged.cursor)

    assert [m.native_id for m in changed.mentions] == ["https://reviews.example/lumora/3"]


def test_a_budget_takes_the_oldest_entries_and_the_rest_next_cycle(api, feeds, make):
    for n in range(5):
        feeds.add(n, age=timedelta(minutes=10 - n))
    source = make(max_items_per_cycle=3)

    first = source.fetch(None)
    second = source.fetch(first.cursor)

    assert [m.native_id[-1] for m in first.mentions] == ["0", "1", "2"]
    assert [m.native_id[-1] for m in second.mentions] == ["3", "4"]
    assert "if-none-match" not in api.calls(RSS_PATH)[1].headers  # a cut feed is read again


def test_429_honours_retry_after_then_succeeds(api, feeds, make):
    feeds.add(1)
    api.fail(RSS_PATH, Reply(429, "slow down", {"Retry-After": "0"}, "text/plain"))
    assert len(make().fetch(None).mentions) == 1
    assert len(api.calls(RSS_PATH)) == 2


def test_500_storm_is_recorded_and_others_go_on(api, feeds, make, engine, pipeline_for):
    api.fail(RSS_PATH, Reply(500, "oops", {}, "text/plain"), HTML_ERROR, HTML_ERROR)
    error = assert_storm_is_recorded(pipeline_for(make()), engine, "reviews")
    assert f"feed {api.url}{RSS_PATH}: feed: HTTP 502" in error


def test_one_broken_feed_does_not_hold_back_the_others(api, feeds, make):
    feeds.atom.append({"id": "a1", "title": "lumora", "summary": "x", "when": NOW})
    api.fail(RSS_PATH, Reply(200, "<html><body>Sign in</body></html>", {}, "text/html"))

    result = make(paths=(RSS_PATH, ATOM_PATH)).fetch(None)

    assert [m.url for m in result.mentions] == ["https://news.example/a1"]
    (problem,) = result.rejected
    assert problem.startswith(f"feed {api.url}{RSS_PATH}: not an RSS/Atom feed (text/html)")


def test_a_feed_cut_off_mid_answer_is_retried_then_reported_while_the_others_go_on(
    api, feeds, make
):
    feeds.add(1)
    feeds.atom.append({"id": "a1", "title": "lumora", "summary": "x", "when": NOW})
    api.fail(RSS_PATH, Reply(200, feeds.render_rss(), cut_after=40), times=3)

    result = make(paths=(RSS_PATH, ATOM_PATH)).fetch(None)

    assert [m.url for m in result.mentions] == ["https://news.example/a1"]
    assert result.rejected == [
        f"feed {api.url}{RSS_PATH}: feed: the answer broke off or cannot be decoded"
        " (ChunkedEncodingError)"
    ]
    assert len(api.calls(RSS_PATH)) == 3


def test_malformed_entries_are_skipped_one_by_one(api, feeds, make):
    feeds.add(1)
    feeds.add(2, title="", summary="")

    result = make().fetch(None)

    assert [m.native_id[-1] for m in result.mentions] == ["1"]
    assert result.rejected == [
        "feed "
        + api.url
        + RSS_PATH
        + " entry https://reviews.example/lumora/2: no title or summary"
    ]


def test_restart_between_fetch_and_commit_stores_each_entry_once(
    api, feeds, make, engine, pipeline_for
):
    feeds.add(1)
    feeds.add(2)
    source = make()
    source.fetch(None)  # fetched, then the process died before the commit
    pipeline = pipeline_for(source)

    assert pipeline.collect(source).stored == 2
    feeds.add(3, age=timedelta(minutes=1))
    again = pipeline.collect(source)

    assert (again.stored, again.already_stored) == (1, 0)
    assert len(stored(engine, "reviews")) == 3
