"""Decide whether a mention needs a reply and compose the templated draft."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from config.schema import Brand, Market, Settings
from listener.brands import mentioned_brand
from listener.enums import Intent, Sentiment, Urgency
from listener.links import BARE_DOMAIN, LINK
from listener.models import Classification, Mention, utcnow
from responders.availability import day_words, next_contact
from responders.catalog import ORDER_INTENTS, Catalog, Register, catalog_for
from responders.generative import Rewriter, RewriteRequest

FALLBACK_LANGUAGE = "en"
PRIVATE_INTENTS = {Intent.SAFETY, Intent.LEGAL, Intent.ACCOUNT_SECURITY}
# Praise and chatter need no follow-up; a complaint (`_is_complaint`), whatever its intent, and
# everything else are told when the team will answer.
NO_FOLLOW_UP = {Intent.PRAISE, Intent.OTHER}
# Languages written without spaces between sentences.
NO_SPACE_LANGUAGES = {"ja", "zh"}
# Platforms whose public replies are limited, in X's weighted characters.
REPLY_LIMITS = {"twitter": 280, "x": 280}
ORDER_NUMBER = re.compile(r"(?<![\w-])(?:[A-Z]{2,4}-?\d{5,}|#\d{5,})(?![\w-])")
# Spam whatever its tone: selling followers or easy money (and a flood of links, `_is_spam`).
_SPAM = re.compile(r"(?i)\b(?:followers? (?:cheap|fast|now)|buy (?:cheap )?followers|earn \$?\d+)")
# Spam only when nothing is wrong: customers complain about promo codes, giveaways and crypto too.
_PROMOTION = re.compile(r"(?i)\b(?:promo code|crypto|giveaway|dm me for|click here)")
SPAM_LINKS = 3
# "bot" as a word of its own in a handle (pricewatch_bot, deals-bot, bot123, PriceBot), never
# the end of a name (emma_talbot, Abbot).
_BOT_HANDLE = re.compile(r"(?<![^\W\d_])(?i:bot)(?![^\W\d_])|(?<=[a-z])Bot(?![a-z])")
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


X_LINK_CHARS = 23  # X shortens every link to t.co and counts it as this many characters


def x_weighted_length(text: str) -> int:
    """Characters as X counts them: a link 23, CJK and other wide characters 2, the rest 1."""
    links = len(LINK.findall(text))
    rest = LINK.sub("", text)
    return links * X_LINK_CHARS + sum(
        2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in rest
    )


def _is_spam(text: str, classification: Classification) -> bool:
    if _SPAM.search(text) or len(LINK.findall(text)) >= SPAM_LINKS:
        return True
    return bool(_PROMOTION.search(text)) and not _is_complaint(classification)


class ReplyDrafter:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        market: Market | None = None,
        rewriter: Rewriter | None = None,
    ) -> None:
        """`market` pins every draft to one market (`listener draft --market`)."""
        self.settings = settings
        self.clock = clock
        self.rewriter = rewriter or _configured_rewriter(settings)
        self.pinned_market = market
        self.own_handles = set().union(*(brand.own_handles() for brand in settings.brands))

    def decide(self, mention: Mention, classification: Classification) -> DraftDecision:
        reason = self._no_reply_reason(mention, classification)
        if reason:
            return DraftDecision(needs_reply=False, reason=reason)
        return DraftDecision(
            needs_reply=True, reason="", draft=self.compose(mention, classification)
        )

    def _no_reply_reason(self, mention: Mention, classification: Classification) -> str | None:
        handle = mention.author_handle or ""
        if handle.lower() in self.own_handles:
            return "the brand's own post"
        if _BOT_HANDLE.search(handle):
            return "automated account"
        if _is_spam(mention.text, classification):
            return "spam"
        if mention.duplicate_of_id is not None:
            return f"cross-post of mention {mention.duplicate_of_id}, answered there"
        if Intent(classification.intent) is Intent.PRAISE or _is_complaint(classification):
            return None
        return "chatter: no question, problem or praise to answer"

    def _reply_language(self, language: str) -> tuple[Market, Catalog, str]:
        """The mention's language, else its market's, else English; and which of these it was.

        The market is the one pinned (`listener draft --market`), else the first that speaks the
        mention's language for a reply in it, else the default market.
        """
        mention_market = self.pinned_market or self.settings.market_for_language(language)
        fallback_market = self.pinned_market or self.settings.market()
        candidates = (
            (mention_market, language, "mention"),
            (fallback_market, fallback_market.language, "market"),
        )
        for market, candidate, source in candidates:
            catalog = catalog_for(candidate, market.country)
            if catalog:
                return market, catalog, source
        english = catalog_for(FALLBACK_LANGUAGE, None)
        if english is None:
            raise RuntimeError("the English reply catalog (responders/catalogs/en.yaml) is missing")
        return fallback_market, english, "fallback"

    def _follow_up(self, register: Register, market: Market, catalog: Catalog) -> str:
        contact = next_contact(market, self.clock())
        return register.follow_up[contact.promise.value].format(
            **day_words(contact.day, catalog.locale)
        )

    def _brand(self, mention: Mention) -> Brand:
        """The brand the mention names, as alerts and the digest attribute it; else the first."""
        return mentioned_brand(mention, self.settings) or self.settings.brands[0]

    def compose(self, mention: Mention, classification: Classification) -> Draft:
        market, catalog, language_source = self._reply_language(classification.language)
        register = catalog.registers[market.formality]
        intent = _reply_intent(classification)
        brand = self._brand(mention)
        order = ORDER_NUMBER.search(mention.text)
        if order and intent in ORDER_INTENTS:
            body = register.with_order[intent.value].format(order=order.group(0), brand=brand.name)
        else:
            body = register.intents[intent.value].format(brand=brand.name)
        follow_up = (
            self._follow_up(register, market, catalog)
            if _is_complaint(classification) or intent not in NO_FOLLOW_UP
            else ""
        )
        help_link = _help_link(brand, register, intent, catalog)
        name = _safe_name(mention.author_name or mention.author_handle or "")
        greeting = register.greeting.format(name=name, brand=brand.name) if name else ""
        sign_off = register.sign_off.format(brand=brand.name)
        sentence_gap = "" if catalog.language in NO_SPACE_LANGUAGES else " "
        limit = REPLY_LIMITS.get(mention.source)
        text = _fit(Parts(greeting, body, follow_up, help_link, sign_off, sentence_gap), limit)
        if self.rewriter:
            request = RewriteRequest(
                text, mention.text, catalog.language, catalog.name, market.formality.value, limit
            )
            text = self.rewriter.rewrite(request) or text
        return Draft(
            text=text,
            locale=catalog.locale,
            formality=market.formality.value,
            intent=intent.value,
            channel="dm" if intent in PRIVATE_INTENTS else "public",
            language_source=language_source,
        )


def _help_link(brand: Brand, register: Register, intent: Intent, catalog: Catalog) -> str:
    """The brand's article for the intent in the reply's locale or language, introduced; or ""."""
    articles = brand.help_articles.get(intent, {})
    url = articles.get(catalog.locale) or articles.get(catalog.language)
    return register.help.format(url=url) if url else ""


def _is_complaint(classification: Classification) -> bool:
    """Negative, or at least medium urgency: something to put right, whatever the intent."""
    urgent = Urgency.parse(classification.urgency) >= Urgency.MEDIUM
    return urgent or classification.sentiment == Sentiment.NEGATIVE


def _reply_intent(classification: Classification) -> Intent:
    """The intent whose pattern answers the mention.

    Praise that reads as a complaint is most often sarcasm ("great job, 90 minutes for a ramen
    👏"): it gets the neutral `other` pattern and a follow-up, never a thank-you.
    """
    intent = Intent(classification.intent)
    if intent is Intent.PRAISE and _is_complaint(classification):
        return Intent.OTHER
    return intent


def _configured_rewriter(settings: Settings) -> Rewriter | None:
    if not settings.responders.generative.enabled:
        return None
    from listener.nlp.language import LanguageIdentifier

    identifier = LanguageIdentifier(settings.languages)
    return Rewriter(
        settings.responders.generative,
        measure=x_weighted_length,
        detect_language=lambda text: identifier.identify(text, None),
    )


def _safe_name(name: str) -> str:
    """A display name fit to repeat (short, no control characters), or "" for none at all.

    A name holding a link, a bare domain or an at sign in any form (＠ U+FF20 pings on X too) is
    dropped whole: what is left of it after cutting those out is no one's name.
    """
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    folded = unicodedata.normalize("NFKC", name)  # fullwidth and small forms to ASCII
    if "@" in folded or LINK.search(folded) or BARE_DOMAIN.search(folded):
        return ""
    return name[:MAX_NAME_CHARS].strip()


@dataclass(frozen=True)
class Parts:
    greeting: str
    body: str
    follow_up: str
    help_link: str
    sign_off: str
    sentence_gap: str

    def join(self, *, greeting: bool, help_link: bool, sign_off: bool, follow_up: bool) -> str:
        sentences = [
            self.body,
            self.follow_up if follow_up else "",
            self.help_link if help_link else "",
        ]
        middle = self.sentence_gap.join(s for s in sentences if s)
        chosen = [self.greeting if greeting else "", middle, self.sign_off if sign_off else ""]
        return " ".join(part for part in chosen if part)


# What goes first when a reply must be shortened: greeting, help link, sign-off, follow-up.
_SHORTENINGS = (
    {"greeting": True, "help_link": True, "sign_off": True, "follow_up": True},
    {"greeting": False, "help_link": True, "sign_off": True, "follow_up": True},
    {"greeting": False, "help_link": False, "sign_off": True, "follow_up": True},
    {"greeting": False, "help_link": False, "sign_off": False, "follow_up": True},
    {"greeting": False, "help_link": False, "sign_off": False, "follow_up": False},
)


def _fit(parts: Parts, limit: int | None) -> str:
    """The fullest reply within the platform's limit (X counts wide characters twice)."""
    for choice in _SHORTENINGS:
        text = parts.join(**choice)
        if limit is None or x_weighted_length(text) <= limit:
            return text
    return parts.body
