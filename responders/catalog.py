"""Per-locale message catalogs (`responders/catalogs/<locale>.yaml`): all wording of a draft.

Add a locale by copying `en.yaml` to `<language>.yaml` (or `<language>-<COUNTRY>.yaml` where a
market needs its own wording, like pt-BR and pt-PT), translating the quoted texts and running the
tests: `tests/test_responders_catalog.py` checks that every intent has a text in both registers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from listener.enums import Formality, Intent

CATALOG_DIR = Path(__file__).with_name("catalogs")
ORDER_INTENTS = (
    Intent.DELIVERY,
    Intent.REFUND_RETURN,
    Intent.DAMAGED_DEFECTIVE,
    Intent.BILLING_PAYMENT,
)


@dataclass(frozen=True)
class Register:
    greeting: str
    sign_off: str
    intents: dict[str, str]
    with_order: dict[str, str]


@dataclass(frozen=True)
class Catalog:
    locale: str
    language: str
    name: str
    registers: dict[Formality, Register]


class CatalogError(ValueError):
    pass


def _load(path: Path) -> Catalog:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        registers = {Formality(key): Register(**value) for key, value in data["registers"].items()}
        catalog = Catalog(data["locale"], data["language"], data["name"], registers)
    except (KeyError, TypeError, ValueError) as error:
        raise CatalogError(f"{path}: malformed catalog ({error})") from None
    missing = [
        f"{formality}.{section}.{intent}"
        for formality in Formality
        for section, intents in (("intents", list(Intent)), ("with_order", ORDER_INTENTS))
        for intent in intents
        if intent.value not in getattr(registers.get(formality), section, {})
    ]
    if missing:
        raise CatalogError(f"{path}: missing texts for {', '.join(missing)}")
    return catalog


@cache
def catalogs() -> dict[str, Catalog]:
    """Every shipped catalog by locale ("de", "pt-BR", ...), validated once per process."""
    return {path.stem: _load(path) for path in sorted(CATALOG_DIR.glob("*.yaml"))}


def catalog_for(language: str, country: str | None) -> Catalog | None:
    """The most specific catalog for a language in a market's country, if one exists."""
    available = catalogs()
    if country and f"{language}-{country}" in available:
        return available[f"{language}-{country}"]
    if language in available:
        return available[language]
    return next((c for c in available.values() if c.language == language), None)
