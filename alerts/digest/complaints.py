"""What people complained about: negative mentions grouped by intent, then by the wording used.

Counts per intent come from SQL (`FigureQueries.complaints`). Within an intent, the recurring
wording is the intent keyword of the classifier's lexicon (per language) that each text contains;
that needs the texts, so at most SAMPLE of the week's most negative ones are read (the digest says
when it sampled). Quotes are the most negative texts, two languages where there are two.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.digest.figures import FigureQueries, in_range
from alerts.digest.week import Week
from alerts.sinks import printable, shorten
from listener.enums import Sentiment
from listener.models import Classification, Mention
from listener.nlp.keywords import Lexicon, fold, keyword_pattern

SAMPLE = 20_000
GROUPS_SHOWN = 6
KEYWORDS_SHOWN = 4
QUOTE_CHARS = 280
INTENT_LABELS = {
    "delivery": "Delivery",
    "refund_return": "Refunds and returns",
    "damaged_defective": "Damaged or defective products",
    "billing_payment": "Billing and payment",
    "account_security": "Account security",
    "safety": "Product safety",
    "legal": "Legal threats",
    "question": "Questions",
    "praise": "Praise (with a negative tone)",
    "other": "Other",
}


def intent_label(intent: str) -> str:
    return INTENT_LABELS.get(intent, intent.replace("_", " ").capitalize())


@cache
def language_name(code: str) -> str:
    """`de` -> `German`; an unknown code is shown as it is."""
    from lingua import IsoCode639_1, Language

    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code)).name.title()
    except (ValueError, AttributeError):
        return code


@dataclass(frozen=True)
class Quote:
    language: str
    text: str
    url: str | None

    @property
    def language_name(self) -> str:
        return language_name(self.language)


@dataclass
class ComplaintGroup:
    intent: str
    count: int
    keywords: list[tuple[str, str, int]] = field(default_factory=list)  # word, language, count
    quotes: list[Quote] = field(default_factory=list)

    @property
    def label(self) -> str:
        return intent_label(self.intent)


def keyword_in(text: str, intent: str, language: str, lexicon: Lexicon) -> str | None:
    """The first keyword of `intent` in `text` (its language's, else English's), the team's own
    (`model.keywords`) included.

    Punctuation keywords ("?") mark a question but say nothing about its topic: skipped.
    """
    pattern = keyword_pattern(lexicon.intents.get(intent, {}), language)
    found = pattern.finditer(fold(text, language)) if pattern else ()
    return next((m.group(0) for m in found if any(c.isalnum() for c in m.group(0))), None)


def _pick_quotes(rows: list[tuple[str, str, str | None]]) -> list[Quote]:
    """The two most negative texts, from two languages when the group has two."""
    if not rows:
        return []
    first, rest = rows[0], rows[1:]
    second = next((row for row in rest if row[0] != first[0]), rest[0] if rest else None)
    chosen = [first] if second is None else [first, second]
    return [
        Quote(lang, shorten(printable(" ".join(text.split())), QUOTE_CHARS), url)
        for lang, text, url in chosen
    ]


def complaint_groups(
    queries: FigureQueries, week: Week, counts: dict[str, dict[str, int]]
) -> tuple[dict[str, list[ComplaintGroup]], bool]:
    """Per brand, the top intents among negative mentions; and whether texts were sampled.

    `counts` is `queries.complaints(week)`, which the digest has already run.
    """
    session: Session = queries.session
    query = (
        select(
            queries.brand, Classification.intent, Classification.language, Mention.text, Mention.url
        )
        .select_from(Mention)
        .join(Classification, Classification.mention_id == Mention.id)
        .where(
            queries.counted,
            in_range(Mention.created_at, week.start, week.end),
            Classification.sentiment == Sentiment.NEGATIVE,
        )
        .order_by(Classification.score_negative.desc(), Mention.id)  # type: ignore[attr-defined]
        .limit(SAMPLE + 1)
    )
    rows = list(session.execute(query))
    sampled = len(rows) > SAMPLE
    texts: dict[tuple[str, str], list[tuple[str, str, str | None]]] = defaultdict(list)
    for brand, intent, language, text, url in rows[:SAMPLE]:
        texts[(brand, intent)].append((language, text, url))
    lexicon = Lexicon(queries.settings.model.keywords)
    groups: dict[str, list[ComplaintGroup]] = {}
    for brand, by_intent in counts.items():
        top = sorted(by_intent.items(), key=lambda item: (-item[1], item[0]))[:GROUPS_SHOWN]
        groups[brand] = [
            _group(intent, count, texts[(brand, intent)], lexicon) for intent, count in top
        ]
    return groups, sampled


def _group(
    intent: str, count: int, rows: list[tuple[str, str, str | None]], lexicon: Lexicon
) -> ComplaintGroup:
    wording: Counter[tuple[str, str]] = Counter()
    for language, text, _url in rows:
        word = keyword_in(text, intent, language, lexicon)
        if word:
            wording[(word, language)] += 1
    keywords = [(word, lang, n) for (word, lang), n in wording.most_common(KEYWORDS_SHOWN)]
    return ComplaintGroup(intent, count, keywords, _pick_quotes(rows))
