"""The `listener` command line."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine
from sqlmodel import Session, select

from alerts.sinks import printable, shorten
from config.schema import ConfigError, ReplaySource, Settings, load_settings
from listener.cli_digest import digest
from listener.cli_draft import draft as draft_command
from listener.cli_nlp import (
    classify,
    eval_app,
    load_model,
    model_app,
    open_engine,
    train_app,
)
from listener.cli_ops import forget, status
from listener.cli_outbox import outbox_app
from listener.cli_scale import worker
from listener.cli_slack import slack_app
from listener.cli_sources import sources_app
from listener.models import Mention, ReplyDraft
from listener.pipeline import CycleReport, Pipeline
from listener.stats import collect_stats
from listener.storage import describe_location

app = typer.Typer(
    help="Brand mentions and reviews: collect, classify, draft replies, alert.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)  # locals may hold secrets
console = Console(soft_wrap=True)  # long lines stay whole: scripts grep them
errors = Console(stderr=True, soft_wrap=True)

app.add_typer(model_app, name="model")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(sources_app, name="sources")
app.add_typer(slack_app, name="slack")
app.add_typer(outbox_app, name="outbox")
app.command("classify")(classify)
app.command("status")(status)
app.command("forget")(forget)
app.command("draft")(draft_command)
app.command("digest")(digest)
app.command("worker")(worker)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="LISTENER_CONFIG",
        help="YAML config file (default: the bundled example, config/example.yaml).",
    ),
]
LogLevel = Annotated[str, typer.Option("--log-level", envvar="LISTENER_LOG_LEVEL")]
DRAFTS_SHOWN = 12


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _settings(path: Path | None) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as error:
        errors.print(str(error), markup=False, highlight=False)
        raise typer.Exit(code=2) from None


@app.command("check-config")
def check_config(config: ConfigOption = None) -> None:
    """Validate the config and report every problem at once; nothing else."""
    settings = _settings(config)
    where = config or "the bundled example config"
    console.print(
        f"OK: {where} is valid: {len(settings.brands)} brand(s), {len(settings.sources)} "
        f"source(s), {len(settings.markets)} market(s).",
        markup=False,
    )


@app.command()
def stats(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Counts of mentions, classifications, drafts and alerts in the database."""
    settings = _settings(config)
    data = collect_stats(open_engine(settings))
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return
    _print_counts(data)


@app.command()
def run(
    config: ConfigOption = None,
    once: Annotated[bool, typer.Option("--once", help="Run one full cycle and exit.")] = False,
    log_level: LogLevel = "info",
) -> None:
    """Run the daemon (collect on each source's interval, then process), or one cycle."""
    _setup_logging(log_level)
    settings = _settings(config)
    if not once:
        from scheduler import serve

        raise typer.Exit(code=serve(settings))
    engine = open_engine(settings)
    report = Pipeline.build(settings, engine, classifier=load_model(settings.model)).run_cycle()
    _print_cycle(report)
    if any(outcome.error for outcome in report.sources.values()):
        raise typer.Exit(code=1)


@app.command()
def demo(
    config: ConfigOption = None,
    feed: Annotated[
        Path | None,
        typer.Option(
            "--feed",
            help="Your own JSONL export (one mention per line: id, text, and optionally source,"
            " author, author_followers, lang, rating, created_at, url) instead of the sample feed.",
        ),
    ] = None,
    log_level: LogLevel = "warning",
) -> None:
    """Run the real pipeline once on a bundled multilingual sample feed, and summarise it."""
    _setup_logging(log_level)
    settings = _settings(config)
    if feed is not None:
        settings = _with_feed(settings, feed)
    url = settings.database_url()
    engine = open_engine(settings)
    pipeline = Pipeline.build(settings, engine, classifier=load_model(settings.model))
    for name, reason in pipeline.sources.disabled.items():
        errors.print(f"source {name}: disabled, {reason}", markup=False)
    if not pipeline.sources.enabled:
        errors.print("No source is enabled, so there is nothing to demonstrate.", markup=False)
        raise typer.Exit(code=2)
    enabled = ", ".join(s.name for s in pipeline.sources.enabled)
    console.print(f"Running one cycle on {enabled} …", markup=False)
    report = pipeline.run_cycle()
    _print_cycle(report)
    data = collect_stats(engine)
    _print_counts(data)
    _print_drafts(engine, {s.name for s in settings.sources})
    console.print(f"\nData lives in: {describe_location(url)}", markup=False)
    console.print(
        "Inspect it with: listener stats --json   (set DATABASE_URL to use another database)"
    )


