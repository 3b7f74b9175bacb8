"""Language identification with lingua, restricted to the configured languages plus guards.

The platform's own tag is a prior: it wins unless the text clearly says otherwise; a tag that
names no language (X's "qme", "zxx", …: `listener.records.NO_LANGUAGE_TAGS`) is none. Links and
@handles are no language and are left out; text with no letters besides them (emoji only, a bare
link) keeps the platform's tag, or gets "und" (undetermined). Hindi and Arabic in Latin letters,
which lingua does not know, are recognised by their function words (Arabic also by the digits
it writes sounds with); a mention mostly in another script with English words in it is told from
the other script's part.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cached_property

from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder

from listener.links import HANDLE, LINK
from listener.records import NO_LANGUAGE_TAGS

UNDETERMINED = "und"
# The platform's tag is kept unless lingua is at least this sure of another language; short texts
# ("Lumora Glow super") rarely reach it, long ones in another language easily do.
OVERRIDE_CONFIDENCE = 0.8
# Widely used languages in scripts of their own, always candidates too, so a post in one is named
# as such (and answered by the fallback rules) instead of forced into a configured language. Latin
# script guards would steal short brand-name posts ("Lumora Glow super"), so there are none.
GUARD_LANGUAGES = ("ar", "hi", "bn", "ru", "uk", "el", "he", "fa", "th", "zh", "ko")
# Hindi typed in Latin letters ("mera order abhi tak nahi aaya"), which lingua knows only in
# Devanagari and reads as English: its common function words, leaving out those that are common
# words of the other configured languages too ("se", "to", "me", "do", "wo", "par").
# Two different ones making up 15 % of the Latin words name 104 of the 111 romanised Hindi
# mentions of the project's data set, and 1 of 11,034 UMSAB tweets in the six other languages.
ROMANISED_HINDI_WORDS = frozenset(
    """hai hain nahi nahin nhi kya kyu kyun kyon mera meri mere mujhe maine mujhko aap aapka aapki
    aapke aapne apna apni apne tha thi raha rahi rahe gaya gayi gaye gya gyi kar karo karna karke
    kiya kiye diya diye liya liye abhi tak bhi aur lekin ko ki ka ke mein yaar bhai bahut bohot
    kuch koi sab wala wali wale hua hui hue hoga hogi toh jab agar kaha kahan yeh bilkul jaldi baar
    hum tum tera kab kaise paise wapas accha acha theek thik ho""".split()  # noqa: SIM905
)
# Markers of a romanised language must make up this share of the words, two different ones at least.
ROMANISED_SHARE = 0.15
_ASCII_WORD = re.compile(r"[a-z]+")
# Arabic typed in Latin letters and digits ("Arabizi": "7ad 3amal order mn 3la el account"), read
# as English by lingua: digits for the sounds Latin lacks (2 ء, 3 ع, 5 خ, 7 ح, 8 غ, 9 ق) written
# before a letter ("3la", "wa2ef"), plus common function words that are no words of the other
# configured languages ("el", "ya", "fi", "bas", "mesh" and the name "Ana" are). It takes such a
# digit word and, besides, either a digit between two letters ("sa3et") or a function word, with
# two different markers making up a share of the words: sizes, durations, ordinals and codes
# ("3xl", "5mins", "2do", "bit.ly/3fGh7k") have their digits in front only. That names all six
# Arabic mentions in Latin letters of the project's data set and probes, and none of its 2,424
# other mentions or of the 17,304 UMSAB tweets (romanised Hindi included); it misses Arabizi with
# digits only in front and no function word ("7aram 3alekom").
ARABIZI_WORDS = frozenset(
    """enta enty inta inti howa heya ehna msh mish keda kda leh leeh lesh ezay ezzay izay lesa
    lessa mafish mafeesh mafesh mafi wallah yalla yallah inshallah shu kteer ktir tany tani bardo
    bardu kaman khalas aywa fen feen habibi shukran zay bokra bta3 beta3 ma3 la2""".split()  # noqa: SIM905
)
_ALPHANUMERIC_WORD = re.compile(r"[a-z0-9]+")
_DIGIT_BEFORE_A_LETTER = re.compile(r"[235789][a-z]")
_DIGIT_BETWEEN_LETTERS = re.compile(r"[a-z][235789][a-z]")
# "bit.ly/3fGh7k": a link without the scheme `LINK` needs. It starts where a host can start, not
# inside one: tried at every "a" of "a.a.a.a…", it took quadratic time (7 s on 40,000 characters).
_BARE_LINK = re.compile(r"(?<![\w-])(?<!\w\.)[\w-]+(?:\.[\w-]+)+/\S*")
LATIN_CHAT_SPELLINGS = frozenset(
    "2day 2morrow 2moro 2nite 2night 2go l8r l8er b2b b2c p2p h2o 2fa 3ds 5ghz".split()  # noqa: SIM905
)
# "3rd", "2nd", "5pm", "2e" (French), "3x", "5g", "8gb", "9kg", "7h30": numbers, not Arabizi.
_ORDINAL_OR_UNIT = re.compile(
    r"\d+(st|nd|rd|th|e|er|re|eme|me|am|pm|h|hrs?|x|g|gb|mb|tb|kg|km|cm|mm|ml|min|m|s|d|k|p|mp)\d*"
)
# Hindi, Arabic or Japanese with English words in it ("मेरा order cancel कर दो") is read as
# English by lingua once the Latin letters outnumber the others: where another script makes up
# this share of the letters, the language is told from that script's part alone.
OTHER_SCRIPT_SHARE = 0.25
_LATIN_WORDS = re.compile(r"[a-zA-Z\u00c0-\u024f]+")


def _lingua_language(code: str) -> Language:
    try:
        return Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper()))
    except AttributeError:
        raise ValueError(f"lingua does not know the language code {code!r}") from None


def _well_marked(markers: list[str], words: list[str]) -> bool:
    return len(set(markers)) >= 2 and len(markers) >= ROMANISED_SHARE * len(words)


def is_romanised_hindi(text: str) -> bool:
    words = _ASCII_WORD.findall(text.lower())
    return _well_marked([word for word in words if word in ROMANISED_HINDI_WORDS], words)


def _arabizi_digit_word(word: str) -> bool:
    return (
        _DIGIT_BEFORE_A_LETTER.search(word) is not None
        and sum(c.isdigit() for c in word) <= min(2, len(word) // 2)  # not "u2019s", "ice724"
        and word not in LATIN_CHAT_SPELLINGS
        and not _ORDINAL_OR_UNIT.fullmatch(word)
    )


def is_arabizi(text: str) -> bool:
    words = _ALPHANUMERIC_WORD.findall(_BARE_LINK.sub(" ", text.lower()))
    digit_words = {word for word in words if _arabizi_digit_word(word)}
    function_words = {word for word in words if word in ARABIZI_WORDS}
    markers = [word for word in words if word in digit_words or word in function_words]
    return (
        bool(digit_words)
        and (bool(function_words) or any(_DIGIT_BETWEEN_LETTERS.search(w) for w in digit_words))
        and _well_marked(markers, words)
    )


def _other_script_part(text: str) -> str:
    """`text` without its Latin words where letters of another script make up a fair share."""
    # Vowel signs count too: Devanagari writes a third of its letters with them.
    letters = [c for c in text if c.isalpha() or unicodedata.category(c) in ("Mn", "Mc")]
    latin = sum(character <= "\u036f" for character in letters)  # with its accents
    if latin > 0 and len(letters) - latin >= OTHER_SCRIPT_SHARE * len(letters):
        return _LATIN_WORDS.sub(" ", text)
    return text


class LanguageIdentifier:
    def __init__(self, languages: list[str]) -> None:
        self.languages = sorted(set(languages))

    @cached_property
    def _detector(self) -> LanguageDetector:
        codes = set(self.languages) | set(GUARD_LANGUAGES)
        return LanguageDetectorBuilder.from_languages(*map(_lingua_language, codes)).build()

    def identify(self, text: str, platform_tag: str | None = None) -> str:
        tag = (platform_tag or "").split("-")[0].lower() or None
        if tag in NO_LANGUAGE_TAGS:  # X's "qme" (media only) and the like: no prior at all
            tag = None
        # Links and @handles: "https://t.co/abc123" read as Portuguese, "@Lumora" as Italian.
        text = HANDLE.sub(" ", LINK.sub(" ", text))
        if not any(character.isalpha() for character in text):
            return tag or UNDETERMINED
        if is_romanised_hindi(text):  # guards like GUARD_LANGUAGES, configured or not
            return "hi"
        if is_arabizi(text):
            return "ar"
        text = _other_script_part(text)
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
