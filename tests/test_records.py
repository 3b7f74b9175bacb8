"""The optional counts of a mention record, read one way by `listener classify|draft` and replay."""

from __future__ import annotations

import pytest

from listener.records import RecordError, record_counts, whole_number
from listener.sources.replay import mention_from_record


@pytest.mark.parametrize(
    ("value", "expected"),
    [(12, 12), ("12", 12), (" 12 ", 12), (12.0, 12), (None, None), ("", None)],
)
def test_whole_numbers_are_read_from_ints_strings_and_whole_floats(value, expected):
    assert whole_number({"engagement": value}, "engagement") == expected


def test_an_absent_count_is_none():
    assert record_counts({}) == {"rating": None, "author_followers": None, "engagement": None}


@pytest.mark.parametrize("value", [1.5, "twelve", True, [3], {"n": 3}])
def test_other_values_are_refused_with_the_field_named(value):
    with pytest.raises(RecordError, match="'engagement' must be a whole number or null"):
        whole_number({"engagement": value}, "engagement")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"rating": "0"}, "'rating' must be 1-5, got 0"),
        ({"author_followers": -5}, "'author_followers' counts people or reactions"),
        ({"engagement": "-1"}, "'engagement' counts people or reactions"),
    ],
)
def test_out_of_range_counts_are_refused(record, message):
    with pytest.raises(RecordError, match=message):
        record_counts(record)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", "9" * 257, "'id' is at most 256 characters, got 257"),
        ("source", "a-review-site-with-a-very-long-name", "'source' is at most 32 characters"),
    ],
)
def test_ids_longer_than_their_column_are_refused_with_the_field_named(field, value, message):
    """PostgreSQL would refuse them, failing the whole batch of the record, cycle after cycle."""
    record = {"id": "1", "text": "hello", field: value}
    with pytest.raises(RecordError, match=message):
        mention_from_record(record, collector="feed")


def test_values_as_long_as_their_column_are_kept():
    record = {"id": "9" * 256, "text": "hello", "source": "s" * 32, "lang": "en"}
    mention = mention_from_record(record, collector="feed")
    assert (len(mention.native_id), mention.source) == (256, "s" * 32)


def test_a_long_author_or_language_tag_is_cut_to_its_column_and_nul_is_removed():
    """They only describe the item: cut, it is still stored (the full values stay in `raw`)."""
    record = {"id": "1\x00", "text": "hel\x00lo", "author": "a" * 300, "lang": "en-GB-x-private"}
    mention = mention_from_record(record, collector="feed")
    assert (mention.native_id, mention.text) == ("1", "hello")
    assert (len(mention.author_handle), mention.language) == (256, "en-gb-x-private"[:16])
    assert mention.raw["author"] == "a" * 300
