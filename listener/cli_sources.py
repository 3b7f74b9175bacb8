"""`listener sources list` and `listener sources test NAME`: is a collector set up right?

`test` builds the source from the config (even one with `enabled: false`), makes one small fetch
from the start of its backfill window and prints what came back. Nothing is stored and no cursor
moves. On a paid API (X) the fetch is billed like any other read, so it reads a handful of items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from alerts.sinks import printable, shorten
from listener.sources import NotConfigured, Source, _registry, build_sources

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)
sources_app = typer.Typer(help="Collectors: list them, test credentials and connectivity.")
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", envvar="LISTENER_CONFIG")]
SHOWN = 5


def _settings(path: Path | None):  # type: ignore[no-untyped-def]
    from listener.cli import _settings as load

    return load(path)


def _say(message: str, *, error: bool = False) -> None:
    (errors if error else console).print(message, markup=False, highlight=False)


@sources_app.command("list")
def list_sources(config: ConfigOption = None) -> None:
    """Every configured source with its type and whether it would run, and why not."""
    settings = _settings(config)
    disabled = build_sources(settings).disabled
    for entry in settings.sources:
        reason = disabled.get(entry.name)
        status = "enabled" if reason is None else f"disabled: {reason}"
        _say(f"{entry.name} ({entry.type}): {status}")


@sources_app.command("test")
def probe_source(
    name: Annotated[str, typer.Argument(help="The source's name in the config.")],
    config: ConfigOption = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Read at most this many items.")
    ] = 10,
) -> None:
    """Check credentials and connectivity with one small fetch; nothing is stored."""
    settings = _settings(config)
    entry = next((s for s in settings.sources if s.name == name), None)
    if entry is None:
        known = ", ".join(s.name for s in settings.sources) or "none"
        _say(f"No source named {name!r} in the config; configured: {known}.", error=True)
        raise typer.Exit(code=2)
    try:
        source = _registry()[entry.type].from_config(entry, settings)
    except NotConfigured as reason:
        _say(f"{name} ({entry.type}): not configured: {reason}", error=True)
        raise typer.Exit(code=2) from None
    if not entry.enabled:
        _say(f"{name} ({entry.type}): enabled: false in the config; testing it anyway")
    _report(source, limit)


def _report(source: Source, limit: int) -> None:
    source.max_items = min(source.max_items, limit)
    try:
        result = source.fetch(None)
    except Exception as error:  # noqa: BLE001  (any fault is the answer the user asked for)
        message = printable(f"{type(error).__name__}: {error}")
        _say(f"{source.name} ({source.type}): FAILED: {message}", error=True)
        raise typer.Exit(code=1) from None
    _say(
        f"{source.name} ({source.type}): OK: {len(result.mentions)} item(s) found,"
        f" {len(result.rejected)} malformed skipped (nothing stored)"
    )
    for mention in result.mentions[:SHOWN]:
        _say("  " + _line(mention))
    for problem in result.rejected[:SHOWN]:
        _say("  skipped: " + shorten(printable(problem), 200))


def _line(mention: Any) -> str:
    when = mention.created_at.isoformat(timespec="minutes")
    text = shorten(printable(" ".join(mention.text.split())), 100)
    author = printable(mention.author_handle or "?")
    url = printable(mention.url or "")
    return f"{when} @{author} [{mention.language or '-'}] {text} {url}".rstrip()
