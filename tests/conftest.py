from __future__ import annotations

import os

# Tests never reach the Hugging Face hub: a model name that is not a local directory fails at
# once instead of trying the network (set before transformers reads it at import).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine

from config.schema import EXAMPLE_CONFIG, Settings, load_settings
from listener.pipeline import Pipeline
from listener.sources import Source
from listener.storage import open_database
from tests.fake_apis import FakeAPI, pipeline_with
from tests.services import Postgres, running

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Iterator[Path]:
    """The derived encoder, built once per test session (LISTENER_CACHE_DIR reuses one)."""
    preset = os.environ.get("LISTENER_CACHE_DIR")
    path = Path(preset) if preset else tmp_path_factory.mktemp("cache")
    os.environ["LISTENER_CACHE_DIR"] = str(path)
    yield path
    if not preset:
        del os.environ["LISTENER_CACHE_DIR"]


@pytest.fixture(scope="session")
def encoder_dir(model_cache: Path) -> Path:
    from listener.nlp.encoder import prepare_encoder

    return prepare_encoder(progress=lambda _message: None)


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite file per test; DATABASE_URL so subprocesses use it too."""
    url = f"sqlite:///{tmp_path / 'listener.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings() -> Settings:
    return load_settings()


def write_feed(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


FEED = [
    {
        "id": "t1",
        "source": "twitter",
        "author": "anna_b",
        "author_followers": 210,
        "lang": "de",
        "text": "Mein Lumora PowerCube ist überhitzt und hat geraucht! Hand verbrannt.",
    },
    {
        "id": "t2",
        "source": "twitter",
        "author": "mike",
        "lang": "en",
        "text": "Where is my order LM-4829163? Still waiting after two weeks, ridiculous",
    },
    {
        "id": "r2",
        "source": "reddit",
        "author": "Mike",  # the same customer: a cross-post (another author's copy is not)
        "text": "Where is my order LM-4829163? Still waiting after two weeks, ridiculous",
    },
    {
        "id": "a1",
        "source": "appstore",
        "author": "kenji",
        "rating": 5,
        "lang": "ja",
        "text": "とても便利なアプリです。最高！",
    },
    {
        "id": "t3",
        "source": "twitter",
        "author": "LumoraShop",
        "lang": "en",
        "text": "Our winter sale starts today",
    },
    {
        "id": "t4",
        "source": "twitter",
        "author": "ivana",
        "lang": "hr",
        "text": "Naplatili ste mi dvaput istu narudžbu, molim povrat novca",
    },
    {
        "id": "t5",
        "source": "twitter",
        "author": "luca",
        "lang": "it",
        "text": "Ho contattato il mio avvocato per il rimborso, ora basta",
    },
    {
        "id": "t6",
        "source": "twitter",
        "author": "sam",
        "lang": "en",
        "text": "saw a lumora ad today",
    },
]


@pytest.fixture
def feed(tmp_path: Path) -> Path:
    return write_feed(tmp_path / "feed.jsonl", FEED)


@pytest.fixture
def config_file(tmp_path: Path, feed: Path) -> Path:
    """The example config, reading the test feed, in batches of 3 so stages span batches."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["sources"] = [{"name": "feed", "type": "replay", "paths": [str(feed)]}]
    data["model"].update(name="baseline", batch_size=3)  # pipeline mechanics, fast model
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    """A started platform stand-in on 127.0.0.1 (see tests/fake_apis.py)."""
    with FakeAPI() as server:
        yield server


@pytest.fixture
def pipeline_for(engine: Engine, config_file: Path, feed: Path) -> Callable[[Source], Pipeline]:
    """The real pipeline with the given source beside a replay source."""
    return lambda source: pipeline_with(load_settings(config_file), engine, source, feed)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL server per test module; its tests skip where it cannot start."""
    yield from running(Postgres(), "PostgreSQL")


@pytest.fixture
def pg_engine(postgres: Postgres, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A fresh, migrated database on that server for each test."""
    name = request.node.name.lower().replace("[", "_").replace("]", "")[:60]
    engine = open_database(postgres.create_database(name))
    yield engine
    engine.dispose()
