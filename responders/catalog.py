"""Per-locale message catalogs (`responders/catalogs/<locale>.yaml`): all wording of a draft.

Add a locale by copying `en.yaml` to `<language>.yaml` (or `<language>-<COUNTRY>.yaml` where a
market needs its own wording, like pt-BR and pt-PT), translating the quoted texts and running the
tests: `tests/test_responders.py` checks that every intent has a text in both registers.
Placeholders: `{name}` (greeting), `{brand}`, `{order}` (with_order), `{weekday}` and `{date}`
(follow_up.later, formatted for the locale by Babel), `{url}` (help).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from listener.enums import Formality, Intent
from responders.availability import Promise

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
    follow_up: dict[str, str]  # promise (today, tomorrow, later) -> sentence
    help: str  # introduces a help-centre link: {url}
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
    sections = (
        ("intents", [i.value for i in Intent]),
        ("with_order", [i.value for i in ORDER_INTENTS]),
        ("follow_up", [p.value for p in Promise]),
    )
    missing = [
        f"{formality}.{section}.{key}"
        for formality in Formality
        for section, keys in sections
        for key in keys
        if key not in getattr(registers.get(formality), section, {})
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
