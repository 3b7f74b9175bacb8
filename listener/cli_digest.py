"""`listener digest`: the weekly sentiment digest, previewed to a file or sent by SMTP.

`--preview out.html` and `--send --week 2026-W47` are contracts (issue 7).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from listener.models import utcnow

console = Console(stderr=True, soft_wrap=True)


def _fail(message: str) -> NoReturn:
    console.print(f"digest: {message}", markup=False, highlight=False)
    raise typer.Exit(code=2)


def digest(
    *,
    preview: Annotated[
        Path | None,
        typer.Option("--preview", help="Write the digest as HTML to this file; nothing is sent."),
    ] = None,
    send: Annotated[
        bool, typer.Option("--send", help="Mail it to digest.recipients through digest.smtp.")
    ] = False,
    week: Annotated[
        str | None,
        typer.Option(
            "--week",
            help="ISO week such as 2026-W47 (default: the last complete week in the digest's"
            " time zone).",
        ),
    ] = None,
    resend: Annotated[
        bool, typer.Option("--resend", help="Send again a week whose digest already went out.")
    ] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c", envvar="LISTENER_CONFIG")] = None,
    log_level: Annotated[str, typer.Option("--log-level", envvar="LISTENER_LOG_LEVEL")] = "warning",
) -> None:
    """Build the weekly sentiment digest: --preview FILE writes it, --send mails it."""
    from listener.cli import _settings, _setup_logging

    _setup_logging(log_level)
    if preview is None and not send:
        _fail("say what to do: --preview out.html (write a file) or --send (mail it)")
    settings = _settings(config)
    from alerts.digest import Week, WeekFormatError, build_digest
    from alerts.digest import preview_html as render_preview
    from alerts.digest.outbox import already_delivered, deliver_week
    from listener.cli_nlp import _check_output, open_engine

    timezone = settings.digest.timezone
    try:
        chosen = Week.parse(week, timezone) if week else Week.last_complete(utcnow(), timezone)
    except WeekFormatError as error:
        _fail(f"--week {error}")
    today = utcnow().astimezone(ZoneInfo(timezone)).date()
    if chosen.monday > today:
        _fail(f"--week {chosen.label} has not started yet (it begins {chosen.monday:%a %d %b %Y})")
    if send and not settings.digest.recipients:
        _fail(
            "no recipients configured: add digest.recipients to the config,"
            " e.g. [cs-lead@example.com]"
        )
    if preview is not None:
        _check_output(preview, "--preview")
    engine = open_engine(settings)
    if today <= chosen.days[-1]:
        console.print(
            f"note: {chosen.label} is not over yet; its figures are partial", markup=False
        )
    if preview is not None:  # --send builds its own, inside the delivery it records
        preview.write_text(render_preview(build_digest(engine, settings, chosen)), encoding="utf-8")
        console.print(f"Wrote the {chosen.describe()} digest to {preview}", markup=False)
    if send:
        sent_at = already_delivered(engine, chosen)
        if sent_at and not resend:
            _fail(
                f"the {chosen.label} digest was already sent on {sent_at:%Y-%m-%d %H:%M} UTC;"
                " add --resend to send it again"
            )
        outcome = deliver_week(engine, settings, chosen)
        if not outcome.delivered:
            console.print(f"digest: not sent: {outcome.error}", markup=False, highlight=False)
            raise typer.Exit(code=1)
        recipients = ", ".join(r for r in settings.digest.recipients if r not in outcome.refused)
        console.print(f"Sent the {chosen.label} digest to {recipients}", markup=False)
        if outcome.refused:
            console.print(f"warning: {outcome.refusal}", markup=False, highlight=False)
