"""The review and social sources in the example config: what runs with no account at all."""

from __future__ import annotations

import yaml

from config.schema import EXAMPLE_CONFIG, parse_settings
from listener.sources import _registry, build_sources

PART_B = {"appstore", "googleplay", "mastodon", "bluesky", "youtube"}


def test_every_part_b_type_is_registered():
    assert set(_registry()) >= PART_B


def test_example_sources_are_off_and_free_ones_need_no_account_when_switched_on(monkeypatch):
    for variable in (
        "BLUESKY_HANDLE",
        "BLUESKY_APP_PASSWORD",
        "YOUTUBE_API_KEY",
        "MASTODON_ACCESS_TOKEN",
    ):
        monkeypatch.delenv(variable, raising=False)
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    examples = [s for s in data["sources"] if s["type"] in PART_B]
    assert {s["type"] for s in examples} == PART_B
    assert all(s["enabled"] is False for s in examples)  # `listener demo` stays offline

    data["sources"] = [{**s, "enabled": True} for s in examples]
    sources = build_sources(parse_settings(data, "example"))

    assert sorted(s.name for s in sources.enabled) == ["appstore", "googleplay", "mastodon"]
    assert sources.disabled == {
        "bluesky": "BLUESKY_HANDLE not set",
        "youtube": "YOUTUBE_API_KEY not set",
    }


def test_watermark_walk_keeps_items_sharing_the_newest_second():
    """Two reviews in the same second as the watermark: the known one is skipped, the new kept."""
    from datetime import UTC, datetime

    from listener.models import Mention
    from listener.sources.paging import Mark, Page, walk

    second = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def mention(native_id: str) -> Mention:
        return Mention(source="t", collector="t", native_id=native_id, text="x", created_at=second)

    items = [mention("a")]
    fetch = lambda _token, _budget, _since: Page(list(items), None)  # noqa: E731
    first = walk(Mark(), fetch=fetch, parse=lambda m: m, budget=10, floor=second, label="t")
    items.insert(0, mention("b"))
    again = walk(first.mark, fetch=fetch, parse=lambda m: m, budget=10, floor=second, label="t")

    assert [m.native_id for m in first.mentions] == ["a"]
    assert [m.native_id for m in again.mentions] == ["b"]
    assert again.mark.seen == ["a", "b"]
