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
