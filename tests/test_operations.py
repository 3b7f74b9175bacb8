"""`listener status`, `listener forget`, per-source retention and secrets written in the config."""

from __future__ import annotations

import json
from datetime import timedelta

import yaml
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from config.schema import load_settings
from listener.cli import app
from listener.models import Alert, Classification, Mention, ReplyDraft, utcnow
from listener.pipeline import Pipeline
from listener.storage import purge_before
from tests.conftest import FEED, write_feed

runner = CliRunner()


def _config_with_two_sources(tmp_path, config_file):
    data = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    vanishing = write_feed(tmp_path / "vanishing.jsonl", [{"id": "v1", "text": "hello"}])
    data["sources"].append({"name": "vanishing", "type": "replay", "paths": [str(vanishing)]})
    config_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return vanishing


def test_status_shows_a_failing_source_backlog_and_review_queue(tmp_path, engine, config_file):
    vanishing = _config_with_two_sources(tmp_path, config_file)
    pipeline = Pipeline.build(load_settings(config_file), engine)
    vanishing.unlink()  # the file disappears between start-up and the fetch
    pipeline.run_cycle()

    result = runner.invoke(app, ["status", "--json", "-c", str(config_file)])

    assert result.exit_code == 1  # unhealthy: monitoring can alert on the exit code
    status = json.loads(result.output)
    assert status["healthy"] is False
    assert status["failing_sources"] == ["vanishing"]
    broken = status["sources"]["vanishing"]
    assert broken["consecutive_failures"] == 1
    assert "FileNotFoundError" in broken["last_error"]
    assert broken["backing_off_until"] is not None
    assert broken["disabled_reason"].startswith("file(s) not found")
    feed = status["sources"]["feed"]
    assert feed["last_error"] is None
    assert feed["items_last_hour"] == len(FEED)
    assert status["backlog"] == {"collected": 0, "classified": 0, "responded": 0}
    with Session(engine) as session:
        pending = session.scalar(select(func.count()).select_from(ReplyDraft))
    assert status["drafts_awaiting_review"] == pending > 0
    assert status["outbox"]["alerts_waiting"] == 0


def test_a_source_switched_off_in_the_config_keeps_its_error_but_not_failing(
    tmp_path, engine, config_file
):
    vanishing = _config_with_two_sources(tmp_path, config_file)
    pipeline = Pipeline.build(load_settings(config_file), engine)
    vanishing.unlink()
    pipeline.run_cycle()  # it fails once...
    data = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    data["sources"][-1]["enabled"] = False  # ...and the team switches it off
    config_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    result = runner.invoke(app, ["status", "--json", "-c", str(config_file)])

    assert result.exit_code == 0
    status = json.loads(result.output)
    assert (status["healthy"], status["failing_sources"]) == (True, [])
    row = status["sources"]["vanishing"]
    assert (row["enabled"], row["disabled_reason"]) == (False, "enabled: false in the config")
    assert "FileNotFoundError" in row["last_error"]


def test_edited_drafts_still_await_review(engine, config_file):
    Pipeline.build(load_settings(config_file), engine).run_cycle()
    with Session(engine) as session:
        drafts = list(session.exec(select(ReplyDraft).order_by(ReplyDraft.id)))
        drafts[0].status, drafts[1].status = "edited", "rejected"
        session.add_all(drafts[:2])
        session.commit()

    result = runner.invoke(app, ["status", "--json", "-c", str(config_file)])

    assert json.loads(result.output)["drafts_awaiting_review"] == len(drafts) - 1


def test_status_table_for_people(engine, config_file):
    Pipeline.build(load_settings(config_file), engine).run_cycle()
    result = runner.invoke(app, ["status", "-c", str(config_file)])
    assert result.exit_code == 0
    assert "feed" in result.output
    assert "healthy" in result.output


def _counts(engine, handle: str) -> dict[str, int]:
    with Session(engine) as session:
        ids = select(Mention.id).where(func.lower(Mention.author_handle) == handle)
        return {
            table.__name__: session.scalar(
                select(func.count()).select_from(table).where(table.mention_id.in_(ids))
            )
            for table in (Classification, ReplyDraft, Alert)
        } | {"Mention": session.scalar(select(func.count()).where(Mention.id.in_(ids)))}