def _with_feed(settings: Settings, feed: Path) -> Settings:
    if not feed.is_file():
        errors.print(f"--feed {feed}: no such file. Give a JSONL export, one mention per line.")
        raise typer.Exit(code=2)
    if feed.suffix == ".json":  # one JSON array: unreadable as a whole, so refused as a whole
        from listener.sources.replay import load_json_feed

        try:
            load_json_feed(feed)
        except ValueError as error:  # FeedError, TextFileError: the file, the line and the fix
            errors.print(f"--feed {error}", markup=False)
            raise typer.Exit(code=2) from None
    name = "feed-" + (re.sub(r"[^a-z0-9_-]+", "-", feed.stem.lower()).strip("-") or "file")
    source = ReplaySource(type="replay", name=name[:64], paths=[str(feed.resolve())])
    return settings.model_copy(update={"sources": [source]})


def _print_cycle(report: CycleReport) -> None:
    for name, outcome in report.sources.items():
        if outcome.error:
            line = f"source {name}: FAILED: {outcome.error}"
        elif outcome.skipped:
            line = f"source {name}: skipped, {outcome.skipped}"
        else:
            line = (
                f"source {name}: {outcome.stored} new, {outcome.already_stored} already stored,"
                f" {outcome.cross_posts} cross-posts linked,"
                f" {len(outcome.rejected)} malformed skipped"
            )
        console.print(line, markup=False)
    for problem in next(iter(report.sources.values())).rejected[:5] if report.sources else []:
        console.print(f"  skipped: {problem}", markup=False)
    no_reply = ", ".join(f"{count} {reason}" for reason, count in report.no_reply.most_common())
    console.print(
        f"classified {report.classified} (classifier: {report.classifier}); drafted "
        f"{report.drafted} replies; no reply needed: {no_reply or 'none'}; alerts raised "
        f"{report.alerts_created}, delivered {report.delivered}",
        markup=False,
    )
    for error in report.delivery_errors:
        console.print(f"alert delivery pending, will retry: {error}", markup=False)
    for refusal in report.refused:
        console.print(f"alert refused for good, not retried: {refusal}", markup=False)
    for name, recheck in report.rechecks.items():
        if recheck.error:
            console.print(
                f"source {name}: re-reading reactions FAILED: {recheck.error}", markup=False
            )
        elif recheck.watched:
            console.print(
                f"source {name}: re-read the reactions of {recheck.watched} recent complaints,"
                f" {recheck.escalated} now viral (critical), {recheck.alerts} alerts raised",
                markup=False,
            )


def _print_counts(data: dict) -> None:
    mentions = data["mentions"]
    table = Table(title=f"{mentions['total']} mentions in the database")
    for column in ("language", "sentiment", "urgency", "source"):
        table.add_column(column)
    columns = [
        sorted(mentions[f"by_{key}"].items(), key=lambda item: -item[1])
        for key in ("language", "sentiment", "urgency", "source")
    ]
    for row in range(max(len(column) for column in columns)):
        table.add_row(*(f"{c[row][0]}: {c[row][1]}" if row < len(c) else "" for c in columns))
    console.print(table)
    drafts, alerts = data["drafts"], data["alerts"]
    console.print(
        f"drafts: {drafts['total']} {drafts['by_status']} · alerts: {alerts['total']} "
        f"{alerts['by_state']} · classifiers: {data['classifiers']}",
        markup=False,
    )


def _print_drafts(engine: Engine, collectors: set[str]) -> None:
    """A sample of drafts, one per locale first, each under the mention it answers."""
    with Session(engine) as session:
        rows = list(
            session.exec(
                select(ReplyDraft, Mention)
                .join(Mention, Mention.id == ReplyDraft.mention_id)
                .where(Mention.collector.in_(collectors))  # type: ignore[attr-defined]
                .order_by(ReplyDraft.id)
            )
        )
    first_per_locale = {draft.locale: (draft, mention) for draft, mention in reversed(rows)}
    sample = list(first_per_locale.values())
    sample += [row for row in rows if row not in sample][: max(DRAFTS_SHOWN - len(sample), 0)]
    console.print(f"\n{len(rows)} reply drafts awaiting review (showing {len(sample)}):")
    for draft, mention in sorted(sample, key=lambda row: row[0].id or 0):
        header = Text(
            f"[{draft.locale} {draft.formality} · {draft.intent} · {draft.channel}] "
            f"@{mention.author_handle or '?'} on {mention.source}: ",
            style="bold",
        )
        header.append(shorten(printable(" ".join(mention.text.split())), 120), style="")
        console.print(header)
        console.print(Text("  → " + printable(draft.text)))
