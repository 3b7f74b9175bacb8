"""Pieces every platform collector shares: secrets from env, brand terms, times, item fields.

HTTP lives in `httpjson`, cursors over newest-first listings in `paging`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from config.schema import Settings
from listener.models import Mention
from listener.sources import NotConfigured

log = logging.getLogger(__name__)


class ItemError(ValueError):
    """One item of a page cannot become a mention; the message names the field."""


def secret(credentials: dict[str, str], key: str) -> str:
    """The secret `key` from the env var the config names; `NotConfigured` when unset. Never
    logged."""
    variable = credentials.get(key)
    if not variable:
        raise NotConfigured(f"credentials.{key} names no environment variable")
    value = os.environ.get(variable, "").strip()
    if not value:
        raise NotConfigured(f"{variable} not set")
    return value


def optional_secret(credentials: dict[str, str], key: str) -> str | None:
    """Like `secret`, but None when the config names no variable or it is unset."""
    variable = credentials.get(key)
    return (os.environ.get(variable, "").strip() or None) if variable else None


def to_utc(value: float | int | str | None) -> datetime:
    """Epoch seconds or ISO-8601 to an aware UTC datetime; ValueError if it is neither."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_time(value: Any, field: str) -> datetime:
    """An ISO-8601 time (with offset or Z) of an item's `field` as UTC, or ItemError."""
    if not isinstance(value, str) or not value:
        raise ItemError(f"missing {field!r} (an ISO-8601 time)")
    try:
        return to_utc(value)
    except ValueError:
        raise ItemError(f"{field!r} is not an ISO-8601 time: {value[:40]!r}") from None


def require_str(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ItemError(f"missing {field!r} (a non-empty string)")
    return value


def engagement(*counts: Any) -> int | None:
    """Likes, reposts, replies and the like, summed: how many people already reacted.

    Counts that are not whole numbers are ignored, a negative one (a Reddit score) counts as 0;
    None when the platform gave none at all.
    """
    numbers = [c for c in counts if isinstance(c, int) and not isinstance(c, bool)]
    return sum(max(c, 0) for c in numbers) if numbers else None


# Text columns of a mention. PostgreSQL refuses a NUL character in any of them and a value longer
# than the column's length; either would fail the whole batch of the item, cycle after cycle.
TEXT_FIELDS = (
    "source",
    "collector",
    "native_id",
    "url",
    "author_handle",
    "author_name",
    "text",
    "language",
)
# Fields that say which item this is: cut, two items could become one, so a longer value is refused.
IDENTITY_FIELDS = ("source", "collector", "native_id")


def column_length(field: str) -> int | None:
    """The most characters the mentions column `field` holds; None where unbounded."""
    return getattr(Mention.__table__.c[field].type, "length", None)  # type: ignore[attr-defined]


def fit_for_storage(mention: Mention, names: Mapping[str, str] | None = None) -> Mention:
    """The mention with NUL characters removed and its descriptive fields (author, language) cut
    to their columns; ItemError names an identifying field (id, platform) that is too long.

    `names` maps a field to what the input calls it (replay's `id` for native_id), for the error.
    Every collected mention passes here before it is stored, whatever source built it.
    """
    for field in TEXT_FIELDS:
        value = getattr(mention, field)
        if not isinstance(value, str):
            continue
        value = value.replace("\x00", "")
        limit = column_length(field)
        if limit is not None and len(value) > limit:
            if field in IDENTITY_FIELDS:
                name = (names or {}).get(field, field)
                raise ItemError(f"{name!r} is at most {limit} characters, got {len(value)}")
            log.warning(
                "source %s: item %s: %s cut to %d of its %d characters",
                mention.collector,
                mention.native_id[:80],
                field,
                limit,
                len(value),
            )
            value = value[:limit]
        setattr(mention, field, value)
    return mention


def rejection_reason(error: Exception) -> str:
    """Why an item was rejected: a KeyError says which field is missing, anything else itself."""
    return f"missing field {error.args[0]!r}" if isinstance(error, KeyError) else str(error)


def json_safe(value: Any) -> Any:
    """A JSON-serialisable copy of a payload (odd types become strings) for `Mention.raw`."""
    return json.loads(json.dumps(value, default=str))


@dataclass(frozen=True)
class BrandTerms:
    """The brands' keywords per language, own handles per platform and excluded phrases."""

    keywords: dict[str, list[str]]
    handles: dict[str, list[str]]
    exclude: list[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> BrandTerms:
        keywords: dict[str, list[str]] = {}
        handles: dict[str, list[str]] = {}
        exclude: list[str] = []
        for brand in settings.brands:
            for language, terms in brand.keywords.items():
                _extend(keywords.setdefault(language, []), terms)
            for platform, names in brand.handles.items():
                _extend(handles.setdefault(platform, []), [n.lstrip("@") for n in names])
            _extend(exclude, brand.exclude)
        return cls(keywords, handles, exclude)

    def all_keywords(self) -> list[str]:
        found: list[str] = []
        for terms in self.keywords.values():
            _extend(found, terms)
        return found

    def names_a_keyword(self, text: str) -> bool:
        folded = text.casefold()
        return any(term.casefold() in folded for term in self.all_keywords())

    def excluded(self, text: str) -> bool:
        folded = text.casefold()
        return any(term.casefold() in folded for term in self.exclude)


def _extend(target: list[str], items: Iterable[str]) -> None:
    for item in items:
        if item not in target:
            target.append(item)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment (feed summaries, HN comments), whitespace collapsed."""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return " ".join("".join(extractor.parts).split())
