"""Which configured brand a mention is about, one definition for every stage that asks: alerts
and spike detection (`alerts`), the digest's SQL (`alerts.digest.figures.brand_expression` matches
the same terms) and reply drafts (`responders`), which sign and link for that brand."""

from __future__ import annotations

from config.schema import Brand, Settings
from listener.models import Mention


def brand_terms(brand: Brand) -> list[str]:
    """What names a brand in a text: its name and its keywords in every language."""
    return [brand.name, *(word for words in brand.keywords.values() for word in words)]


def mentioned_brand(mention: Mention, settings: Settings) -> Brand | None:
    """The first configured brand the mention names (by name or keyword); the only brand if just
    one; None when several are configured and it names none."""
    text = mention.text.casefold()
    for brand in settings.brands:
        if any(word.casefold() in text for word in brand_terms(brand)):
            return brand
    return settings.brands[0] if len(settings.brands) == 1 else None


def brand_of(mention: Mention, settings: Settings) -> str | None:
    """The name of the brand the mention names (`mentioned_brand`)."""
    brand = mentioned_brand(mention, settings)
    return brand.name if brand else None
