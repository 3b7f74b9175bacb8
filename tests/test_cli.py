from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from config.schema import EXAMPLE_CONFIG
from listener.cli import app
from listener.sources.replay import PACKAGE_DATA
from tests.conftest import write_feed
from tests.fake_slack import FakeSlack

runner = CliRunner()
DEMO_LANGUAGES = {"en", "de", "fr", "it", "es", "pt", "hr", "ja"}


def test_check_config_accepts_the_example():
    result = runner.invoke(app, ["check-config"])
    assert result.exit_code == 0
    assert "is valid" in result.output


def test_check_config_names_a_file_that_is_not_utf8_and_exits_2(tmp_path):
    path = tmp_path / "config.yaml"
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace("version: 1", "# Küche\nversion: 1")
    path.write_bytes(text.encode("latin-1", errors="replace"))

    result = runner.invoke(app, ["check-config", "--config", str(path)])

    assert result.exit_code == 2
    assert f"{path}: line 4: not UTF-8 text (byte 0xfc); save the file as UTF-8" in result.output
    assert "Traceback" not in result.output


def test_check_config_lists_all_three_mistakes_and_exits_2(tmp_path):
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["markets"][0]["formality"] = "casual"
    data["digest"]["cron"] = "every monday"
    data["storage"]["retention_days"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")

    result = runner.invoke(app, ["check-config", "--config", str(path)])

    assert result.exit_code == 2
    assert "3 problems in the configuration" in result.output
    for key in ("markets[0].formality", "digest.cron", "storage.retention_days"):
        assert f"{path}: {key}:" in result.output


def test_stats_json_has_the_documented_shape(database_url, tmp_path):
    feed = write_feed(
        tmp_path / "mine.jsonl",
        [
            {
                "id": "1",
                "text": "Où est mon colis ? Toujours pas reçu",
                "source": "trustpilot",
                "rating": 1,
            }
        ],
    )
    assert runner.invoke(app, ["demo", "--feed", str(feed)]).exit_code == 0

    result = runner.invoke(app, ["stats", "--json"])

    assert result.exit_code == 0
    stats = json.loads(result.output)
    assert stats["mentions"]["total"] == 1
    assert stats["mentions"]["by_source"] == {"trustpilot": 1}
    assert stats["mentions"]["by_language"] == {"fr": 1}
    assert set(stats["mentions"]) >= {"by_sentiment", "by_urgency"}
    assert stats["drafts"] == {"total": 1, "by_status": {"pending": 1}}
    assert set(stats["alerts"]) == {"total", "by_state"}


def test_demo_feed_reports_malformed_lines_and_a_missing_file(database_url, tmp_path):
    feed = tmp_path / "export.jsonl"
    feed.write_text('{"id": "1", "text": "hello lumora"}\n{"text": "no id"}\nnot json\n', "utf-8")
    result = runner.invoke(app, ["demo", "--feed", str(feed)])
    assert result.exit_code == 0
    assert "1 new" in result.output
    assert "2 malformed skipped" in result.output
    assert "export.jsonl line 2: missing 'id'" in result.output

    missing = runner.invoke(app, ["demo", "--feed", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2


def test_bundled_demo_feed_covers_eight_languages():
    records = [
        json.loads(line)
        for line in (PACKAGE_DATA / "demo_feed.jsonl").read_text("utf-8").splitlines()
        if line.strip()
    ]
    assert len(records) >= 60
    assert {r.get("lang") for r in records} >= DEMO_LANGUAGES


def test_demo_runs_on_the_bundled_feed_twice_without_duplicates(database_url):
    first = runner.invoke(app, ["demo"])
    assert first.exit_code == 0, first.output
    assert "Data lives in:" in first.output
    assert "reply drafts awaiting review" in first.output
    stats_after_first = json.loads(runner.invoke(app, ["stats", "--json"]).output)
    assert set(stats_after_first["mentions"]["by_language"]) >= DEMO_LANGUAGES

    second = runner.invoke(app, ["demo"])

    assert second.exit_code == 0
    assert "0 new" in second.output
    assert json.loads(runner.invoke(app, ["stats", "--json"]).output) == stats_after_first


def test_demo_posts_alerts_to_slack_when_a_token_is_set(database_url, tmp_path, monkeypatch):
    feed = write_feed(
        tmp_path / "urgent.jsonl",
        [
            {
                "id": "1",
                "source": "twitter",
                "author": "kenji",
                "author_followers": 120_000,
                "lang": "ja",
                "text": "PowerCubeが発熱して煙が出ました <!channel>",
            }
        ],
    )
    with FakeSlack() as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-placeholder")
        monkeypatch.setenv("SLACK_BASE_URL", slack.base_url)
        result = runner.invoke(app, ["demo", "--feed", str(feed)])

    assert result.exit_code == 0, result.output
    [post] = [p for p in slack.posted if p["payload"]["channel"] != "#social-review"]
    assert post["payload"]["channel"] == "#social-alerts"
    blocks = json.dumps(post["payload"]["blocks"], ensure_ascii=False)
    assert "<!here>" in blocks  # the configured on-call notification for critical items
    assert "<!channel>" not in blocks  # the customer's text cannot ping the channel
    assert "[ALERT" not in result.output  # nothing went to the console instead


def test_classify_and_draft_name_a_missing_input_or_an_unwritable_output_at_once(tmp_path):
    """Before the model loads: no traceback, no minutes spent on a path typo."""
    good = tmp_path / "in.jsonl"
    good.write_text('{"id": 1, "text": "hello"}\n', encoding="utf-8")
    cases = [
        (["--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o.jsonl")],
         "nope.jsonl is not a file; --input names a JSONL file"),
        (["--input", str(good), "--output", str(tmp_path / "missing" / "o.jsonl")],
         "missing does not exist; create it or write the output elsewhere"),
        (["--input", str(good), "--output", str(tmp_path)],
         "is a folder; --output names the file to write"),
    ]  # fmt: skip
    for command in ("classify", "draft"):
        for arguments, message in cases:
            result = runner.invoke(app, [command, *arguments])
            assert result.exit_code == 2, (command, arguments, result.output)
            assert message in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": null, "text": "hi"}', "missing 'id'"),
        ('{"id": {"a": 1}, "text": "hi"}', "'id' must be text or a whole number, got {'a': 1}"),
        ('{"id": true, "text": "hi"}', "'id' must be text or a whole number, got True"),
        ('{"id": "b", "text": "hi", "author_name": 5}', "'author_name' must be the author's"),
        ('{"id": "b", "text": "hi", "url": ["x"]}', "'url' must be a link or null"),
        ('{"id": "b", "text": "hi", "created_at": "2026-13-45"}', "'created_at' must be ISO-8601"),
        ('{"id": "b", "text": "hi", "lang": 5}', "'lang' must be a language tag"),
        ('{"id": "b", "text": "hi", "rating": 9}', "'rating' must be 1-5, got 9"),
        ('["id", "text"]', "expected a JSON object, got list"),
        ('{"id": "b"}', "missing 'text' (a string)"),
    ],
)
def test_classify_and_draft_check_every_field_alike_and_stop_at_the_first_bad_line(
    tmp_path, config_file, line, message
):
    """The same check of the same fields, naming the file and line, never a record's id."""
    path = tmp_path / "in.jsonl"
    path.write_text(f'{{"id": "a", "text": "fine"}}\n{line}\n{{"id": null}}\n', encoding="utf-8")
    for command in ("classify", "draft"):
        result = runner.invoke(
            app,
            [
                command,
                "-c",
                str(config_file),
                "--input",
                str(path),
                "--output",
                str(tmp_path / "o"),
            ],
        )
        assert result.exit_code == 2, (command, result.output)
        output = " ".join(result.output.split())
        assert f"{path} line 2: {message}" in output, (command, output)
        assert "line 3" not in output
        assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(
            "read-only folder",
            marks=pytest.mark.skipif(
                sys.platform == "win32" or os.geteuid() == 0, reason="root writes anywhere"
            ),
        ),
        pytest.param(
            "/proc/version",
            marks=pytest.mark.skipif(
                not Path("/proc/version").is_file(), reason="Linux procfs: no one writes it"
            ),
        ),
    ],
)
def test_classify_and_draft_refuse_an_output_they_cannot_write_before_any_work(tmp_path, where):
    """Not a traceback after the model loaded: one line naming the file, exit 2."""
    good = tmp_path / "in.jsonl"
    good.write_text('{"id": 1, "text": "hello"}\n', encoding="utf-8")
    if where == "read-only folder":
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        output = folder / "out.jsonl"
    else:
        output = Path(where)
    for command in ("classify", "draft"):
        result = runner.invoke(app, [command, "--input", str(good), "--output", str(output)])
        assert result.exit_code == 2, (command, result.output)
        assert f"{output} cannot be written (" in result.output
        assert "choose a file you can write for --output" in result.output
        assert result.output.count("\n") == 1
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_checking_the_output_leaves_no_empty_file_behind_when_the_input_is_bad(tmp_path):
    bad = tmp_path / "in.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    for command in ("classify", "draft"):
        result = runner.invoke(app, [command, "--input", str(bad), "--output", str(output)])
        assert result.exit_code == 2
        assert not output.exists()


def test_a_database_that_cannot_be_opened_is_named_without_its_password(tmp_path, monkeypatch):
    from tests.services import free_port

    closed = f"postgresql+psycopg://listener:S3cr3t-pw@127.0.0.1:{free_port()}/listener"
    cases = [
        (closed, "cannot open the database postgresql+psycopg://listener:***@127.0.0.1:"),
        ("not a url", "the database URL cannot be used"),
        ("mysql://someone@localhost/db", "needs a driver that is not installed"),
        ("sqlite:////proc/listener-nope/x.db", "cannot create the folder of the SQLite database"),
    ]
    for url, message in cases:
        monkeypatch.setenv("DATABASE_URL", url)
        for command in (["stats"], ["status"], ["run", "--once"]):
            result = runner.invoke(app, command)
            assert result.exit_code == 2, (url, command, result.output)
            assert message in " ".join(result.output.split())
            assert "S3cr3t-pw" not in result.output
            assert "Traceback" not in result.output


def test_the_daemon_names_a_database_url_it_cannot_use_and_exits_2(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "not a url")

    result = runner.invoke(app, ["run"])

    assert result.exit_code == 2, result.output
    assert "the database URL cannot be used" in " ".join(result.output.split())
    assert "Traceback" not in result.output