def test_forget_erases_an_author_everywhere_and_reports_it(engine, config_file):
    Pipeline.build(load_settings(config_file), engine).run_cycle()
    author = next(r["author"] for r in FEED if r.get("author"))
    before = _counts(engine, author.lower())
    with Session(engine) as session:
        total_before = session.scalar(select(func.count()).select_from(Mention))
    assert before["Mention"] >= 1

    result = runner.invoke(
        app, ["forget", "--author", "@" + author.upper(), "-c", str(config_file)]
    )

    assert result.exit_code == 0
    assert f"removed {before['Mention']} mentions" in result.output
    assert f"{before['ReplyDraft']} reply drafts" in result.output
    assert _counts(engine, author.lower()) == dict.fromkeys(before, 0)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Mention)) == (
            total_before - before["Mention"]
        )


def test_forget_finds_a_non_ascii_handle_in_any_case(tmp_path, engine, config_file):
    data = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    record = {"id": "o1", "text": "Lumora lamp broke", "author": "Ömer_Şahin"}
    extra = write_feed(tmp_path / "extra.jsonl", [record])
    data["sources"].append({"name": "extra", "type": "replay", "paths": [str(extra)]})
    config_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    Pipeline.build(load_settings(config_file), engine).run_cycle()

    result = runner.invoke(app, ["forget", "--author", "@ÖMER_ŞAHIN", "-c", str(config_file)])

    assert result.exit_code == 0
    assert "removed 1 mentions" in result.output


def test_forget_limited_to_another_source_removes_nothing(engine, config_file):
    Pipeline.build(load_settings(config_file), engine).run_cycle()
    author = next(r["author"] for r in FEED if r.get("author") and r.get("source") == "twitter")
    result = runner.invoke(
        app, ["forget", "--author", author, "--source", "reddit", "-c", str(config_file)]
    )
    assert result.exit_code == 0
    assert "removed 0 mentions" in result.output
    assert _counts(engine, author.lower())["Mention"] >= 1


def test_forget_matches_the_source_in_any_case(engine, config_file):
    Pipeline.build(load_settings(config_file), engine).run_cycle()
    author = next(r["author"] for r in FEED if r.get("author") and r.get("source") == "twitter")
    before = _counts(engine, author.lower())["Mention"]
    result = runner.invoke(
        app, ["forget", "--author", author, "--source", "Twitter", "-c", str(config_file)]
    )
    assert result.exit_code == 0
    assert f"removed {before} mentions" in result.output
    assert _counts(engine, author.lower())["Mention"] == 0


def test_forget_with_a_source_nothing_came_from_fails_and_says_so(engine, config_file):
    """An erasure must not silently do nothing because of a typo in --source."""
    Pipeline.build(load_settings(config_file), engine).run_cycle()
    author = next(r["author"] for r in FEED if r.get("author"))
    before = _counts(engine, author.lower())
    result = runner.invoke(
        app, ["forget", "--author", author, "--source", "twiter", "-c", str(config_file)]
    )
    assert result.exit_code == 2
    assert "--source twiter matches no platform or source" in result.output
    assert "twitter" in result.output  # what it could have been
    assert _counts(engine, author.lower()) == before


def test_a_source_keeps_its_mentions_only_as_long_as_its_own_retention(engine, config_file):
    Pipeline.build(load_settings(config_file), engine).run_cycle()
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Mention))
        now = utcnow()
        long_ago = now - timedelta(days=3650)
        result = purge_before(session, long_ago, {"feed": now + timedelta(days=1)})
        session.commit()
        assert result.mentions == total  # every feed mention is past the feed's own window
        assert session.scalar(select(func.count()).select_from(Mention)) == 0


def test_check_config_warns_about_secrets_in_the_file_without_showing_them(tmp_path, config_file):
    token = "xoxb-2401-993311-Zq8rT5uVwXyZaBcDeFgHiJkL"
    data = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    data["sources"][0]["credentials"] = {"bearer_token": token}
    config_file.write_text(yaml.safe_dump(data), encoding="utf-8")

    result = runner.invoke(app, ["check-config", "-c", str(config_file)])

    assert result.exit_code == 2
    assert "sources[0].credentials.bearer_token" in result.output
    assert "NAME of an environment variable" in result.output
    assert token not in result.output
    assert token[:12] not in result.output


