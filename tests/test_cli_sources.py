"""`listener sources test NAME` and `listener sources list` against local fake platforms."""

from __future__ import annotations

import time

import pytest
import yaml
from typer.testing import CliRunner

from config.schema import EXAMPLE_CONFIG
from listener.cli import app
from tests.test_sources_hackernews import FakeAlgolia
from tests.test_sources_twitter import FakeX

runner = CliRunner()


@pytest.fixture
def config(tmp_path, api):
    """The example config with its platform sources enabled and pointed at the local server."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    for source in data["sources"]:
        if source["type"] == "hackernews":
            source.update(enabled=True, base_url=f"{api.url}/api/v1/", queries=["lumora"])
        if source["type"] == "twitter":
            source.update(base_url=api.url)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_sources_test_prints_what_it_found_escaped_and_stores_nothing(api, config, database_url):
    hn = FakeAlgolia(api)
    now = int(time.time())
    hn.story(1, "Lumora lamp \u202ereversed\u202c text", now - 60)
    hn.story(2, "Lumora " + "very long title " * 20, now - 30)

    result = runner.invoke(app, ["sources", "test", "hackernews", "--config", str(config)])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        lines[0]
        == "hackernews (hackernews): OK: 2 item(s) found, 0 malformed skipped (nothing stored)"
    )
    assert "Lumora lamp \\u202ereversed\\u202c text" in lines[1]
    assert "https://news.ycombinator.com/item?id=1" in lines[1]
    assert "…" in lines[2]
    stats = runner.invoke(app, ["stats", "--json", "--config", str(config)])
    assert '"total": 0' in stats.output


def test_sources_test_names_a_missing_credential(config, monkeypatch):
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    result = runner.invoke(app, ["sources", "test", "x-search", "--config", str(config)])
    assert result.exit_code == 2
    assert "x-search (twitter): not configured: X_BEARER_TOKEN not set" in result.output


def test_sources_test_reports_a_refused_token(api, config, monkeypatch):
    FakeX(api)
    monkeypatch.setenv("X_BEARER_TOKEN", "not-the-right-one")

    result = runner.invoke(app, ["sources", "test", "x-search", "--config", str(config)])

    assert result.exit_code == 1
    assert "x-search (twitter): enabled: false in the config; testing it anyway" in result.output
    assert "FAILED: SourceError: X refused the bearer token (HTTP 401)" in result.output
    assert "not-the-right-one" not in result.output


def test_sources_test_unknown_name_lists_the_configured_ones(config):
    result = runner.invoke(app, ["sources", "test", "nope", "--config", str(config)])
    assert result.exit_code == 2
    assert "No source named 'nope' in the config; configured: demo-feed, x-search" in result.output


def test_sources_list_says_which_run_and_why_not(config, monkeypatch):
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    result = runner.invoke(app, ["sources", "list", "--config", str(config)])
    assert result.exit_code == 0
    assert "demo-feed (replay): enabled" in result.output
    assert "hackernews (hackernews): enabled" in result.output
    assert "x-search (twitter): disabled: enabled: false in the config" in result.output
