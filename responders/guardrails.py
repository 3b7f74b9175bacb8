"""Checks a rewritten draft must pass before it replaces the template text.

A rewrite may change wording, never substance: no new links, handles, numbers or money and
liability words, the same language, within the platform's length. The customer's own text reaches
the model too, so these checks are also the defence against instructions hidden in a mention.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import yaml

from listener.links import LINK

# A Slack control sequence ends at the first ">" and holds no "<": with "[^>]*", a rewrite of
# "<!<!<!…" (no ">") was scanned to its end from every "<", in quadratic time.
_HANDLE = re.compile(r"(?<!\w)@\w+|<[!@#][^<>]*>")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
RISKY_WORDS_FILE = Path(__file__).with_name("guardrails.yaml")
MAX_GROWTH = 2.0


@cache
def _risky_words() -> dict[str, list[str]]:
    data = yaml.safe_load(RISKY_WORDS_FILE.read_text(encoding="utf-8"))
    return {language: [w.casefold() for w in words] for language, words in data.items()}


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
        ("handle or Slack control", _HANDLE),
        ("number", _NUMBER),
    ):
        new = set(pattern.findall(rewrite)) - set(pattern.findall(template))
        if new:
            found.append(f"new {name}(s): {', '.join(sorted(new))[:80]}")
    folded_template, folded = template.casefold(), rewrite.casefold()
    risky = [
        w for w in _risky_words().get(language, []) if w in folded and w not in folded_template
    ]
    if risky:
        found.append(f"promise or liability words: {', '.join(risky)}")
    detected = detect_language(rewrite)
    if detected != language:
        found.append(f"written in {detected}, not {language}")
    return found
