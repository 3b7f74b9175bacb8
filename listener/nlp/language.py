"""Language identification with lingua, restricted to the configured languages plus guards.

The platform's own tag is a prior: it wins unless the text clearly says otherwise. Links and
@handles are no language and are left out; text with no letters besides them (emoji only, a bare
link) keeps the platform's tag, or gets "und" (undetermined).
"""

from __future__ import annotations

import re
from functools import cached_property

from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder

UNDETERMINED = "und"
# The platform's tag is kept unless lingua is at least this sure of another language; short texts
# ("Lumora Glow super") rarely reach it, long ones in another language easily do.
OVERRIDE_CONFIDENCE = 0.8
# Widely used languages in scripts of their own, always candidates too, so a post in one is named
# as such (and answered by the fallback rules) instead of forced into a configured language. Latin
# script guards would steal short brand-name posts ("Lumora Glow super"), so there are none.
GUARD_LANGUAGES = ("ar", "hi", "bn", "ru", "uk", "el", "he", "fa", "th", "zh", "ko")


# Links and @handles: "https://t.co/abc123" read as Portuguese, "@Lumora" as Italian.
NOT_LANGUAGE = re.compile(r"\b(?:https?://|www\.)\S+|(?<![\w@])@\w+")


def _lingua_language(code: str) -> Language:
    try:
        return Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper()))
    except AttributeError:
        raise ValueError(f"lingua does not know the language code {code!r}") from None


class LanguageIdentifier:
    def __init__(self, languages: list[str]) -> None:
        self.languages = sorted(set(languages))

    @cached_property
    def _detector(self) -> LanguageDetector:
        codes = set(self.languages) | set(GUARD_LANGUAGES)
        return LanguageDetectorBuilder.from_languages(*map(_lingua_language, codes)).build()

    def identify(self, text: str, platform_tag: str | None = None) -> str:
        tag = (platform_tag or "").split("-")[0].lower() or None
        text = NOT_LANGUAGE.sub(" ", text)
        if not any(character.isalpha() for character in text):
            return tag or UNDETERMINED
        confidences = {
            value.language.iso_code_639_1.name.lower(): value.value
            for value in self._detector.compute_language_confidence_values(text)
        }
        if not confidences:
            return tag or UNDETERMINED
        best = max(confidences, key=confidences.__getitem__)
        if tag and confidences[best] < OVERRIDE_CONFIDENCE:
            return tag
        return best
