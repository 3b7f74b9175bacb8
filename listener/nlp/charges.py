"""A double charge shown rather than named: the same amount twice in one mention.

Customers paste their statement ("NOOK&CRANNY HOME £249.00" on two lines) or write "9,99 +
9,99" and leave the reader to see the problem, often in praise words ("so generous, took £63.20
twice 🙃"). Neither the keywords nor the heads read that reliably; the repeated amount does. In
the project's customer-service data and probes (3,400 mentions) every mention with a repeated
amount is a double charge; among UMSAB's 14,712 tweets three repeat one ("pay $900 to be in a
pageant? $900").
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

_SYMBOLS = r"(?:US|[ACR])\$|€|\$|£|¥|₹|₩|円|元|ر\.س|ج\.م|د\.إ|د\.م"
_CODES = r"EUR|USD|GBP|JPY|INR|BRL|MXN|ARS|COP|CLP|CHF|HRK|SAR|AED|EGP|zł|kn|kr|Kč|Ft|lei|Rs\.?"
# Written out after the number ("12 eura", "199 ريال"), in the project's languages.
_WORDS = (
    r"euros?|eura|evra|dollars?|dólar(?:es)?|pounds?|pesos?|reais|real|francs?|kun[ae]?|yen"
    r"|rupees?|rupay[ae]?|रुपये|रुपए|रु\.?|ريال|جنيه|درهم|دينار|ليرة|ユーロ|ドル"
)
_CURRENCY = rf"(?:{_SYMBOLS}|(?:{_CODES})(?![A-Za-z]))"
_AFTER_NUMBER = rf"(?:{_CURRENCY}|(?:{_WORDS})(?![^\W\d_]))"
# 1,240 / 12 000 / 1.240,50 (thousands), 9,99 / 63.20 (cents), 199 (whole units). At most four
# groups of thousands: unbounded, a long run of "1 111 111 …" took quadratic time.
_NUMBER = r"\d{1,3}(?:[.,\u00a0\u202f ]\d{3}){1,4}(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_AMOUNT = re.compile(
    rf"(?<![\d.,])(?:(?P<before>{_NUMBER})\s?{_AFTER_NUMBER}"
    rf"|(?<![A-Za-z]){_CURRENCY}\s?-?(?P<after>{_NUMBER})"
    # Without a currency only cents say it is money; "14.05.2026" and "3.14.1" are not.
    r"|(?P<bare>\d+[.,]\d{2}))(?![.,]?\d)"
)
_CLOCK = re.compile(r"([01]?\d|2[0-3])\.[0-5]\d")  # "um 10.30": a time, not an amount
_NO_BREAK_SPACES = str.maketrans("\u00a0\u202f", "  ")


def amounts(text: str) -> list[str]:
    """The money amounts in `text`, as written but in ASCII digits and plain spaces."""
    found = []
    for match in _AMOUNT.finditer(text):
        bare = match.group("bare")
        if bare and _CLOCK.fullmatch(bare):
            continue
        amount = bare or match.group("before") or match.group("after")
        found.append(_plain(amount))
    return found


def _plain(amount: str) -> str:
    """ASCII digits ("١٢٠" is 120) and plain spaces (a number's only other characters)."""
    ascii_digits = "".join(str(unicodedata.digit(c)) if c.isdigit() else c for c in amount)
    return ascii_digits.translate(_NO_BREAK_SPACES)


def repeated_charge(text: str) -> str | None:
    """The first amount that occurs twice or more in `text`, or None: a likely double charge."""
    counts = Counter(amounts(text))
    return next((amount for amount, n in counts.items() if n >= 2), None)
