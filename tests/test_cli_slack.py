"""`listener slack serve` / `listener slack socket`: the commands as an operator runs them."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml
from typer.testing import CliRunner

from alerts.review import APPROVE
from listener.cli import app
from tests import slack_payloads as sp
from tests.conftest import ROOT
from tests.fake_slack import FakeSlack

runner = CliRunner()
MANIFEST = ROOT / "alerts" / "slack_manifest.yaml"


@pytest.mark.parametrize(
    ("command", "variable"),
    [("serve", "SLACK_SIGNING_SECRET"), ("socket", "SLACK_APP_TOKEN")],
)
def test_a_missing_slack_secret_is_named_with_the_fix(database_url, monkeypatch, command, variable):
    monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-placeholder")
    result = runner.invoke(app, ["slack", command])
    assert result.exit_code == 2
    assert f"{variable} is not set: export the Slack app's" in result.output


def test_serve_answers_slack_and_refuses_forged_requests(database_url):
    with FakeSlack() as slack:
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": "xoxb-test-placeholder",
            "SLACK_BASE_URL": slack.base_url,
            "SLACK_SIGNING_SECRET": sp.SIGNING_SECRET,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "listener", "slack", "serve", "--port", "0"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = None
            for line in process.stderr:
                match = re.search(r"listening on (http://\S+)", line)
                if match:
                    url = match.group(1)
                    break
            assert url, "the server never said where it listens"
            click = sp.block_action(APPROVE, "1", "C0REVIEW", "1700000000.000001")
            forged = sp.send(sp.signed_request(url, click, int(time.time()), secret="guess"))
            unknown = sp.send(sp.signed_request(url, click, int(time.time())))
        finally:
            process.send_signal(signal.SIGTERM)
            _, rest = process.communicate(timeout=30)
    assert forged.status == 401
    assert unknown.status == 400  # signed, but there is no draft 1 in this empty database
    assert "draft 1 does not exist" in unknown.body["error"]
    assert process.returncode == 0
    assert "refused a request from 127.0.0.1: bad signature" in rest
    assert sp.SIGNING_SECRET not in rest


def test_serve_on_a_port_in_use_says_so_without_a_traceback(database_url, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-placeholder")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", sp.SIGNING_SECRET)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["slack", "serve", "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.output
    assert "Traceback" not in result.output


def test_socket_mode_with_a_token_slack_refuses_names_the_variable(database_url, monkeypatch):
    with FakeSlack() as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-placeholder")
        monkeypatch.setenv("SLACK_BASE_URL", slack.base_url)
        monkeypatch.setenv("SLACK_APP_TOKEN", "xoxp-a-user-token-not-an-app-token")
        result = runner.invoke(app, ["slack", "socket"])
    assert result.exit_code == 2
    assert "Slack refused to open a Socket Mode connection (invalid_auth)" in result.output
    assert "check SLACK_APP_TOKEN holds the app-level token" in result.output


def test_the_manifest_asks_for_what_the_workflow_uses():
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert "chat:write" in manifest["oauth_config"]["scopes"]["bot"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["interactivity"]["request_url"].endswith("/slack/interactions")
    assert manifest["settings"]["socket_mode_enabled"] is True
