"""Operations: `listener status` (is it healthy?) and `listener forget` (privacy requests)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from listener.cli_nlp import ConfigOption, _config, open_engine
from listener.status import collect_status
from listener.storage import forget_author, stored_sources

console = Console(soft_wrap=True)


def status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Per source: last success, last error, items/hour; backlog per stage; outbox; review queue.

    Exits 1 when a source is failing, an alert or digest keeps failing to deliver, or an approved
    reply failed to post, so monitoring can use it.
    """
    settings = _config(config)
    data = collect_status(open_engine(settings), settings)
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        _print_status(data)
    if not data["healthy"]:
        raise typer.Exit(code=1)


def _print_status(data: dict) -> None:
    table = Table(title="Sources")
    for column in ("source", "type", "state", "last success", "items/h (24h)", "last error"):
        table.add_column(column)
    for name, row in data["sources"].items():
        if not row["enabled"]:
            state = f"disabled: {row['disabled_reason']}"
        elif row["backing_off_until"]:
            state = f"{row['consecutive_failures']} failures, retry {row['backing_off_until']}"
        else:
            state = "failing" if row["consecutive_failures"] else "ok"
        table.add_row(
            name,
            row["type"],
            state,
            row["last_success_at"] or "never",
            str(row["items_per_hour_24h"]),
            (row["last_error"] or "")[:80],
        )
    console.print(table)
    for name, row in data["sources"].items():
        if row.get("reactions_recheck_error"):
            error = row["reactions_recheck_error"][:200]
            console.print(f"{name}: re-reading complaints' reactions fails: {error}", markup=False)
    backlog = ", ".join(f"{stage} {count}" for stage, count in data["backlog"].items())
    outbox = data["outbox"]
    console.print(f"Backlog (mentions waiting per stage): {backlog}", markup=False)
    console.print(
        f"Outbox: {outbox['alerts_waiting']} alerts waiting"
        + (f" since {outbox['oldest_waiting_since']}" if outbox["oldest_waiting_since"] else "")
        + (f", up to {outbox['most_attempts']} attempts" if outbox["most_attempts"] else "")
        + (f" (last error: {outbox['last_error']})" if outbox["last_error"] else ""),
        markup=False,
    )
    if outbox["alerts_failed_24h"]:
        console.print(
            f"Alerts that could not be sent in the last 24 h: {outbox['alerts_failed_24h']}"
            f" (last: {outbox['last_failure']})",
            markup=False,
        )
    console.print(f"Drafts awaiting review: {data['drafts_awaiting_review']}", markup=False)
    unsent = data["replies_not_sent"]
    if unsent["drafts"]:
        drafts = ", ".join(f"#{draft_id}" for draft_id in unsent["drafts"])
        console.print(
            f"Approved replies not sent: {drafts} (last error: {unsent['last_error']});"
            " retry with the review message's Retry sending button",
            markup=False,
        )
    digests = data["digests"]
    if digests["waiting"]:
        console.print(
            f"Digests waiting: {', '.join(digests['waiting'])} ({digests['attempts']} attempts;"
            f" last error: {digests['last_error'] or 'none yet'})",
            markup=False,
        )
    if "celery" in data:
        _print_celery(data["celery"])
    console.print("healthy" if data["healthy"] else "NOT healthy", markup=False)


def _print_celery(celery: dict) -> None:
    if "error" in celery:
        where = f"Broker {celery['broker']}: unreachable: " if celery["broker"] else "Broker: "
        console.print(where + celery["error"], markup=False)
        return
    alive = celery["workers_alive"]
    console.print(f"Workers alive: {len(alive)} {', '.join(alive)}", markup=False)
    for name, queue in celery["queues"].items():
        depth = "unknown" if queue["depth"] is None else queue["depth"]
        consumers = len(queue["workers"]) or "NO workers"
        console.print(f"Queue {name}: {depth} waiting, {consumers} consuming", markup=False)


def forget(
    author: Annotated[str, typer.Option("--author", help="the author's handle, with or without @")],
    source: Annotated[
        str | None, typer.Option("--source", help="only this platform or configured source")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Erase an author's mentions with their classifications, drafts and alerts (GDPR/CCPA)."""
    if not author.lstrip("@").strip():
        console.print("--author needs a handle, e.g. --author @maria_k", markup=False)
        raise typer.Exit(code=2)
    settings = _config(config)
    with Session(open_engine(settings)) as session:
        if source and source.lower() not in (known := stored_sources(session)):
            console.print(
                f"--source {source} matches no platform or source of any stored mention"
                f" (stored: {', '.join(sorted(known)) or 'none'}); nothing was erased."
                " Leave out --source to erase the author everywhere.",
                markup=False,
            )
            raise typer.Exit(code=2)
        result = forget_author(session, author, source)
        session.commit()
    scope = f" on {source}" if source else ""
    console.print(
        f"Forgot {author.lstrip('@')}{scope}: removed {result.mentions} mentions,"
        f" {result.classifications} classifications, {result.drafts} reply drafts and"
        f" {result.alerts} alerts, and redacted their quotes in {result.redacted_alerts} crisis"
        " alerts. Messages already posted to Slack or sent by email are not"
        " touched; delete those there.",
        markup=False,
    )
