"""`baseline-lexicon`: a keyword classifier that keeps the pipeline real until a model ships.

It is deliberately plain and says so in every stored classification (model name and version), so
nobody mistakes its output for the multilingual transformer's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import yaml

from listener.enums import Intent, Sentiment
from listener.nlp import Prediction, TextInput
from listener.nlp.urgency import SERVICE_FAILURES, Signals, score_urgency

LEXICON = Path(__file__).with_name("lexicon.yaml")
# The most serious reading wins when a text matches several intents.
INTENT_PRIORITY = [
    Intent.SAFETY,
    Intent.ACCOUNT_SECURITY,
    Intent.LEGAL,
    Intent.BILLING_PAYMENT,
    Intent.DAMAGED_DEFECTIVE,
    Intent.REFUND_RETURN,
    Intent.DELIVERY,
    Intent.QUESTION,
    Intent.PRAISE,
]
_NO_SPACES = {"ja", "zh", "th"}
COMPLAINTS = {Intent.SAFETY, Intent.ACCOUNT_SECURITY, Intent.LEGAL} | SERVICE_FAILURES


@cache
def _lexicon() -> dict:
    return yaml.safe_load(LEXICON.read_text(encoding="utf-8"))


@cache
def _pattern(language: str, words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    alternatives = "|".join(re.escape(word.casefold()) for word in words)
    if language in _NO_SPACES:
        return re.compile(alternatives)
    # Prefix match at a word start: "refund" finds "refunded", "überhitz" finds "überhitzt".
    return re.compile(rf"(?<!\w)(?:{alternatives})")


def keyword_pattern(section: dict[str, list[str]], language: str) -> re.Pattern[str] | None:
    """The lexicon section's keywords for `language` as one pattern over casefolded text.

    Languages the lexicon lacks fall back to English rather than to nothing.
    """
    return _pattern(language, tuple(section.get(language) or section.get("en", ())))


def intent_keywords(intent: str) -> dict[str, list[str]]:
    """The lexicon's keywords for one intent, per language."""
    return _lexicon()["intents"].get(intent, {})


def _hits(section: dict[str, list[str]], language: str, text: str) -> int:
    pattern = keyword_pattern(section, language)
    return len(pattern.findall(text)) if pattern else 0


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


def lexicon_intent(text: str, language: str) -> Intent:
    """The most serious intent whose keywords occur in the text."""
    intents = _lexicon()["intents"]
    folded = text.casefold()
    return next(
        (i for i in INTENT_PRIORITY if _hits(intents[i.value], language, folded)), Intent.OTHER
    )


def churn_threat(text: str, language: str) -> bool:
    """Per-language keywords for "never again", "switching to ...": a signal every model uses."""
    return bool(_hits(_lexicon()["sentiment"]["churn"], language, text.casefold()))


class BaselineClassifier:
    name = "baseline-lexicon"
    version = "1"

    def classify(self, items: Sequence[TextInput]) -> list[Prediction]:
        return [self._classify_one(item) for item in items]

    def _classify_one(self, item: TextInput) -> Prediction:
        lexicon = _lexicon()
        text = item.text.casefold()
        positive = _hits(lexicon["sentiment"]["positive"], item.language, text)
        negative = _hits(lexicon["sentiment"]["negative"], item.language, text)
        if lexicon_intent(item.text, item.language) in COMPLAINTS:
            negative += 1  # complaints even when worded calmly
        return keyword_prediction(item, _sentiment_scores(positive, negative, item.rating))


def keyword_prediction(item: TextInput, scores: dict[Sentiment, float]) -> Prediction:
    """Intent from the per-language keywords and urgency from the scoring function, given the
    sentiment scores of whichever model read the text."""
    sentiment = max(scores, key=scores.__getitem__)
    intent = lexicon_intent(item.text, item.language)
    if intent is Intent.PRAISE and sentiment is not Sentiment.POSITIVE:
        intent = Intent.OTHER
    urgency, score, reasons = score_urgency(
        Signals(
            intent=intent,
            scores=scores,
            rating=item.rating,
            author_followers=item.author_followers,
            churn_threat=churn_threat(item.text, item.language),
        )
    )
    return Prediction(
        sentiment=sentiment,
        scores=scores,
        urgency=urgency,
        urgency_score=score,
        intent=intent,
        reasons=reasons,
    )
