"""Rules around the models: language guards and the urgency scoring's review-star verdict."""

from __future__ import annotations

from listener.enums import Intent, Sentiment, Urgency
from listener.nlp.language import LanguageIdentifier
from listener.nlp.urgency import Signals, score_urgency

CONFIGURED = ["en", "de", "fr", "it", "es", "pt", "hr", "ja"]


def test_a_language_in_its_own_script_is_named_not_forced_into_a_configured_one():
    identify = LanguageIdentifier(CONFIGURED).identify
    assert identify("التطبيق سهل والتوصيل كان سريع للإمارات، المصباح Glow رائع 👍") == "ar"
    assert identify("Где мой заказ? Уже две недели жду") == "ru"
    assert identify("Lumora Glow super") == "en"  # short Latin text stays among the configured
    assert identify("Naplatili ste mi dvaput istu narudžbu") == "hr"


def test_a_happy_five_star_review_is_low_even_if_the_model_says_high():
    level, _score, reasons = score_urgency(
        Signals(
            intent=Intent.PRAISE,
            scores={Sentiment.NEGATIVE: 0.02, Sentiment.NEUTRAL: 0.08, Sentiment.POSITIVE: 0.9},
            rating=5,
            model_urgency={
                Urgency.LOW: 0.05,
                Urgency.MEDIUM: 0.05,
                Urgency.HIGH: 0.85,
                Urgency.CRITICAL: 0.05,
            },
        )
    )
    assert level is Urgency.LOW
    assert "5-star positive review" in reasons


def test_stars_never_hide_a_safety_report():
    level, _score, _reasons = score_urgency(
        Signals(
            intent=Intent.SAFETY,
            scores={Sentiment.NEGATIVE: 0.2, Sentiment.NEUTRAL: 0.1, Sentiment.POSITIVE: 0.7},
            rating=5,
        )
    )
    assert level is Urgency.CRITICAL
