"""The optional counts of a mention record, read one way by `listener classify|draft` and replay."""

from __future__ import annotations

import pytest

from listener.records import RecordError, record_counts, whole_number


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
