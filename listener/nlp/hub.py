"""Any Hugging Face sequence-classification model as the sentiment model.

`model.name` may be a model on the Hugging Face hub (transformers downloads it into its cache, so
the machine needs hub access once) or a local directory written by `save_pretrained`. The model
gives the sentiment; intent comes from the per-language keywords and urgency from the shared
scoring function, as with the baseline: the e5 heads read e5's own embeddings, and a second
encoder pass per mention would halve the throughput.

`model.labels` says which sentiment each of the model's labels means. Several labels may share
one (a 1-5 star model) and their probabilities add up; every label needs one, so no probability
is dropped. Labels already named negative / neutral / positive need no mapping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from listener.enums import Sentiment
from listener.nlp import ModelLoadError, Prediction, TextInput
from listener.nlp.baseline import keyword_prediction
from listener.nlp.embedder import quantise_linear_layers
from listener.nlp.keywords import builtin_fingerprint
from listener.nlp.precision import resolve_precision
from listener.nlp.ratings import SENTIMENT_ORDER, sentiment_scores
from listener.nlp.urgency import TeamRules

# Label names that say their sentiment themselves (case-insensitive).
SELF_NAMED = {
    "negative": Sentiment.NEGATIVE,
    "neg": Sentiment.NEGATIVE,
    "neutral": Sentiment.NEUTRAL,
    "neu": Sentiment.NEUTRAL,
    "positive": Sentiment.POSITIVE,
    "pos": Sentiment.POSITIVE,
}
MAX_TOKENS = 512
NAME_LENGTH = 128  # the classifications table's model_name column


class ModelLabelError(ModelLoadError):
    """The model's labels and `model.labels` do not say which sentiment each label means."""


def sentiment_columns(
    id2label: Mapping[int, str], labels: Mapping[str, Sentiment], model: str
) -> np.ndarray:
    """A (model labels × 3) matrix of 0/1: the sentiment each of the model's labels adds to.

    `labels` keys are the model's label names or their indices ("0", "1", ...).
    """
    names = {index: str(name) for index, name in id2label.items()}
    known = set(names.values()) | {str(index) for index in names}
    stray = sorted(set(labels) - known)
    if stray:
        raise ModelLabelError(
            f"model.labels names {stray}, which model {model!r} does not have;"
            f" its labels are {list(names.values())}"
        )
    matrix = np.zeros((len(names), len(SENTIMENT_ORDER)), dtype=np.float32)
    unmapped = []
    for index, name in sorted(names.items()):
        sentiment = labels.get(name) or labels.get(str(index)) or SELF_NAMED.get(name.casefold())
        if sentiment is None:
            unmapped.append(name)
        else:
            matrix[index, SENTIMENT_ORDER.index(sentiment)] = 1.0
    if unmapped:
        template = ", ".join(f"{name}: ..." for name in unmapped)
        raise ModelLabelError(
            f"model {model!r} has labels {unmapped} that do not say which sentiment they mean;"
            " map each to negative, neutral or positive in the config:"
            f" model.labels: {{{template}}}"
        )
    said = matrix.any(axis=0)
    missing = [
        s.value
        for s in (Sentiment.NEGATIVE, Sentiment.POSITIVE)
        if not said[SENTIMENT_ORDER.index(s)]
    ]
    if missing:
        raise ModelLabelError(
            f"no label of model {model!r} means {' or '.join(missing)}; a sentiment model for"
            " listener must tell negative from positive (check model.labels)"
        )
    return matrix


def _version(model: str, directory: Path | None, commit: str | None, columns: np.ndarray) -> str:
    """Tells two models, or two label mappings, apart in the stored classifications; the
    built-in keywords too, which decide the intents."""
    digest = hashlib.sha256(columns.tobytes())
    digest.update(builtin_fingerprint().encode())
    if commit:
        digest.update(commit.encode())
    elif directory is not None:
        for path in sorted(directory.iterdir()):
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    else:
        digest.update(model.encode())
    return digest.hexdigest()[:8]


def _display_name(model: str) -> str:
    name = f"hf:{model}"
    return name if len(name) <= NAME_LENGTH else "hf:…" + model[-(NAME_LENGTH - 4) :]


class HubClassifier:
    """Sentiment from a sequence-classification model; intent and urgency from the rules."""

    def __init__(
        self,
        model: str,
        labels: Mapping[str, Sentiment] | None = None,
        threads: int | None = None,
        batch_size: int = 32,
        *,
        rules: TeamRules | None = None,
        precision: str = "auto",
    ) -> None:
        self.rules = rules or TeamRules()
        if threads:
            torch.set_num_threads(threads)
        # The labels are checked from the config, before any weights are read.
        config = AutoConfig.from_pretrained(model)
        self.columns = sentiment_columns(config.id2label, labels or {}, model)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForSequenceClassification.from_pretrained(model, config=config).eval()
        self.precision = resolve_precision(precision)
        if self.precision == "bf16":
            self.model.to(torch.bfloat16)
        elif self.precision == "int8":
            quantise_linear_layers(self.model)
        self.batch_size = batch_size
        self.max_length = min(self.tokenizer.model_max_length, MAX_TOKENS)
        directory = Path(model) if Path(model).is_dir() else None
        commit = getattr(self.model.config, "_commit_hash", None)
        self.name = _display_name(model)
        version = _version(model, directory, commit, self.columns)
        self.version = "+".join([version, *self.rules.version_parts(), self.precision])

    def sentiment_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(texts × 3) probabilities of negative, neutral, positive; batches sorted by length."""
        result = np.zeros((len(texts), len(SENTIMENT_ORDER)), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda row: len(texts[row]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            encoded = self.tokenizer(
                [texts[row] for row in rows],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            with torch.inference_mode():
                logits = self.model(**encoded).logits
            result[rows] = logits.float().softmax(dim=-1).numpy() @ self.columns
        return result

    def classify(self, items: Sequence[TextInput]) -> list[Prediction]:
        if not items:
            return []
        probabilities = self.sentiment_probabilities([item.text for item in items])
        return [
            keyword_prediction(item, sentiment_scores(row, item.rating, item.text), self.rules)
            for item, row in zip(items, probabilities, strict=True)
        ]
