"""Checks a rewritten draft must pass before it replaces the template text.

A rewrite may change wording, never substance: no new links, handles, numbers or money and
liability words, the same language, within the platform's length. The customer's own text reaches
the model too, so these checks are also the defence against instructions hidden in a mention.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache
from pathlib import Path

import yaml

from listener.links import BARE_DOMAIN, LINK
from responders.catalog import catalogs

# A Slack control sequence ends at the first ">" and holds no "<": with "[^>]*", a rewrite of
# "<!<!<!…" (no ">") was scanned to its end from every "<", in quadratic time.
_HANDLE = re.compile(r"(?<!\w)@\w+|<[!@#][^<>]*>")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
RISKY_WORDS_FILE = Path(__file__).with_name("guardrails.yaml")
MAX_GROWTH = 2.0
# Arabic vowel marks and the tatweel stretch a word without changing it ("تَعْوِيض" is "تعويض"),
# and the alef is written with or without its hamza: matched without them.
_ARABIC_MARKS = dict.fromkeys([*range(0x064B, 0x0660), 0x0670, 0x0640])
_ARABIC_ALEFS = str.maketrans("أإآٱ", "اااا")


class GuardrailError(ValueError):
    pass


def _fold(text: str) -> str:
    """Text as risky words are matched: NFC (Devanagari nukta letters one way), case-folded,
    Arabic without vowel marks and with one alef."""
    folded = unicodedata.normalize("NFC", text).casefold().translate(_ARABIC_MARKS)
    return folded.translate(_ARABIC_ALEFS)


def load_risky_words(path: Path) -> dict[str, list[str]]:
    """The words a rewrite may not add, per language; every reply catalog's language must have
    them, or a rewrite in it could promise anything."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = sorted({catalog.language for catalog in catalogs().values()} - set(data))
    if missing:
        raise GuardrailError(
            f"{path}: no promise or liability words for the reply language(s) {', '.join(missing)}"
        )
    return {language: [_fold(w) for w in words] for language, words in data.items()}


@cache
def risky_words() -> dict[str, list[str]]:
    """The shipped list (`guardrails.yaml`), checked once per process."""
    return load_risky_words(RISKY_WORDS_FILE)


def problems(
    template: str,
    rewrite: str,
    *,
    language: str,
    limit: int | None,
    measure: Callable[[str], int],
    detect_language: Callable[[str], str],
) -> list[str]:
    """Why `rewrite` may not replace `template`; empty when it may."""
    found: list[str] = []
    if not rewrite.strip():
        return ["empty"]
    if limit is not None and measure(rewrite) > limit:
        found.append(f"longer than the platform's {limit} characters")
    if len(rewrite) > MAX_GROWTH * len(template):
        found.append("more than twice as long as the template")
    for name, pattern in (
        ("link", LINK),
        ("domain", BARE_DOMAIN),
        ("handle or Slack control", _HANDLE),
        ("number", _NUMBER),
    ):
        new = set(pattern.findall(rewrite)) - set(pattern.findall(template))
        if new:
            found.append(f"new {name}(s): {', '.join(sorted(new))[:80]}")
    words = risky_words().get(language)
    if words is None:
        found.append(f"no promise or liability words for {language} to check against")
    folded_template, folded = _fold(template), _fold(rewrite)
    risky = [w for w in words or [] if w in folded and w not in folded_template]
    if risky:
        found.append(f"promise or liability words: {', '.join(risky)}")
    detected = detect_language(rewrite)
    if detected != language:
        found.append(f"written in {detected}, not {language}")
    return found
