"""Classification: language, sentiment, urgency and intent for each mention.

Classifiers implement one small interface so the pipeline does not care which model runs; the
name and version of the one that ran are stored with every classification.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from listener.enums import Intent, Sentiment, Urgency

if TYPE_CHECKING:  # the training code also runs where the app's config stack is not installed
    from config.schema import ModelConfig


@dataclass(frozen=True)
class TextInput:
    text: str
    language: str
    rating: int | None = None
    author_followers: int | None = None
    source: str | None = None
    engagement: int | None = None  # likes, reposts, replies when collected

    @classmethod
    def from_record(cls, record: Mapping[str, Any], language: str) -> TextInput:
        """A JSONL record (`text` and the optional signals a classifier reads) in `language`."""
        return cls(
            record["text"],
            language,
            record.get("rating"),
            record.get("author_followers"),
            record.get("source"),
            record.get("engagement"),
        )


def sentiment_label(scores: Mapping[Sentiment, float]) -> Sentiment:
    """The label of a sentiment distribution: its most probable class."""
    return max(scores, key=scores.__getitem__)


@dataclass(frozen=True)
class Prediction:
    sentiment: Sentiment
    scores: dict[Sentiment, float]
    urgency: Urgency
    urgency_score: float
    intent: Intent
    reasons: list[str] = field(default_factory=list)


class Classifier(Protocol):
    name: str
    version: str

    def classify(self, items: Sequence[TextInput]) -> list[Prediction]: ...


class ModelLoadError(ValueError):
    """The configured model cannot be loaded; the message says why and what to change."""


def load_classifier(config: ModelConfig) -> Classifier:
    """The classifier the config names, loaded once per process by the caller.

    Raises ModelLoadError when the configured model cannot serve.
    """
    from listener.nlp.keywords import Lexicon
    from listener.nlp.urgency import TeamRules, Virality

    rules = TeamRules(
        Lexicon(config.keywords), Virality(config.viral_followers, config.viral_reactions)
    )
    if config.name == "baseline":
        from listener.nlp.baseline import BaselineClassifier

        return BaselineClassifier(rules)
    if config.name == "e5-heads":
        from listener.nlp.transformer import TransformerClassifier

        return TransformerClassifier(
            config.threads, config.batch_size, config.precision, rules=rules
        )
    from listener.nlp.hub import HubClassifier, ModelLabelError

    try:
        return HubClassifier(
            config.name,
            config.labels,
            config.threads,
            config.batch_size,
            rules=rules,
            precision=config.precision,
        )
    except ModelLabelError:
        raise
    except (OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelLoadError(
            f"unknown model {config.name!r}: it is neither one of the models this version ships"
            " (e5-heads, the multilingual transformer; baseline, keywords) nor a Hugging Face"
            " sequence-classification model transformers could load (a directory written by"
            " save_pretrained, or a hub name on a machine that can reach the hub):"
            f" {reason}"
        ) from error
