"""Links and @handles in mention text, one definition for every stage that sets them apart: they
are no language's words (`listener.nlp.language`), and a reply must not gain or repeat them
(`responders`)."""

from __future__ import annotations

import re

LINK = re.compile(r"(?:https?://|www\.)\S+")
# A bare domain ("cheapfollowers.com/deal"), which platforms link without "http://" or "www.".
# Its top-level part is ASCII letters in one case: "J.Rodriguez", "Dr.Özil" or "Иван.Петров" is
# a name.
BARE_DOMAIN = re.compile(r"[\w-]+\.(?:[a-z]{2,}|[A-Z]{2,})(?![^\W\d_])")
HANDLE = re.compile(r"(?<![\w@])@\w+")
