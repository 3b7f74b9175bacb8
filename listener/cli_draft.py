"""`listener draft`: classify mentions from a file and draft the replies, without storing anything.

The same language identification, classifier and drafter as the pipeline, so a team can check
wording, registers and holiday-aware promises on its own examples (`--now` fixes the clock).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from listener.cli_nlp import (
    ConfigOption,
    _check_output,
    _config,
    _fail,
    _read_jsonl,
    console,
    load_model,
)
from listener.nlp import TextInput
from listener.nlp.language import LanguageIdentifier
from listener.pipeline import classification_of
from listener.sources.common import to_utc
from responders import ReplyDrafter


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        return to_utc(value)
    except ValueError:
        _fail(f"--now {value!r} is not ISO-8601; for example --now 2026-12-24T17:30:00+01:00")


def draft(
    input_file: Annotated[
        Path,
        typer.Option(
            "--input",
            help="JSONL: id, text, optional lang, source, rating, author_followers, author,"
            " author_name, engagement, created_at (ISO-8601; now when absent)",
        ),
    ],
    output_file: Annotated[Path, typer.Option("--output")],
    market: Annotated[
        str | None, typer.Option("--market", help="draft for this market code, e.g. de-DE")
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="the clock for business hours and holidays (ISO-8601)"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Classify each mention of a JSONL file and write whether it needs a reply, and the draft."""
    settings = _config(config)
    _check_output(output_file)
    if market and market not in {m.code for m in settings.markets}:
        known = ", ".join(m.code for m in settings.markets)
        _fail(f"--market {market!r} is not a market of the config; configured: {known}")
    clock = _parse_now(now)
    drafter = ReplyDrafter(
        settings, clock=lambda: clock, market=settings.market(market) if market else None
    )
    records, mentions = _read_jsonl(input_file)
    classifier = load_model(settings.model)
    identifier = LanguageIdentifier(settings.languages)
    languages = [identifier.identify(r["text"], r.get("lang")) for r in records]
    inputs = [TextInput.from_record(r, lang) for r, lang in zip(records, languages, strict=True)]
    predictions = classifier.classify(inputs)
    drafted = 0
    with output_file.open("w", encoding="utf-8") as out:
        rows = zip(records, mentions, languages, predictions, strict=True)
        for record, mention, language, prediction in rows:
            decision = drafter.decide(
                mention, classification_of(None, language, prediction, classifier)
            )
            line: dict = {"id": record["id"], "needs_reply": decision.needs_reply}
            if decision.draft:
                drafted += 1
                d = decision.draft
                line["draft"] = {
                    "text": d.text,
                    "locale": d.locale,
                    "register": d.formality,
                    "intent": d.intent,
                    "channel": d.channel,
                    "language_source": d.language_source,
                }
            else:
                line["reason"] = decision.reason
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    console.print(
        f"{drafted} of {len(records)} mentions need a reply; drafts → {output_file}", markup=False
    )
