"""The replay source and `listener demo --feed`: what a team's own export turns into."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from listener.cli import app
from listener.sources.replay import FeedError, ReplaySource
from tests.conftest import write_feed

runner = CliRunner()


def test_a_line_that_is_not_utf8_is_refused_by_its_number_not_stored_garbled(tmp_path):
    path = tmp_path / "feed.jsonl"
    path.write_bytes(
        b'{"id": "1", "text": "Lumora Gl\xc3\xbchbirne kaputt"}\n'
        b'{"id": "2", "text": "Lumora R\xfccksendung bitte"}\n'  # Latin-1: ü is 0xfc
        b'{"id": "3", "text": "fine"}\n'
    )

    result = ReplaySource("feed", [path], max_items=10).fetch(None)

    assert [m.text for m in result.mentions] == ["Lumora Glühbirne kaputt", "fine"]
    assert result.rejected == [
        "feed.jsonl line 2: not UTF-8 text (byte 0xfc); save the file as UTF-8"
    ]


def test_a_truncated_json_feed_fails_the_fetch_naming_the_line(tmp_path):
    path = tmp_path / "feed.json"
    path.write_text('[{"id": "a", "text": "Lumora broke"},\n {"id": "b", "te', encoding="utf-8")

    with pytest.raises(FeedError, match=r"feed.json line 2 column \d+: not valid JSON"):
        ReplaySource("feed", [path], max_items=10).fetch(None)


def test_demo_refuses_a_truncated_json_feed_in_one_line_and_exit_2(
    tmp_path, database_url, config_file
):
    path = tmp_path / "export.json"
    path.write_text('[{"id": "a", "text": "Lumora broke"},', encoding="utf-8")

    result = runner.invoke(app, ["demo", "-c", str(config_file), "--feed", str(path)])

    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"--feed {path} line 1 column 38: not valid JSON")
    assert result.output.count("\n") == 1
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", ["feed.jsonl", "feed.json"])
def test_a_new_export_saved_under_the_same_name_is_read_again(tmp_path, name):
    path = tmp_path / name

    def save(records):
        if name.endswith(".json"):
            path.write_text(json.dumps(records), encoding="utf-8")
        else:
            write_feed(path, records)

    source = ReplaySource("feed", [path], max_items=10)
    save([{"id": "a1", "text": "first export"}, {"id": "a2", "text": "first export too"}])
    first = source.fetch(None)
    save([{"id": "b1", "text": "next week's export"}, {"id": "b2", "text": "and this"}])
    second = source.fetch(first.cursor)
    grown = [{"id": "b1", "text": "next week's export"}, {"id": "b2", "text": "and this"}]
    save([*grown, {"id": "b3", "text": "appended later"}])
    third = source.fetch(second.cursor)

    assert [m.native_id for m in first.mentions] == ["a1", "a2"]
    assert [m.native_id for m in second.mentions] == ["b1", "b2"]
    assert [m.native_id for m in third.mentions] == ["b3"]  # a file that grows: only what is new
    assert source.fetch(third.cursor).mentions == []


def test_a_cursor_written_before_fingerprints_still_counts_records(tmp_path):
    path = write_feed(tmp_path / "feed.jsonl", [{"id": str(n), "text": "t"} for n in range(3)])

    result = ReplaySource("feed", [path], max_items=10).fetch(json.dumps({str(path): 2}))

    assert [m.native_id for m in result.mentions] == ["2"]
    assert json.loads(result.cursor)[str(path)]["records"] == 3


def test_demo_on_a_corrected_export_under_the_same_name_stores_what_is_new(
    tmp_path, database_url, config_file
):
    path = tmp_path / "export.jsonl"
    write_feed(path, [{"id": "1", "text": "Lumora order late"}, {"id": "2", "text": "Lumora ok"}])
    first = runner.invoke(app, ["demo", "-c", str(config_file), "--feed", str(path)])
    write_feed(path, [{"id": "1", "text": "Lumora order late"}, {"id": "3", "text": "Lumora new"}])

    second = runner.invoke(app, ["demo", "-c", str(config_file), "--feed", str(path)])

    assert first.exit_code == second.exit_code == 0, second.output
    assert "2 new, 0 already stored" in first.output
    assert "1 new, 1 already stored" in second.output
