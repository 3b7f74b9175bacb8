"""Links and @handles in mention text, one definition for every stage that sets them apart: they
are no language's words (`listener.nlp.language`), and a reply must not gain or repeat them
(`responders`)."""

from __future__ import annotations

import re

LINK = re.compile(r"(?:https?://|www\.)\S+")
HANDLE = re.compile(r"(?<![\w@])@\w+")
