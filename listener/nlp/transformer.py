"""`e5-heads`: the multilingual transformer classifier (the default model).

One encoder pass per mention (mean-pooled multilingual-e5-small, bf16 or int8 on CPU) feeds every
task head: sentiment (mixed with a word and character n-gram model's answer, `lexical`), intent
and urgency. Intent and urgency evidence then go through the shared
scoring function (`listener.nlp.urgency`), together with the review rating, author reach and the
per-language churn keywords, so the levels mean what the labelling guide says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from listener.enums import Intent, Sentiment, Urgency
from listener.nlp import Prediction, TextInput
from listener.nlp.embedder import Embedder
from listener.nlp.encoder import prepare_encoder
from listener.nlp.heads import WEIGHTS_DIR, Head, head_features
from listener.nlp.keywords import KeywordEvidence, builtin_fingerprint
from listener.nlp.lexical import STEM as LEXICAL_STEM
from listener.nlp.lexical import LexicalModel
from listener.nlp.ratings import has_text, sentiment_scores
from listener.nlp.urgency import (
    CRITICAL_INTENTS,
    SERVICE_FAILURES,
    TeamRules,
    is_happy_review,
)

KEYWORD_SUPPORT = 0.05
# Two different hazard (or fraud, or legal) words are evidence enough on their own: a figure of
# speech uses one ("this deal is fire"), a sarcastic report of a real hazard often several
# ("bravo, the charger overheated and melted the socket"), which the heads read as praise.
CORROBORATING_KEYWORDS = 2
# With calibrated probabilities "more likely than not" is enough: on the CS dev part (heads trained
# without it) 0.5 named as many non-critical mentions critical as 0.8 did (2 of 142) and found
# more critical ones (intent accuracy .845 vs .803, critical recall .956 vs .933).
HEAD_ALONE_CRITICAL = 0.5
# An ambiguous keyword ("burnt", "melted", "password", "scam": see lexicon.yaml) counts only when
# the intent head gives its intent this much; a negative mention alone is not enough, since
# burnt toast and a lost password are complaints too.
AMBIGUOUS_SUPPORT = 0.2


def _fingerprint(weights: Path) -> str:
    """A digest of the weights, their specs (a new temperature changes the outputs too) and the
    built-in rules (keywords and code), which decide intents and levels as well."""
    digest = hashlib.sha256()
    for path in sorted([*weights.glob("*.safetensors"), *weights.glob("*.json")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(builtin_fingerprint().encode())
    return digest.hexdigest()[:8]


class TransformerClassifier:
    name = "e5-heads"

    def __init__(
        self,
        threads: int | None = None,
        batch_size: int = 64,
        precision: str = "auto",
        weights: Path = WEIGHTS_DIR,
        rules: TeamRules | None = None,
    ) -> None:
        """`weights`: the folder of the heads and of the encoder's adapter, if any."""
        self.rules = rules or TeamRules()
        self.embedder = Embedder(
            prepare_encoder(), threads=threads, precision=precision, adapter_dir=weights
        )
        self.batch_size = batch_size
        features = head_features(self.embedder.precision)
        self.sentiment = Head.load("sentiment", weights, features)
        self.lexical = _lexical_model(self.sentiment, weights)
        self.intent = _optional_head("intent", weights, features)
        self.urgency = _optional_head("urgency", weights, features)
        heads = [h.spec for h in (self.sentiment, self.intent, self.urgency) if h is not None]
        # A head serves embeddings like those it learnt from: its precision's, or fp32's.
        served = {"fp32", self.embedder.features}
        stale = [
            spec.task
            for spec in heads
            if spec.encoder != self.embedder.encoder_id or spec.features not in served
        ]
        if stale:
            raise RuntimeError(
                f"the {', '.join(stale)} head(s) were trained on another encoder than"
                f" {self.embedder.encoder_id!r} ({self.embedder.features}); retrain them"
                " (listener train sentiment|urgency)"
            )
        parts = [f"{spec.task}:{spec.metrics.get('version', '1')}" for spec in heads]
        if self.embedder.adapter:
            parts.append(f"adapter:{self.embedder.adapter.version}")
        parts += self.rules.version_parts()
        parts.append(self.embedder.precision)  # int8 results differ a little from bf16/fp32
        # Retrained weights keep their version numbers: the fingerprint tells two trainings apart.
        self.version = "+".join(parts) + "@" + _fingerprint(weights)
        self.encoder_name = self.embedder.encoder_id

    def classify(self, items: Sequence[TextInput]) -> list[Prediction]:
        if not items:
            return []
        embeddings = self.embedder.embed([item.text for item in items], self.batch_size)
        return self.predict(items, embeddings)

    def _intent(
        self,
        item: TextInput,
        probabilities: np.ndarray | None,
        negative: float,
        positive: float,
        evidence: Sequence[KeywordEvidence],
    ) -> Intent:
        """The intent head's answer, reconciled with the per-language keywords.

        - A missed safety report costs far more than a false alarm, so the keywords of safety,
          account security and legal threats win whenever the head gives them at least
          `KEYWORD_SUPPORT` probability, the mention is negative, or the text names
          `CORROBORATING_KEYWORDS` different keywords of that intent; ambiguous keywords alone
          ("burnt", "password") only when the head gives them `AMBIGUOUS_SUPPORT`.
        - Those intents page people, so the head alone names one only when it gives it at least
          `HEAD_ALONE_CRITICAL` probability; otherwise its best other answer stands.
        - A happy 4-5 star review is praise, whatever service it mentions.
        """
        if probabilities is None or self.intent is None:
            return evidence[0].intent if evidence else Intent.OTHER
        labels = self.intent.spec.labels
        for found in evidence:
            support = float(probabilities[labels.index(found.intent.value)])
            if found.intent in CRITICAL_INTENTS and _keywords_stand(found, support, negative):
                return found.intent
        ranked = [Intent(labels[i]) for i in np.argsort(-probabilities)]
        intent = ranked[0]
        if intent in CRITICAL_INTENTS and probabilities.max() < HEAD_ALONE_CRITICAL:
            intent = next(i for i in ranked if i not in CRITICAL_INTENTS)
        if intent in SERVICE_FAILURES and is_happy_review(item.rating, positive):
            return Intent.PRAISE  # "fast delivery, well packed" is praise, not a delivery problem
        return intent

    def _urgency_levels(self, probabilities: np.ndarray) -> dict[Urgency, float]:
        assert self.urgency is not None
        return {
            Urgency.parse(label): float(p)
            for label, p in zip(self.urgency.spec.labels, probabilities, strict=True)
        }

    def predict(self, items: Sequence[TextInput], embeddings: np.ndarray) -> list[Prediction]:
        lexical = self.lexical.log_probabilities([i.text for i in items]) if self.lexical else None
        sentiment = self.sentiment.probabilities(embeddings, lexical)
        intents = self.intent.probabilities(embeddings) if self.intent else None
        urgencies = self.urgency.probabilities(embeddings) if self.urgency else None
        predictions = []
        for row, item in enumerate(items):
            scores = sentiment_scores(sentiment[row], item.rating, item.text)
            read = has_text(item.text)  # what the heads answer for a blank text is noise
            intent_read = intents is not None and read
            evidence = self.rules.lexicon.evidence(item.text, item.language)
            intent = self._intent(
                item,
                intents[row] if intent_read else None,
                scores[Sentiment.NEGATIVE],
                scores[Sentiment.POSITIVE],
                evidence,
            )
            model_urgency = (
                self._urgency_levels(urgencies[row]) if urgencies is not None and read else None
            )
            predictions.append(
                self.rules.prediction(
                    item,
                    scores,
                    intent,
                    model_urgency,
                    intent_read,
                    evidence=evidence,
                )
            )
        return predictions


def _keywords_stand(found: KeywordEvidence, support: float, negative: float) -> bool:
    """Whether a critical intent's keywords outweigh the head (`TransformerClassifier._intent`)."""
    if found.unambiguous:
        return (
            support >= KEYWORD_SUPPORT or negative > 0.5 or found.keywords >= CORROBORATING_KEYWORDS
        )
    return support >= AMBIGUOUS_SUPPORT


def _lexical_model(sentiment: Head, weights: Path) -> LexicalModel | None:
    """The n-gram model whose answers the sentiment head mixes into its own, if it does: the one
    it was trained with, or an error saying how to make them match again."""
    if not sentiment.spec.lexical_weight:
        return None
    lexical = LexicalModel.load(weights)
    if lexical.digest() != sentiment.spec.lexical_digest or (
        lexical.spec.labels != sentiment.spec.labels
    ):
        raise RuntimeError(
            f"the sentiment head in {weights} was trained with another lexical model than"
            f" {LEXICAL_STEM}.safetensors beside it; retrain them together"
            " (listener train sentiment)"
        )
    return lexical


def _optional_head(task: str, weights: Path, features: str) -> Head | None:
    try:
        return Head.load(task, weights, features)
    except FileNotFoundError:
        return None
