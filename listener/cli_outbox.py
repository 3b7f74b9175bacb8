"""`listener outbox move` / `drop`: what to do with alerts waiting for a channel Slack refuses."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from sqlmodel import Session

from alerts.outbox import drop_waiting, move_waiting
from listener.cli_nlp import ConfigOption, _config, open_engine
from listener.models import utcnow

outbox_app = typer.Typer(
    help="Alerts and review messages waiting in the outbox for a channel Slack refuses.",
    no_args_is_help=True,
)
console = Console(soft_wrap=True)


@outbox_app.command("move")
def move(
    from_channel: Annotated[str, typer.Option("--from", help="the channel they wait for")],
    to_channel: Annotated[str, typer.Option("--to", help="the channel to post them to")],
    config: ConfigOption = None,
) -> None:
    """Post what waits for one channel to another (a route corrected after Slack refused it)."""
    settings = _config(config)
    with Session(open_engine(settings)) as session:
        moved = move_waiting(session, from_channel, to_channel)
        session.commit()
    _report(moved, from_channel, f"will go to {to_channel} on the next delivery")


@outbox_app.command("drop")
def drop(
    channel: Annotated[str, typer.Option("--channel", help="the channel they wait for")],
    config: ConfigOption = None,
) -> None:
    """Never send what waits for a channel (kept in the outbox as dropped, for the record)."""
    settings = _config(config)
    with Session(open_engine(settings)) as session:
        dropped = drop_waiting(session, channel, utcnow())
        session.commit()
    _report(dropped, channel, "are dropped and will not be sent")


def _report(count: int, channel: str, outcome: str) -> None:
    if not count:
        console.print(f"Nothing waits for {channel}.", markup=False)
        raise typer.Exit(code=1)
    console.print(f"{count} rows waiting for {channel} {outcome}.", markup=False)