def test_the_example_config_has_no_secret_like_values_and_tokens_are_found():
    from config.schema import EXAMPLE_CONFIG
    from config.secrets import find_secrets

    assert find_secrets(yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))) == []
    written = {
        "slack": {"token_env": "SLACK_BOT_TOKEN", "token": "hunter2"},
        "responders": {"generative": {"api_key_env": "sk-proj-abcdefghijklmnop1234"}},
        "notes": ["ghp_16C7e42F292c6912E7710c838347Ae178B4a"],
    }
    assert find_secrets(written) == [
        "slack.token",
        "responders.generative.api_key_env",
        "notes[0]",
    ]


def test_forget_redacts_the_author_in_crisis_alerts_that_quote_several_people(engine, config_file):
    with Session(engine) as session:
        session.add(
            Alert(
                key="spike:1",
                level="critical",
                channel="#social-alerts",
                title="Spike of negative mentions",
                body="• @Maria_K on twitter (high): it broke\n• @other on reddit (high): same here",
            )
        )
        session.commit()

    result = runner.invoke(app, ["forget", "--author", "maria_k", "-c", str(config_file)])

    assert "redacted their quotes in 1 crisis alerts" in result.output
    with Session(engine) as session:
        body = session.exec(select(Alert.body).where(Alert.key == "spike:1")).one()
    assert "it broke" not in body
    assert "Maria" not in body
    assert "• @other on reddit (high): same here" in body


def test_a_daemon_that_stopped_running_is_not_healthy(engine, config_file):
    from listener.status import collect_status
    from listener.storage import store_mentions
    from tests.test_alerts_slack_review import NOW, Clock

    settings = load_settings(config_file)
    Pipeline.build(settings, engine, clock=Clock(NOW)).run_cycle()
    interval = settings.sources[0].interval

    soon = collect_status(engine, settings, now=NOW + interval)
    silent = collect_status(engine, settings, now=NOW + 3 * interval + timedelta(minutes=16))

    assert (soon["healthy"], soon["overdue_sources"]) == (True, [])
    assert silent["overdue_sources"] == [settings.sources[0].name]
    assert silent["sources"][settings.sources[0].name]["overdue"] is True
    assert silent["healthy"] is False

    with Session(engine) as session:  # collected, then nothing processed it for two hours
        mention = Mention(source="x", collector="x", native_id="late", text="t", created_at=NOW)
        store_mentions(session, [mention])
        session.commit()
        waiting_since = session.exec(
            select(Mention.collected_at).where(Mention.native_id == "late")
        ).one()
    stuck = collect_status(engine, settings, now=waiting_since + timedelta(hours=2))
    assert stuck["backlog_stuck"] is True
    assert stuck["backlog"]["collected"] == 1
    assert stuck["healthy"] is False


def test_forget_counts_only_the_crisis_alerts_it_redacted(engine, config_file):
    """@bob is in '@bobby' and 'b_b' matches 'bxb' as a LIKE pattern: neither quotes them."""
    with Session(engine) as session:
        for key, body in (
            ("spike:bobby", "• @bobby on twitter (high): it broke"),
            ("spike:bxb", "• @bxb on twitter (high): it broke"),
        ):
            session.add(Alert(key=key, level="critical", channel="#c", title="Spike", body=body))
        session.commit()

    for handle in ("bob", "b_b"):
        result = runner.invoke(app, ["forget", "--author", handle, "-c", str(config_file)])
        assert result.exit_code == 0
        assert "redacted their quotes in 0 crisis alerts" in result.output

    with Session(engine) as session:
        bodies = session.exec(select(Alert.body)).all()
    assert sorted(bodies) == [
        "• @bobby on twitter (high): it broke",
        "• @bxb on twitter (high): it broke",
    ]


def test_a_switched_off_source_is_never_overdue(engine):
    from listener.models import SourceCursor
    from listener.status import collect_status

    settings = load_settings()  # the bundled config: x-search is switched off
    off = next(s.name for s in settings.sources if not s.enabled)
    with Session(engine) as session:
        session.add(SourceCursor(source=off, last_success_at=utcnow() - timedelta(days=2)))
        session.commit()

    status = collect_status(engine, settings)

    assert status["sources"][off]["overdue"] is False
    assert status["overdue_sources"] == []
