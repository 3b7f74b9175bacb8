"""Files read as their writers meant: records end at line ends only; UMSAB as XLM-T ships it."""

from __future__ import annotations

import pytest

from listener.nlp.training import DataError, load_umsab
from listener.textfiles import TextFileError, read_lines

# Characters that str.splitlines breaks at, found inside tweets and in JSON written with
# ensure_ascii=False: line and paragraph separators, NEL, a form feed.
INSIDE_A_LINE = ["two\u2028lines", "para\u2029graph", "next\x85line", "form\x0cfeed"]


def test_records_end_at_line_ends_only(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_bytes("\n".join(INSIDE_A_LINE).encode() + b"\n")
    assert read_lines(path) == INSIDE_A_LINE


def test_a_byte_order_mark_and_windows_line_ends_are_no_part_of_a_record(tmp_path):
    path = tmp_path / "excel.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": 1}\r\n{"id": 2}')
    assert read_lines(path) == ['{"id": 1}', '{"id": 2}']


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"id": 1, "text": "ok"}\n{"id": 2, "text": "caf\xe9"}\n')
    with pytest.raises(TextFileError, match=r"latin1.jsonl line 2: not UTF-8 text \(byte 0xe9\)"):
        read_lines(path)


def test_umsab_texts_keep_one_label_each_whatever_characters_they_hold(tmp_path):
    language = tmp_path / "english"
    language.mkdir()
    (language / "test_text.txt").write_bytes("\r\n".join(INSIDE_A_LINE).encode() + b"\r\n")
    (language / "test_labels.txt").write_text("0\n1\n2\n1\n")

    split = load_umsab(tmp_path, "test")["english"]

    assert split.texts == INSIDE_A_LINE
    assert split.labels.tolist() == [0, 1, 2, 1]


def test_umsab_files_that_are_not_utf8_are_a_data_error(tmp_path):
    language = tmp_path / "english"
    language.mkdir()
    (language / "test_text.txt").write_bytes(b"caf\xe9\n")
    (language / "test_labels.txt").write_text("2\n")
    with pytest.raises(DataError, match="not UTF-8 text"):
        load_umsab(tmp_path, "test")


def test_umsab_read_from_xlm_t_leaves_out_its_folder_of_all_languages_together(tmp_path):
    for folder, texts in {"english": ["good", "bad"], "all": ["good", "bad", "bueno"]}.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "test_text.txt").write_text("\n".join(texts) + "\n")
        (tmp_path / folder / "test_labels.txt").write_text("2\n0\n2\n"[: 2 * len(texts)])

    assert list(load_umsab(tmp_path, "test")) == ["english"]
