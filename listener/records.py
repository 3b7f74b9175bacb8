"""The optional numbers a mention record carries, read one way by everything that takes records
from files: `listener classify` and `listener draft` (JSONL in), and the replay source; and the
tags (`lang`, `source`) that classify and draft check, where replay reads any value as text.

Exports from spreadsheets and other tools write counts as strings ("1200") or as floats (4.0);
both are accepted where they hold a whole number. Anything else is refused with the field named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COUNT_FIELDS = ("rating", "author_followers", "engagement")
# Language tags that name no language: "und", and X's own for posts of mentions, cashtags,
# hashtags, media, very short text or no linguistic content.
NO_LANGUAGE_TAGS = frozenset({"und", "qam", "qct", "qht", "qme", "qst", "zxx", "art"})
TAG_FIELDS = {
    "lang": 'a language tag such as "en" or "pt-BR"',
    "source": 'a platform such as "twitter"',
}


class RecordError(ValueError):
    """One record cannot be used; the message says which field and why."""


def whole_number(record: Mapping[str, Any], key: str) -> int | None:
    """`record[key]` as an int; None where it is absent, null or empty."""
    value = record.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise RecordError(f"{key!r} must be a whole number or null, got {value!r}")


def record_counts(record: Mapping[str, Any]) -> dict[str, int | None]:
    """The record's rating (1-5), author_followers and engagement, checked."""
    counts = {key: whole_number(record, key) for key in COUNT_FIELDS}
    rating = counts["rating"]
    if rating is not None and not 1 <= rating <= 5:
        raise RecordError(f"'rating' must be 1-5, got {rating}")
    for key in COUNT_FIELDS[1:]:
        value = counts[key]
        if value is not None and value < 0:
            raise RecordError(
                f"{key!r} counts people or reactions, so it cannot be negative: {value}"
            )
    return counts


def check_tags(record: Mapping[str, Any]) -> None:
    """The record's `lang` and `source` are text or null."""
    for key, meaning in TAG_FIELDS.items():
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise RecordError(f"{key!r} must be {meaning} or null, got {value!r}")
