"""Replay mentions from JSONL or JSON files: the demo feed, a team's own export, tests.

One mention per line (or a JSON array): `id` and `text` are required; `source` (a platform label
such as twitter, reddit, appstore), `author`, `author_name`, `author_followers`, `engagement`
(likes, reposts and replies), `lang`, `rating`, `created_at` (ISO-8601) and `url` are optional.
The cursor remembers how far each file was read and a fingerprint of what was read, so a file
that grows is read incrementally, while a new or corrected export saved under the same name is
read again from its start: what was stored already is recognised by (source, id) and skipped.
A line that is not JSON or not UTF-8, or a record with a bad field, is skipped and reported by its
line number; a .json feed that is not one JSON array fails the fetch, naming the line.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from config.schema import ReplaySource as ReplayConfig
from config.schema import Settings
from listener.models import Mention
from listener.records import RecordError, record_counts
from listener.sources import FetchResult, NotConfigured, Source
from listener.sources.common import ItemError, fit_for_storage, to_utc
from listener.sources.paging import read_cursor
from listener.textfiles import TextFileError, read_text

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


# Optional fields that are text: anything else (a number, an object) is refused, not stored garbled.
TEXT_FIELDS = {"author_name": "the author's display name", "url": "a link"}


def mention_from_record(record: Any, collector: str) -> Mention:
    """Turn one exported record into a mention, or raise RecordError naming the problem."""
    if not isinstance(record, dict):
        raise RecordError(f"expected a JSON object, got {type(record).__name__}")
    native_id = record.get("id")
    text = record.get("text")
    if native_id is None or str(native_id).strip() == "":
        raise RecordError("missing 'id'")
    if isinstance(native_id, bool) or not isinstance(native_id, str | int):
        raise RecordError(f"'id' must be text or a whole number, got {native_id!r}")
    if not isinstance(text, str):
        raise RecordError("missing 'text' (a string)")
    for key, meaning in TEXT_FIELDS.items():
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise RecordError(f"{key!r} must be {meaning} or null, got {value!r}")
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


class FeedError(ValueError):
    """A feed file that cannot be read at all (a .json feed that is not one JSON array of
    mentions); the message names the file, where, and the fix."""


# A file's read position: `records` consumed, and a fingerprint of what was consumed (JSONL: the
# bytes up to `offset`, `line` lines; .json: the records), so a new or corrected export saved under
# the same name is noticed and read again from its start. A position without `sha256` (a cursor
# written before fingerprints) is trusted as a count of records.
Position = dict[str, Any]


def load_json_feed(path: Path) -> list[Any]:
    """The mentions of a .json feed (one JSON array), or FeedError / TextFileError saying why
    not, with the line."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise FeedError(
            f"{path} line {error.lineno} column {error.colno}: not valid JSON ({error.msg});"
            " a .json feed is one JSON array of mentions: fix or export it again, or write JSONL"
            " (one mention per line)"
        ) from None
    if not isinstance(data, list):
        raise FeedError(f"{path}: a .json feed must hold a list of mentions, not {_kind(data)}")
    return data


def _kind(value: Any) -> str:
    return "an object" if isinstance(value, dict) else type(value).__name__


def _json_records(path: Path, position: Position) -> Iterator[tuple[int, Any, Position]]:
    data = load_json_feed(path)
    start = int(position.get("records", 0))
    digest = hashlib.sha256()
    for record in data[:start]:
        digest.update(_canonical(record))
    if "sha256" in position and (start > len(data) or digest.hexdigest() != position["sha256"]):
        start, digest = 0, _read_again(path)
    for index in range(start, len(data)):
        digest.update(_canonical(data[index]))
        yield index + 1, data[index], {"records": index + 1, "sha256": digest.hexdigest()}


def _read_again(path: Path) -> Any:
    """A fresh digest for a file that changed before the last mention read (a new or corrected
    export under the same name): it is read from the start; the (source, id) check skips what
    is stored."""
    log.info("%s changed before the last mention read: reading it again from the start", path)
    return hashlib.sha256()


def _canonical(record: Any) -> bytes:
    return json.dumps(record, sort_keys=True, ensure_ascii=False).encode() + b"\n"


HASH_CHUNK = 1 << 20


def _hash_prefix(file: BinaryIO, size: int, digest: Any) -> int:
    """Feed the file's first `size` bytes to `digest` a chunk at a time; how many there were."""
    read = 0
    while read < size:
        chunk = file.read(min(HASH_CHUNK, size - read))
        if not chunk:
            break
        digest.update(chunk)
        read += len(chunk)
    return read


def _jsonl_records(path: Path, position: Position) -> Iterator[tuple[int, Any, Position]]:
    """JSONL is streamed from where the last read ended, so a cycle costs memory for its own
    records only. Lines end at \\n (or \\r\\n) only, as `listener classify` reads them: a U+2028
    inside a text (json.dumps with ensure_ascii=False writes it raw) is not a break. A line that
    is not UTF-8 is refused by its number, never stored garbled."""
    records, offset, line = (int(position.get(k, 0)) for k in ("records", "offset", "line"))
    skip = 0
    digest = hashlib.sha256()
    with path.open("rb") as file:
        if "sha256" not in position:
            skip, records, offset, line = records, 0, 0, 0  # an old cursor: a count of records
        elif offset:
            read = _hash_prefix(file, offset, digest)
            if read < offset or digest.hexdigest() != position["sha256"]:
                file.seek(0)
                records, offset, line, digest = 0, 0, 0, _read_again(path)
        for raw in file:
            line += 1
            offset += len(raw)
            digest.update(raw)
            content = raw.removesuffix(b"\n").removesuffix(b"\r")
            if line == 1:
                content = content.removeprefix(b"\xef\xbb\xbf")  # Excel's and Notepad's BOM
            if not content.strip():
                continue
            records += 1
            if records <= skip:
                continue
            try:
                item = _parse(content.decode("utf-8"))
            except UnicodeDecodeError as error:
                item = RecordError(TextFileError(path, line, content[error.start]).problem)
            after = {"records": records, "offset": offset, "line": line}
            yield line, item, after | {"sha256": digest.hexdigest()}


def _records(path: Path, position: Position) -> Iterator[tuple[int, Any, Position]]:
    """(line number, parsed record or its RecordError, the position after it), from `position`."""
    if path.suffix == ".json":
        return _json_records(path, position)
    return _jsonl_records(path, position)


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
        consumed: dict[str, Any] = read_cursor(cursor, self.name)
        mentions: list[Mention] = []
        rejected: list[str] = []
        for path in self.paths:
            key = str(path)
            if len(mentions) >= self.max_items:
                break
            position = consumed.get(key, {})
            if not isinstance(position, dict):  # a cursor from before fingerprints: a count
                position = {"records": position if isinstance(position, int) else 0}
            with closing(_records(path, position)) as records:
                for number, record, after in records:
                    if len(mentions) >= self.max_items:
                        break
                    consumed[key] = after
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
