"""`listener slack serve` and `listener slack socket`: where Slack's button clicks arrive."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from slack_sdk.errors import SlackApiError, SlackClientError

from alerts.interactions import InteractionHandler, slack_client
from config.schema import Settings
from listener.cli_nlp import open_engine
from listener.sources import build_sources

slack_app = typer.Typer(
    help="Review drafts and acknowledge alerts from Slack: the interactivity endpoint.",
    no_args_is_help=True,
)
log = logging.getLogger("listener.slack")
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", envvar="LISTENER_CONFIG", help="YAML config file.")
]
LogLevel = Annotated[str, typer.Option("--log-level", envvar="LISTENER_LOG_LEVEL")]


def _settings(path: Path | None, level: str) -> Settings:
    """Logging set up and the config loaded as every `listener` command does (exit 2 if invalid)."""
    from listener.cli import _settings as load  # the CLI imports this module
    from listener.cli import _setup_logging

    _setup_logging(level)
    return load(path)


def _secret(name: str, what: str) -> str:
    value = os.environ.get(name)
    if not value:
        typer.echo(f"{name} is not set: export the Slack app's {what}.", err=True)
        raise typer.Exit(code=2)
    return value


def build_handler(settings: Settings) -> InteractionHandler:
    """The handler with its database, Web API client and the sources that can reply."""
    try:
        client = slack_client(settings)
    except RuntimeError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(code=2) from None
    repliers = {s.name: s for s in build_sources(settings).enabled if s.can_reply}
    if settings.slack.review.post_replies:
        log.info("slack: Approve posts replies through: %s", sorted(repliers) or "no source")
    else:
        log.info("slack: Approve records the decision only (slack.review.post_replies is off)")
    return InteractionHandler(settings, open_engine(settings), client, repliers=repliers)


def _stop_on_signals(stop: Callable[[], object]) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_args: stop())


@slack_app.command("serve")
def serve(
    config: ConfigOption = None,
    port: Annotated[
        int,
        typer.Option("--port", min=0, max=65535, help="TCP port to listen on (0: any free one)."),
    ] = 3000,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; behind a TLS proxy keep 127.0.0.1.")
    ] = "127.0.0.1",
    log_level: LogLevel = "info",
) -> None:
    """HTTP endpoint for Slack's Request URL (POST /slack/interactions), signature-checked."""
    from alerts.slack_http import InteractionServer

    settings = _settings(config, log_level)
    secret = _secret(settings.slack.signing_secret_env, "signing secret (Basic Information)")
    handler = build_handler(settings)
    try:
        server = InteractionServer(handler.handle, secret, host=host, port=port)
    except OSError as error:
        typer.echo(
            f"cannot listen on {host}:{port}: {error.strerror or error};"
            " is another `listener slack serve` running? Choose another --port or --host.",
            err=True,
        )
        raise typer.Exit(code=2) from None
    _stop_on_signals(lambda: threading.Thread(target=server.shutdown).start())
    log.info("slack: listening on %s", server.url)
    server.serve_forever()


@slack_app.command("socket")
def socket(config: ConfigOption = None, log_level: LogLevel = "info") -> None:
    """Socket Mode: no public URL; needs an app-level token (xapp-…, connections:write)."""
    from alerts.slack_socket import run_socket_mode

    settings = _settings(config, log_level)
    app_token = _secret(settings.slack.app_token_env, "app-level token (xapp-…)")
    handler = build_handler(settings)
    stop = threading.Event()
    _stop_on_signals(stop.set)
    try:
        run_socket_mode(handler.handle, app_token, handler.client, stop)
    except SlackApiError as error:
        reason = error.response.get("error")
        typer.echo(
            f"Slack refused to open a Socket Mode connection ({reason}): check"
            f" {settings.slack.app_token_env} holds the app-level token (xapp-…, with"
            " connections:write) and Socket Mode is on for the app.",
            err=True,
        )
        raise typer.Exit(code=2) from None
    except (SlackClientError, OSError) as error:
        typer.echo(f"cannot reach Slack for Socket Mode: {error}", err=True)
        raise typer.Exit(code=1) from None
