from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlmodel import Session, func, select

from listener.models import Classification, Mention
from listener.storage import MIGRATIONS, content_hash, migrate, purge_before, store_mentions


def _mention(
    native_id: str, text: str = "The Lumora Glow stopped working after a week", **kw
) -> Mention:
    return Mention(
        source=kw.pop("source", "twitter"),
        collector="test",
        native_id=native_id,
        text=text,
        created_at=kw.pop("created_at", datetime(2026, 11, 20, tzinfo=UTC)),
        **kw,
    )


def _count(engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Mention))


def test_same_source_and_native_id_twice_is_a_no_op(engine):
    with Session(engine) as session:
        first = store_mentions(session, [_mention("1"), _mention("2", "Something else entirely")])
        again = store_mentions(session, [_mention("1"), _mention("1", source="reddit")])
        session.commit()
    assert (first.inserted, first.duplicates) == (2, 0)
    assert (again.inserted, again.duplicates) == (1, 1)  # reddit "1" is another post
    assert _count(engine) == 3


def test_cross_post_is_linked_to_the_first_copy(engine):
    with Session(engine) as session:
        store_mentions(session, [_mention("t1", author_handle="maria_k")])
        result = store_mentions(
            session,
            [
                _mention(
                    "r1",
                    "the LUMORA glow   stopped working after a week",
                    source="reddit",
                    author_handle="Maria_K",
                )
            ],
        )
        session.commit()
        original = session.exec(select(Mention).where(Mention.native_id == "t1")).one()
        copy = session.exec(select(Mention).where(Mention.native_id == "r1")).one()
    assert result.cross_posts == 1
    assert copy.duplicate_of_id == original.id
    assert original.duplicate_of_id is None


def test_the_same_text_from_another_author_is_a_post_of_its_own(engine):
    """Two customers with the same complaint are two customers: both answered and alerted on."""
    with Session(engine) as session:
        store_mentions(session, [_mention("t1", author_handle="maria_k")])
        result = store_mentions(
            session,
            [
                _mention("t2", author_handle="big_influencer"),
                _mention("t3"),  # no author: nothing to say it is the same person
            ],
        )
        session.commit()
        links = session.exec(select(Mention.native_id, Mention.duplicate_of_id)).all()
    assert result.cross_posts == 0
    assert sorted(links) == [("t1", None), ("t2", None), ("t3", None)]


def test_short_texts_are_never_linked():
    assert content_hash("thanks!") is None
    assert content_hash("x" * 40) == content_hash("X" * 40 + " https://t.co/abc")


def test_sqlite_runs_in_wal_mode_and_migrations_are_idempotent(engine):
    migrate(engine)  # second run: nothing to do
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_the_migrations_build_exactly_the_tables_the_models_declare(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []


def test_raw_payload_and_untrusted_text_are_stored_faithfully(engine):
    hostile = "<!channel> \u202egnp.exe <script>alert(1)</script> \u200b 🙂"
    with Session(engine) as session:
        store_mentions(session, [_mention("h", hostile, raw={"id": "h", "text": hostile})])
        session.commit()
        stored = session.exec(select(Mention)).one()
    assert stored.text == hostile
    assert stored.raw == {"id": "h", "text": hostile}


def test_purge_removes_old_mentions_and_what_derives_from_them(engine):
    old = datetime(2025, 1, 1, tzinfo=UTC)
    with Session(engine) as session:
        store_mentions(session, [_mention("old", created_at=old), _mention("new")])
        session.commit()
        old_id = session.exec(select(Mention.id).where(Mention.native_id == "old")).one()
        session.add(
            Classification(
                mention_id=old_id,
                language="en",
                sentiment="negative",
                score_negative=1,
                score_neutral=0,
                score_positive=0,
                urgency="high",
                urgency_score=0.7,
                intent="damaged_defective",
                model_name="t",
                model_version="1",
            )
        )
        session.commit()
        result = purge_before(session, old + timedelta(days=1))
        session.commit()
        remaining = session.exec(select(Mention)).all()
    assert (result.mentions, result.classifications) == (1, 1)
    assert [m.native_id for m in remaining] == ["new"]
    assert remaining[0].duplicate_of_id is None  # the link to the purged copy is dropped
