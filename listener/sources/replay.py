"""Replay mentions from JSONL or JSON files: the demo feed, a team's own export, tests.

One mention per line (or a JSON array): `id` and `text` are required; `source` (a platform label
such as twitter, reddit, appstore), `author`, `author_name`, `author_followers`, `engagement`
(likes, reposts and replies), `lang`, `rating`, `created_at` (ISO-8601) and `url` are optional.
The cursor remembers how many records of each file were consumed, so a file that grows is read
incrementally.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from config.schema import ReplaySource as ReplayConfig
from config.schema import Settings
from listener.models import Mention
from listener.records import RecordError, record_counts
from listener.sources import FetchResult, NotConfigured, Source
from listener.sources.common import ItemError, fit_for_storage, to_utc
from listener.sources.paging import read_cursor

log = logging.getLogger(__name__)
PACKAGE_DATA = Path(__file__).resolve().parent.parent / "data"
PACKAGE_PREFIX = "package:"
DEFAULT_PLATFORM = "replay"


def _created_at(record: dict[str, Any]) -> datetime:
    value = record.get("created_at")
    if not value:
        return datetime.now(UTC)
    try:
        return to_utc(str(value))
    except ValueError:
        raise RecordError(
            f"'created_at' must be ISO-8601 like 2026-11-20T14:03:00Z, got {value!r}"
        ) from None


# What a record calls the mentions fields it fills, for the error naming one too long.
RECORD_NAMES = {"native_id": "id", "source": "source"}


def mention_from_record(record: Any, collector: str) -> Mention:
    """Turn one exported record into a mention, or raise RecordError naming the problem."""
    if not isinstance(record, dict):
        raise RecordError(f"expected a JSON object, got {type(record).__name__}")
    native_id = record.get("id")
    text = record.get("text")
    if native_id is None or str(native_id).strip() == "":
        raise RecordError("missing 'id'")
    if not isinstance(text, str):
        raise RecordError("missing 'text' (a string)")
    counts = record_counts(record)
    lang = record.get("lang")
    author = str(record["author"]).lstrip("@") if record.get("author") else None
    mention = Mention(
        source=str(record.get("source") or DEFAULT_PLATFORM).lower(),
        collector=collector,
        native_id=str(native_id),
        url=record.get("url"),
        author_handle=author,
        author_name=record.get("author_name"),
        author_followers=counts["author_followers"],
        engagement=counts["engagement"],
        text=text,
        language=str(lang).lower() if lang else None,
        created_at=_created_at(record),
        rating=counts["rating"],
        raw=record,
    )
    try:
        return fit_for_storage(mention, RECORD_NAMES)
    except ItemError as error:
        raise RecordError(str(error)) from None


def _parse(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        return RecordError(f"not valid JSON ({error.msg})")


def _records(path: Path, start: int) -> Iterator[tuple[int, int, Any]]:
    """(record index, line number, parsed record or the parse error) from record `start` on.

    JSONL is streamed and records before `start` are not parsed, so a cycle costs memory for
    its own records only, however long the file has grown. Lines end at \\n or \\r only:
    a U+2028 inside a text (json.dumps with ensure_ascii=False writes it raw) is not a break.
    """
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8-sig", errors="replace"))
        if not isinstance(data, list):
            raise RecordError(f"{path}: a .json feed must hold a list of mentions")
        yield from ((index, index + 1, data[index]) for index in range(start, len(data)))
        return
    index = 0
    with path.open(encoding="utf-8-sig", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if index >= start:
                yield index, number, _parse(line)
            index += 1


class ReplaySource(Source):
    type: ClassVar[str] = "replay"

    def __init__(self, name: str, paths: list[Path], max_items: int) -> None:
        super().__init__(name, max_items)
        self.paths = paths

    @classmethod
    def from_config(cls, config: ReplayConfig, settings: Settings) -> ReplaySource:
        paths = [resolve_feed_path(entry, settings) for entry in config.paths]
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise NotConfigured(f"file(s) not found: {', '.join(missing)}")
        return cls(config.name, paths, config.max_items_per_cycle)

    def fetch(self, cursor: str | None) -> FetchResult:
        consumed: dict[str, int] = read_cursor(cursor, self.name)
        mentions: list[Mention] = []
        rejected: list[str] = []
        for path in self.paths:
            key = str(path)
            if len(mentions) >= self.max_items:
                break
            with closing(_records(path, consumed.get(key, 0))) as records:
                for index, number, record in records:
                    if len(mentions) >= self.max_items:
                        break
                    consumed[key] = index + 1
                    try:
                        if isinstance(record, RecordError):
                            raise record
                        mentions.append(mention_from_record(record, self.name))
                    except RecordError as error:
                        rejected.append(f"{path.name} line {number}: {error}")
        return FetchResult(mentions=mentions, cursor=json.dumps(consumed), rejected=rejected)


def resolve_feed_path(entry: str, settings: Settings) -> Path:
    if entry.startswith(PACKAGE_PREFIX):
        return PACKAGE_DATA / entry.removeprefix(PACKAGE_PREFIX)
    return settings.resolve_path(entry)
