"""Database access: engine set-up, migrations on start, and the few writes that need care."""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import ColumnElement, Engine, and_, delete, event, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlmodel import Session, create_engine
from tenacity import (
    retry_if_exception,
    wait_exponential_jitter,
)

from listener.models import Alert, Classification, Mention, ReplyDraft
from listener.retrying import run_with_retries

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
# Shorter texts ("thanks!", "help") repeat by chance; longer identical texts are cross-posts.
MIN_CROSS_POST_CHARS = 30
_URL = re.compile(r"https?://\S+")
BUSY_TIMEOUT_S = 30.0  # SQLite: how long a writer waits for another's lock before failing
T = TypeVar("T")


def is_transient_db_error(error: BaseException) -> bool:
    """Locked (SQLite), restarting or unreachable (PostgreSQL): worth trying again shortly."""
    if isinstance(error, DatabaseUnavailable):
        return error.transient
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError | InterfaceError)


def retry_database(
    call: Callable[[], T], *, what: str, attempts: int = 4, initial_wait_s: float = 2.0
) -> T:
    """Run a pipeline step, retrying it when the database is briefly locked or unavailable.

    Safe because every step commits its work batch by batch: a retried step redoes only the
    batch that did not commit.
    """

    return run_with_retries(
        call,
        retry=retry_if_exception(is_transient_db_error),
        attempts=attempts,
        wait=wait_exponential_jitter(multiplier=initial_wait_s, max=60),
        log=log,
        describe=lambda error: f"{what}: database unavailable ({type(error).__name__})",
    )


def _unicode_lower(value: object) -> object:
    """SQLite's own lower() folds ASCII letters only ("ÖMER" stays "ÖMER"); this one folds every
    script, as PostgreSQL's does in a UTF-8 locale, so brand matching in the digest and author
    erasure find "Öko" and "@ömer" written in any case."""
    return value.lower() if isinstance(value, str) else value


