"""Sentiment scores from a model's probabilities, with a review's stars as evidence too."""

from __future__ import annotations

import numpy as np

from listener.enums import Sentiment

# The column order of every sentiment model's probabilities here.
SENTIMENT_ORDER = [Sentiment.NEGATIVE, Sentiment.NEUTRAL, Sentiment.POSITIVE]
# How likely each sentiment is for a review with this many stars (negative, neutral, positive).
# Multiplied into the text's probabilities: the stars are the customer's own verdict.
STAR_PRIOR = {
    1: (0.85, 0.12, 0.03),
    2: (0.70, 0.22, 0.08),
    3: (0.35, 0.40, 0.25),
    4: (0.08, 0.30, 0.62),
    5: (0.03, 0.12, 0.85),
}
# A mention without words (a bare star rating, an empty post) gives a model nothing to read: what
# it would answer for an empty string is noise, so such a mention is neutral unless its stars speak.
NO_TEXT = np.array([0.2, 0.6, 0.2])


def has_text(text: str) -> bool:
    return bool(text.strip())


def _with_rating(probabilities: np.ndarray, rating: int | None) -> np.ndarray:
    """Text probabilities (negative, neutral, positive) combined with the review's stars."""
    if rating not in STAR_PRIOR:
        return probabilities
    combined = probabilities * np.array(STAR_PRIOR[rating])
    return combined / combined.sum()


def sentiment_scores(
    probabilities: np.ndarray, rating: int | None, text: str
) -> dict[Sentiment, float]:
    """A model's (negative, neutral, positive) probabilities for `text`, with the stars, as stored
    scores; `NO_TEXT` stands in for the model's answer where `text` is blank."""
    combined = _with_rating(probabilities if has_text(text) else NO_TEXT, rating)
    return {label: round(float(p), 4) for label, p in zip(SENTIMENT_ORDER, combined, strict=True)}
