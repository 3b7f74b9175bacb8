"""Decide whether a mention needs a reply and compose the templated draft."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from config.schema import Market, Settings
from listener.enums import Intent, Sentiment, Urgency
from listener.models import Classification, Mention
from responders.catalog import ORDER_INTENTS, Catalog, catalog_for

FALLBACK_LANGUAGE = "en"
PRIVATE_INTENTS = {Intent.SAFETY, Intent.LEGAL, Intent.ACCOUNT_SECURITY}
# Platforms whose public replies are limited, in X's weighted characters.
REPLY_LIMITS = {"twitter": 280, "x": 280}
ORDER_NUMBER = re.compile(r"(?<![\w-])(?:[A-Z]{2,4}-?\d{5,}|#\d{5,})(?![\w-])")
_SPAM = re.compile(
    r"(?i)\b(?:followers? (?:cheap|fast|now)|buy (?:cheap )?followers|promo code|crypto|"
    r"giveaway|dm me for|click here|earn \$?\d+)"
)
_LINK = re.compile(r"(?:https?://|www\.)\S*")
MAX_NAME_CHARS = 40


@dataclass(frozen=True)
class Draft:
    text: str
    locale: str
    formality: str
    intent: str
    channel: str  # "public" reply, or "dm": acknowledge publicly, continue in private
    language_source: str  # mention, market or fallback


@dataclass(frozen=True)
class DraftDecision:
    needs_reply: bool
    reason: str
    draft: Draft | None = None


def x_weighted_length(text: str) -> int:
    """Characters as X counts them: CJK and other wide characters weigh 2, the rest 1."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _is_spam(text: str) -> bool:
    return bool(_SPAM.search(text)) or len(_LINK.findall(text)) >= 3


class ReplyDrafter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.own_handles = set().union(*(brand.own_handles() for brand in settings.brands))
        self.brand_name = settings.brands[0].name

    def decide(self, mention: Mention, classification: Classification) -> DraftDecision:
        reason = self._no_reply_reason(mention, classification)
        if reason:
            return DraftDecision(needs_reply=False, reason=reason)
        return DraftDecision(
            needs_reply=True, reason="", draft=self.compose(mention, classification)
        )

    def _no_reply_reason(  # noqa: PLR0911  (one early return per reason reads best)
        self, mention: Mention, classification: Classification
    ) -> str | None:
        handle = (mention.author_handle or "").lower()
        if handle in self.own_handles:
            return "the brand's own post"
        if handle.endswith("bot"):
            return "automated account"
        if _is_spam(mention.text):
            return "spam"
        if mention.duplicate_of_id is not None:
            return f"cross-post of mention {mention.duplicate_of_id}, answered there"
        intent = Intent(classification.intent)
        if intent is Intent.PRAISE:
            return None
        needs_action = Urgency.parse(classification.urgency) >= Urgency.MEDIUM
        if needs_action or classification.sentiment == Sentiment.NEGATIVE:
            return None
        return "chatter: no question, problem or praise to answer"

    def _reply_language(self, language: str) -> tuple[Market, Catalog, str]:
        market = self.settings.market_for_language(language)
        catalog = catalog_for(language, market.country)
        if catalog:
            return market, catalog, "mention"
        market = self.settings.market()
        catalog = catalog_for(market.language, market.country)
        if catalog:
            return market, catalog, "market"
        english = catalog_for(FALLBACK_LANGUAGE, None)
        if english is None:
            raise RuntimeError("the English reply catalog (responders/catalogs/en.yaml) is missing")
        return market, english, "fallback"

    def compose(self, mention: Mention, classification: Classification) -> Draft:
        market, catalog, language_source = self._reply_language(classification.language)
        register = catalog.registers[market.formality]
        intent = Intent(classification.intent)
        order = ORDER_NUMBER.search(mention.text)
        if order and intent in ORDER_INTENTS:
            body = register.with_order[intent.value].format(
                order=order.group(0), brand=self.brand_name
            )
        else:
            body = register.intents[intent.value].format(brand=self.brand_name)
        name = _safe_name(mention.author_name or mention.author_handle or "")
        greeting = register.greeting.format(name=name, brand=self.brand_name) if name else ""
        sign_off = register.sign_off.format(brand=self.brand_name)
        text = _fit([greeting, body, sign_off], REPLY_LIMITS.get(mention.source))
        return Draft(
            text=text,
            locale=catalog.locale,
            formality=market.formality.value,
            intent=intent.value,
            channel="dm" if intent in PRIVATE_INTENTS else "public",
            language_source=language_source,
        )


def _safe_name(name: str) -> str:
    """A display name fit to repeat: no links, no @-pings, no control characters, short."""
    name = _LINK.sub("", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.replace("@", "").strip()
    return name[:MAX_NAME_CHARS].strip()


def _fit(parts: list[str], limit: int | None) -> str:
    """Join greeting, body and sign-off; drop the greeting, then the sign-off, to fit a limit."""
    greeting, body, sign_off = parts
    for candidate in ([greeting, body, sign_off], [body, sign_off], [body]):
        text = " ".join(part for part in candidate if part)
        if limit is None or x_weighted_length(text) <= limit:
            return text
    return body