def create_db_engine(url: str, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    """An engine for any SQLAlchemy URL; SQLite gets WAL, a busy timeout, foreign keys and a
    Unicode-aware lower()."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_s})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.close()
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (a no-op when it is current)."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class DatabaseUnavailable(Exception):
    """The database cannot be opened: the message says which (never its password) and why."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient  # a server down or restarting, not a wrong URL

    @property
    def exit_status(self) -> int:
        """For a daemon's supervisor: 1 = start again later, 2 = fix the configuration first."""
        return 1 if self.transient else 2


def open_database(url: str, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    """An engine with the schema migrated to the newest revision."""
    try:
        engine = create_db_engine(url, busy_timeout_s)
    except ArgumentError as error:  # unparsable, or a dialect whose driver is not installed
        raise DatabaseUnavailable(
            f"the database URL cannot be used ({error}); set DATABASE_URL or storage.url"
            " to e.g. sqlite:///data/listener.db or"
            " postgresql+psycopg://user@host/listener",
            transient=False,
        ) from None
    except OSError as error:  # SQLite: the file's folder cannot be created
        raise DatabaseUnavailable(
            f"cannot create the folder of the SQLite database {describe_location(url)}:"
            f" {error.strerror or error}; choose a writable path in DATABASE_URL or storage.url",
            transient=False,
        ) from None
    except ImportError as error:  # e.g. mysql://, whose driver is not a dependency
        raise DatabaseUnavailable(
            f"the database URL needs a driver that is not installed ({error}); listener runs on"
            " SQLite and PostgreSQL (pip install -e '.[postgres]')",
            transient=False,
        ) from None
    try:
        migrate(engine)
    except (OperationalError, InterfaceError) as error:
        reason = str(error.orig or error).strip().splitlines()[0]
        sqlite = make_url(url).get_backend_name() == "sqlite"
        check = "the file can be written there" if sqlite else "the database server is running"
        raise DatabaseUnavailable(
            f"cannot open the database {describe_location(url)}: {reason}; check DATABASE_URL"
            f" (or storage.url) and that {check}",
            transient=not sqlite or "locked" in reason,  # not a path that cannot work
        ) from error
    return engine


def open_database_when_up(url: str) -> Engine:
    """`open_database` for a daemon starting at boot, when the server may still be starting:
    a few tries with backoff before `DatabaseUnavailable`."""
    return retry_database(lambda: open_database(url), what="opening the database")


def describe_location(url: str) -> str:
    """Where the data lives, for people: a file path for SQLite, the URL without password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return str(Path(parsed.database).expanduser().resolve())
    return parsed.render_as_string(hide_password=True)


def content_hash(text: str) -> str | None:
    """A fingerprint that survives case, spacing and link changes, for linking cross-posts."""
    normalized = unicodedata.normalize("NFKC", _URL.sub("", text)).casefold()
    normalized = " ".join(normalized.split())
    if len(normalized) < MIN_CROSS_POST_CHARS:
        return None
    return hashlib.sha256(normalized.encode()).hexdigest()


@dataclass(frozen=True)
class InsertResult:
    inserted: int
    duplicates: int
    cross_posts: int


def _insert_ignoring_duplicates(session: Session, row: dict) -> bool:
    dialect = session.get_bind().dialect.name
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")
    statement = (
        insert(Mention)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["source", "native_id"])
        .returning(Mention.id)  # rowcount is -1 here on PostgreSQL (psycopg 3): ask for the id
    )
    return session.execute(statement).first() is not None


def store_mentions(session: Session, mentions: Iterable[Mention]) -> InsertResult:
    """Insert new mentions; the same (source, native id) again is a no-op.

    A text the same author (handle in any case) already posted elsewhere is linked to the first
    copy (`duplicate_of_id`), so it is classified but never drafted for or alerted on twice. The
    same text from another author, or from a post without an author, is a post of its own: another
    customer with the same complaint is answered and alerted on too. The caller commits.
    """
    inserted = duplicates = cross_posts = 0
    for mention in mentions:
        mention.content_hash = content_hash(mention.text)
        handle = mention.author_handle
        if mention.content_hash and handle:
            mention.duplicate_of_id = session.scalar(
                select(func.min(Mention.id)).where(
                    Mention.content_hash == mention.content_hash,
                    func.lower(Mention.author_handle) == handle.lower(),
                )
            )
        row = mention.model_dump(exclude={"id"})
        if _insert_ignoring_duplicates(session, row):
            inserted += 1
            cross_posts += mention.duplicate_of_id is not None
        else:
            duplicates += 1
    return InsertResult(inserted=inserted, duplicates=duplicates, cross_posts=cross_posts)


@dataclass(frozen=True)
class PurgeResult:
    mentions: int
    classifications: int
    drafts: int
    alerts: int
    redacted_alerts: int = 0  # crisis alerts quoting the author among others


def delete_mentions(session: Session, condition: ColumnElement[bool]) -> PurgeResult:
    """Delete the mentions matching `condition` with everything derived from them.

    Copies of a deleted mention that other authors posted stay, unlinked. The caller commits.
    """
    doomed = select(Mention.id).where(condition)
    session.execute(
        update(Mention).where(Mention.duplicate_of_id.in_(doomed)).values(duplicate_of_id=None)  # type: ignore[union-attr]
    )
    # Alerts first: a draft's review message (an outbox row) refers to the draft.
    counts = {
        table: session.execute(delete(table).where(table.mention_id.in_(doomed))).rowcount  # type: ignore[attr-defined]
        for table in (Alert, Classification, ReplyDraft)
    }
    removed = session.execute(delete(Mention).where(condition)).rowcount
    return PurgeResult(removed, counts[Classification], counts[ReplyDraft], counts[Alert])


def purge_before(
    session: Session, cutoff: datetime, per_collector: dict[str, datetime] | None = None
) -> PurgeResult:
    """Delete mentions created before `cutoff`, or before their collector's own cutoff."""
    per_collector = per_collector or {}
    condition = or_(
        and_(Mention.created_at < cutoff, Mention.collector.not_in(per_collector)),  # type: ignore[attr-defined]
        *(
            and_(Mention.collector == collector, Mention.created_at < own_cutoff)
            for collector, own_cutoff in per_collector.items()
        ),
    )
    return delete_mentions(session, condition)


def forget_author(session: Session, handle: str, source: str | None = None) -> PurgeResult:
    """Erase an author's mentions (handle in any case, with or without @): a privacy request."""
    handle = handle.lstrip("@")
    condition = func.lower(Mention.author_handle) == handle.lower()
    if source:
        wanted = source.lower()
        condition = and_(
            condition,
            or_(func.lower(Mention.source) == wanted, func.lower(Mention.collector) == wanted),
        )
    result = delete_mentions(session, condition)
    return replace(result, redacted_alerts=_redact_quotes(session, handle))


def stored_sources(session: Session) -> set[str]:
    """The platforms and collectors that stored mentions, in lower case: what `forget --source`
    can match."""
    platforms = session.scalars(select(func.lower(Mention.source)).distinct())
    collectors = session.scalars(select(func.lower(Mention.collector)).distinct())
    return {name for name in (*platforms, *collectors) if name}


REDACTED_LINE = "• [removed at the author's request]"


def _redact_quotes(session: Session, handle: str) -> int:
    """Crisis alerts quote several authors, one line each (`• @handle on ...`): redact theirs.

    Counts the alerts that quoted this author, not those that merely contain the text (@bob in
    a quote of @bobby)."""
    marker = f"@{handle}".lower()
    redacted = 0
    quoting = select(Alert).where(
        Alert.mention_id.is_(None),  # type: ignore[union-attr]
        func.lower(Alert.body).contains(marker, autoescape=True),
    )
    for alert in session.scalars(quoting):
        lines = [
            REDACTED_LINE if line.lower().startswith(f"• {marker} ") else line
            for line in alert.body.splitlines()
        ]
        body = "\n".join(lines)
        if body != alert.body:
            alert.body = body
            session.add(alert)
            redacted += 1
    return redacted
