"""`executor` config and `listener worker`'s refusals: clear errors, no services needed."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from config.schema import EXAMPLE_CONFIG, ConfigError, load_settings, parse_settings
from listener.cli import app
from listener.distributed import SchedulerLockError, require_postgresql
from listener.tasks import BrokerNotConfigured, broker_url

runner = CliRunner()


def _config(tmp_path, **changes) -> str:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data.update(changes)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_the_default_stays_in_process():
    settings = load_settings()
    assert settings.executor == "inprocess"
    assert settings.celery.queue == "listener"
    assert settings.celery.classify_queue == "classify"


def test_an_unknown_executor_and_a_secret_in_place_of_a_variable_name_are_reported():
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["executor"] = "spark"
    data["celery"] = {"broker_url_env": "redis://user:pw@host:6379/0", "dispatch_every": "soon"}
    with pytest.raises(ConfigError) as error:
        parse_settings(data)
    message = str(error.value)
    assert "executor" in message
    assert "celery.broker_url_env" in message
    assert "NAME of an environment variable" in message
    assert "celery.dispatch_every" in message


def test_worker_refuses_an_inprocess_config(tmp_path):
    result = runner.invoke(app, ["worker", "--config", _config(tmp_path)])
    assert result.exit_code == 2
    assert "executor: inprocess" in result.output
    assert "executor: celery" in result.output


def test_worker_refuses_sqlite_naming_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("LISTENER_BROKER_URL", "redis://127.0.0.1:1/0")
    result = runner.invoke(app, ["worker", "--config", _config(tmp_path, executor="celery")])
    assert result.exit_code == 2
    assert "needs a PostgreSQL database" in result.output
    assert "DATABASE_URL=postgresql+psycopg://" in result.output


def test_worker_without_a_broker_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://listener@127.0.0.1:1/listener")
    monkeypatch.delenv("LISTENER_BROKER_URL", raising=False)
    result = runner.invoke(app, ["worker", "--config", _config(tmp_path, executor="celery")])
    assert result.exit_code == 2
    assert "set the environment variable LISTENER_BROKER_URL" in result.output


def test_broker_url_and_database_checks(monkeypatch):
    settings = load_settings()
    monkeypatch.delenv("LISTENER_BROKER_URL", raising=False)
    with pytest.raises(BrokerNotConfigured, match="LISTENER_BROKER_URL"):
        broker_url(settings)
    monkeypatch.setenv("LISTENER_BROKER_URL", " redis://127.0.0.1:6379/0 ")
    assert broker_url(settings) == "redis://127.0.0.1:6379/0"
    with pytest.raises(SchedulerLockError, match="executor: inprocess"):
        require_postgresql("sqlite:///listener.db")
    require_postgresql("postgresql+psycopg://listener@db/listener")


def test_status_without_a_broker_says_which_variable_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.delenv("LISTENER_BROKER_URL", raising=False)
    result = runner.invoke(
        app, ["status", "--json", "--config", _config(tmp_path, executor="celery", sources=[])]
    )
    assert result.exit_code == 1  # unhealthy: no worker can be reached
    data = json.loads(result.stdout)
    assert "LISTENER_BROKER_URL" in data["celery"]["error"]
    assert data["healthy"] is False
