from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config.schema import EXAMPLE_CONFIG, ConfigError, load_settings, parse_duration


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _example() -> dict:
    return yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))


def test_example_config_is_valid_and_names_the_demo_feed():
    settings = load_settings()
    assert settings.sources[0].type == "replay"
    assert settings.market().code == "en-US"
    assert {"de", "fr", "it", "es", "pt", "hr", "ja", "en"} <= set(settings.languages)


def test_three_mistakes_are_reported_together_with_paths_and_examples(tmp_path):
    data = _example()
    data["sources"][0]["interval"] = "often"  # 1: not a duration
    data["markets"][2]["timezone"] = "Europe/Berlinn"  # 2: unknown time zone
    data["slack"]["chanel"] = "#typo"  # 3: unknown key
    path = _write(tmp_path, data)

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    problems = {p.path: p for p in caught.value.problems}
    assert set(problems) == {"sources[0].interval", "markets[2].timezone", "slack.chanel"}
    message = str(caught.value)
    assert message.startswith("3 problems in the configuration:")
    assert str(path) in message
    assert "'often' is not a duration" in message
    assert '"5m"' in message
    assert "not an IANA time zone" in message
    assert "Europe/Berlin" in message
    assert "unknown key" in message


def test_cross_references_are_checked(tmp_path):
    data = _example()
    data["default_market"] = "xx-XX"
    data["sources"].append(dict(data["sources"][0]))
    data["slack"]["routes"][0]["sources"] = ["nope"]
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, data))
    paths = [p.path for p in caught.value.problems]
    duplicate = f"sources[{len(data['sources']) - 1}].name"  # the example lists several sources
    assert paths == ["default_market", duplicate, "slack.routes[0].sources"]


def test_unknown_source_type_lists_the_known_ones(tmp_path):
    data = _example()
    data["sources"][0]["type"] = "myspace"
    with pytest.raises(ConfigError, match=r"sources\[0\]: unknown source type 'myspace'"):
        load_settings(_write(tmp_path, data))


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("brands:\n  - name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: not valid YAML"):
        load_settings(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_settings(tmp_path / "absent.yaml")


def test_database_url_env_overrides_config(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/elsewhere.db")
    assert load_settings().database_url() == "sqlite:////tmp/elsewhere.db"


@pytest.mark.parametrize(
    ("value", "seconds"), [(300, 300), ("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400)]
)
def test_durations(value, seconds):
    assert parse_duration(value).total_seconds() == seconds


@pytest.mark.parametrize("value", ["0m", "-5m", "five minutes", True, 0])
def test_bad_durations(value):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(value)


def test_a_channel_longer_than_slack_allows_is_named(tmp_path):
    data = _example()
    data["slack"]["routes"][0]["channel"] = "#" + "x" * 90
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, data))
    assert [p.path for p in caught.value.problems] == ["slack.routes[0].channel"]
    assert "at most 81 characters" in str(caught.value)


def test_viral_recheck_settings_are_read_and_checked(tmp_path):
    settings = load_settings()
    assert settings.model.viral_recheck.enabled
    assert settings.model.viral_recheck.window.total_seconds() == 86_400
    data = _example()
    data["model"]["viral_recheck"]["every"] = "sometimes"
    with pytest.raises(ConfigError, match=r"model\.viral_recheck\.every"):
        load_settings(_write(tmp_path, data))


def test_an_rss_platform_label_longer_than_its_column_is_named(tmp_path):
    """Stored with each mention in 32 characters: a longer one would fail every item."""
    data = _example()
    rss = next(s for s in data["sources"] if s["type"] == "rss")
    rss["platform"] = "trustpilot-reviews-lumora-germany"  # 33
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, data))
    (problem,) = caught.value.problems
    assert problem.path.endswith("].platform")
    assert "at most 32 characters" in problem.message


def test_an_example_comes_from_the_field_s_own_model(tmp_path):
    """A bad source name shows a source name, not a brand's ("Lumora" fails the pattern)."""
    data = _example()
    data["sources"][0]["name"] = "Demo Feed"
    data["brands"][0]["handles"]["twitter"] = "LumoraShop"
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, data))
    examples = {p.path: p.example for p in caught.value.problems}
    assert examples == {
        "sources[0].name": '"demo-feed"',
        "brands[0].handles.twitter": "{twitter: [LumoraShop], reddit: [LumoraOfficial]}",
    }


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ({"type": "twitter", "name": "x", "base_url": "api.x.com"}, "base_url"),
        ({"type": "reddit", "name": "r", "auth_url": "www.reddit.com"}, "auth_url"),
    ],
)
def test_a_base_or_auth_url_without_its_scheme_is_named(tmp_path, source, key):
    data = _example()
    data["sources"] = [source]
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, data))
    (problem,) = caught.value.problems
    assert problem.path == f"sources[0].{key}"
    assert problem.example.startswith('"https://')


def test_quiet_hours_on_a_market_alerts_never_use_are_refused(tmp_path):
    data = _example()
    codes = [market["code"] for market in data["markets"]]
    assert codes.index("en-US") < codes.index("en-GB")  # English alerts use en-US
    data["markets"][codes.index("en-GB")]["quiet_hours"] = "22:00-07:00"

    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, data))

    [problem] = caught.value.problems
    assert problem.path == f"markets[{codes.index('en-GB')}].quiet_hours"
    assert "en-GB's quiet hours would never apply" in problem.message
    assert "move quiet_hours to en-US, or list en-GB before it" in problem.message

    data["markets"][codes.index("en-GB")]["quiet_hours"] = None
    data["markets"][codes.index("en-US")]["quiet_hours"] = "22:00-07:00"  # the first: fine
    assert load_settings(_write(tmp_path, data)).market("en-US").quiet_hours == "22:00-07:00"

    data["default_market"] = "en-GB"  # it hears languages no market speaks: its hours apply
    data["markets"][codes.index("en-GB")]["quiet_hours"] = "22:00-07:00"
    settings = load_settings(_write(tmp_path, data))
    assert settings.market_for_language("sv").quiet_hours == "22:00-07:00"


@pytest.mark.parametrize("cron", ["0 8 * * 1", "0 8 * * 0", "0 8 * * 1-5", "0 8 * * mon,3"])
def test_a_digest_cron_with_weekday_numbers_is_refused_with_names_as_the_fix(tmp_path, cron):
    data = _example()
    data["digest"]["cron"] = cron
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, data))
    (problem,) = caught.value.problems
    assert problem.path == "digest.cron"
    assert "write the weekdays as names (mon, tue, … sun, e.g. mon-fri)" in problem.message
    assert "crontab counts 0 as Sunday, the scheduler 0 as Monday" in problem.message


@pytest.mark.parametrize("cron", ["0 8 * * mon", "30 7 * * mon-fri", "0 8 1 * *", "0 */6 * * *"])
def test_a_digest_cron_with_weekday_names_or_none_is_accepted(tmp_path, cron):
    data = _example()
    data["digest"]["cron"] = cron
    assert load_settings(_write(tmp_path, data)).digest.cron == cron
