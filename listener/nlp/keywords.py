"""Per-language keywords: intent evidence and churn threats for every classifier.

The built-in lexicon (`lexicon.yaml`) covers the product's languages; a team adds its own words
per intent and language in the config (`model.keywords`), e.g. a product's recall or a local
consumer body. Matching is case-insensitive on word prefixes for alphabetic scripts and on
substrings for Arabic and for scripts written without spaces; a keyword ending in `$` must end a
word there.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from listener.enums import Intent

LEXICON = Path(__file__).with_name("lexicon.yaml")
# The code that turns texts and model outputs into labels: every module of this package.
RULES_CODE = Path(__file__).parent
CHURN = "churn"
# The most serious reading wins when a text matches several intents.
INTENT_PRIORITY = [
    Intent.SAFETY,
    Intent.ACCOUNT_SECURITY,
    Intent.LEGAL,
    Intent.BILLING_PAYMENT,
    Intent.DAMAGED_DEFECTIVE,
    Intent.REFUND_RETURN,
    Intent.DELIVERY,
    Intent.QUESTION,
    Intent.PRAISE,
]
# The groups a config may add words to: every intent with keywords, and churn threats.
KEYWORD_GROUPS = (*(intent.value for intent in INTENT_PRIORITY), CHURN)
# Scripts without spaces, and Arabic, which writes articles and conjunctions onto the word
# ("والحريق" = "and the fire"): their keywords match anywhere, not only at a word start.
_INSIDE_WORDS = {"ja", "zh", "th", "ar"}
# Arabic spellings that vary in practice: hamza forms of alef, alef maqsura, ta marbuta,
# tatweel and the short-vowel marks.
_ARABIC_VARIANTS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ى": "ي", "ة": "ه", "ـ": None})
_ARABIC_MARKS = re.compile("[\u064b-\u065f\u0670]")
# Croatian is often typed without its diacritics online ("usao u racun"): compared without them.
_CROATIAN_DIACRITICS = str.maketrans("čćšžđ", "ccszd")

Words = Mapping[str, Sequence[str]]  # language -> keywords
WORD_END = "$"  # written after a keyword that must not be read as a prefix
ANY_LANGUAGE = "any"  # a list of lexicon.yaml whose words join every language's list


# Languages whose mentions mix in English words freely ("mera phone overheat ho gaya"): their
# lists also hold the English ones.
_CODE_MIXED = ("hi",)
# A word start: not after a letter, digit or Indic mark (Python's \w leaves out the vowel signs
# of Devanagari and its neighbours, so "जल" would otherwise be found inside "बिजली").
_NOT_AFTER_A_LETTER = r"(?<![\w\u0900-\u0dff])"


@cache
def builtin_lexicon() -> dict:
    lexicon = yaml.safe_load(LEXICON.read_text(encoding="utf-8"))
    for sections in lexicon.values():
        for section in sections.values():
            for word in section.pop(ANY_LANGUAGE, ()):  # a loanword every language writes
                for words in section.values():
                    words.append(word)
            for language in _CODE_MIXED:
                if language in section:
                    mixed = section[language]
                    section[language] = [*mixed, *(w for w in section["en"] if w not in mixed)]
    return lexicon


@cache
def builtin_fingerprint() -> str:
    """A digest of the built-in rules: the lexicon and the code that reads texts and model
    outputs into labels (this package's modules). Stored with each result in the model version,
    so that results of an upgrade that changed a rule tell themselves apart from older ones.
    Every module counts, not a hand-kept list that a new rule could miss; an edit that changes
    no result only starts a new version."""
    digest = hashlib.sha256()
    for path in [LEXICON, *sorted(RULES_CODE.glob("*.py"))]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes().replace(b"\r\n", b"\n"))  # a CRLF checkout: the same
    return digest.hexdigest()[:8]


def fold(text: str, language: str) -> str:
    """The form keywords and texts are compared in: casefolded, Arabic spellings unified,
    Croatian diacritics dropped."""
    folded = text.casefold()
    if language == "ar":
        folded = _ARABIC_MARKS.sub("", folded).translate(_ARABIC_VARIANTS)
    elif language == "hr":
        folded = folded.translate(_CROATIAN_DIACRITICS)
    return folded


@cache
def _pattern(language: str, words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    folded = [fold(word, language) for word in words]
    if language in _INSIDE_WORDS:
        return re.compile("|".join(_up_to_word_end(word) for word in folded))
    # Prefix match at a word start: "refund" finds "refunded", "überhitz" finds "überhitzt".
    # Punctuation keywords ("?") match anywhere: "recall?" asks a question too.
    return re.compile("|".join(_at_word_start(word) for word in folded))


def _up_to_word_end(word: str) -> str:
    """A keyword ending in `WORD_END` ("ocu$") must end a word there: "OCU", not "ocupado"."""
    if word.endswith(WORD_END) and len(word) > len(WORD_END):
        return re.escape(word.removesuffix(WORD_END)) + r"(?!\w)"
    return re.escape(word)


def _at_word_start(word: str) -> str:
    escaped = _up_to_word_end(word)
    return _NOT_AFTER_A_LETTER + escaped if re.match(r"\w", word) else escaped


def words_for(section: Words, language: str) -> Sequence[str]:
    """The section's keywords for `language`; a language it lacks reads the English ones rather
    than nothing."""
    return section[language] if language in section else section.get("en", ())


def keyword_pattern(section: Words, language: str) -> re.Pattern[str] | None:
    """The section's keywords for `language` as one pattern over `fold`ed text."""
    return _pattern(language, tuple(words_for(section, language)))


def hits(section: Words, language: str, folded: str) -> int:
    """How many times the section's keywords for `language` occur in `fold`ed text."""
    pattern = keyword_pattern(section, language)
    return len(pattern.findall(folded)) if pattern else 0


def _found_apart(section: Words, language: str, folded: str) -> tuple[set[str], str]:
    """The section's different keywords in `fold`ed text ("fire ... fire" is one), and the text
    with them blanked out, so that another section's shorter words are not found again inside
    them ("burn" in "burning smell")."""
    pattern = keyword_pattern(section, language)
    if pattern is None:
        return set(), folded
    return set(pattern.findall(folded)), pattern.sub(" ", folded)


def _extended(section: Words, extra: Words) -> dict[str, list[str]]:
    """`section` plus `extra`'s words; a language the section lacks extends its English list,
    which is what that language read before."""
    merged = {language: list(words) for language, words in section.items()}
    for language, words in extra.items():
        merged[language] = [*words_for(section, language), *words]
    return merged


def _digest(extra: Mapping[str, Words]) -> str:
    canonical = {
        group: {lang: list(words) for lang, words in by_language.items()}
        for group, by_language in extra.items()
    }
    encoded = json.dumps(canonical, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()[:8]


def _joined(section: Words, more: Words) -> dict[str, list[str]]:
    """Both sections' words per language (a language one of them lacks reads its English)."""
    languages = set(section) | set(more)
    return {
        language: [*words_for(section, language), *words_for(more, language)]
        for language in languages
    }


@dataclass(frozen=True)
class KeywordEvidence:
    """An intent whose keywords occur in a text: how many different ones, and how many of those
    are ambiguous (they also name everyday trouble: burnt toast, a forgotten password)."""

    intent: Intent
    keywords: int
    ambiguous: int = 0

    @property
    def unambiguous(self) -> int:
        return self.keywords - self.ambiguous


class Lexicon:
    """The built-in keywords, extended by a config's `model.keywords`."""

    def __init__(self, extra: Mapping[str, Words] | None = None) -> None:
        extra = extra or {}
        builtin = builtin_lexicon()
        self._unambiguous = {
            intent.value: _extended(builtin["intents"][intent.value], extra.get(intent.value, {}))
            for intent in INTENT_PRIORITY
        }
        # A team's own words are never ambiguous: it added them to be told about them.
        self.ambiguous: dict[str, Words] = copy.deepcopy(builtin["ambiguous"])
        # Every keyword of each intent, ambiguous or not: what a text "names".
        self.intents = {
            intent: _joined(words, self.ambiguous.get(intent, {}))
            for intent, words in self._unambiguous.items()
        }
        self.churn = _extended(builtin["sentiment"][CHURN], extra.get(CHURN, {}))
        # Stored with each classification: which added words were in force ("" for none).
        self.version = _digest(extra) if any(extra.values()) else ""

    def intent(self, text: str, language: str) -> Intent:
        """The most serious intent whose keywords occur in the text."""
        found = self.evidence(text, language)
        return found[0].intent if found else Intent.OTHER

    def evidence(self, text: str, language: str) -> list[KeywordEvidence]:
        """Every intent whose keywords occur in the text, the most serious first."""
        folded = fold(text, language)
        found = []
        for intent in INTENT_PRIORITY:
            plain, rest = _found_apart(self._unambiguous[intent.value], language, folded)
            ambiguous, _ = _found_apart(self.ambiguous.get(intent.value, {}), language, rest)
            if plain or ambiguous:
                found.append(KeywordEvidence(intent, len(plain) + len(ambiguous), len(ambiguous)))
        return found

    def churn_threat(self, text: str, language: str) -> bool:
        """A churn threat ("never again", "switching to ..."): a signal every model uses."""
        return bool(hits(self.churn, language, fold(text, language)))


@cache
def default_lexicon() -> Lexicon:
    return Lexicon()
