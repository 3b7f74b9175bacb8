"""`baseline-lexicon`: a keyword classifier that keeps the pipeline real until a model ships.

It is deliberately plain and says so in every stored classification (model name and version), so
nobody mistakes its output for the multilingual transformer's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from listener.enums import Intent, Sentiment
from listener.nlp import Prediction, TextInput, sentiment_label
from listener.nlp.keywords import builtin_fingerprint, builtin_lexicon, fold, hits
from listener.nlp.urgency import SERVICE_FAILURES, TeamRules

COMPLAINTS = {Intent.SAFETY, Intent.ACCOUNT_SECURITY, Intent.LEGAL} | SERVICE_FAILURES


def _sentiment_scores(positive: int, negative: int, rating: int | None) -> dict[Sentiment, float]:
    """Softmax over simple evidence counts; a review's stars count as evidence too."""
    if rating is not None:
        positive += max(rating - 3, 0) * 2
        negative += max(3 - rating, 0) * 2
    logits = {
        Sentiment.NEGATIVE: 1.2 * negative,
        Sentiment.NEUTRAL: 0.8,
        Sentiment.POSITIVE: 1.2 * positive,
    }
    total = sum(math.exp(value) for value in logits.values())
    return {label: round(math.exp(value) / total, 4) for label, value in logits.items()}


class BaselineClassifier:
    name = "baseline-lexicon"

    def __init__(self, rules: TeamRules | None = None) -> None:
        self.rules = rules or TeamRules()
        # Its intents and sentiment are the built-in lexicon: an edit of it is a new version.
        self.version = "+".join(["1", *self.rules.version_parts()]) + f"@{builtin_fingerprint()}"

    def classify(self, items: Sequence[TextInput]) -> list[Prediction]:
        return [self._classify_one(item) for item in items]

    def _classify_one(self, item: TextInput) -> Prediction:
        sentiment_words = builtin_lexicon()["sentiment"]
        text = fold(item.text, item.language)
        positive = hits(sentiment_words["positive"], item.language, text)
        negative = hits(sentiment_words["negative"], item.language, text)
        intent = self.rules.lexicon.intent(item.text, item.language)
        if intent in COMPLAINTS:
            negative += 1  # complaints even when worded calmly
        scores = _sentiment_scores(positive, negative, item.rating)
        return keyword_prediction(item, scores, self.rules, intent)


def keyword_prediction(
    item: TextInput, scores: dict[Sentiment, float], rules: TeamRules, intent: Intent | None = None
) -> Prediction:
    """Intent from the per-language keywords (`intent`, if already found) and urgency from the
    rules, given the sentiment scores of whichever model read the text."""
    intent = intent or rules.lexicon.intent(item.text, item.language)
    if intent is Intent.PRAISE and sentiment_label(scores) is not Sentiment.POSITIVE:
        intent = Intent.OTHER
    return rules.prediction(item, scores, intent)
