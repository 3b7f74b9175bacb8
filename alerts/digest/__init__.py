"""The weekly sentiment digest: figures from SQL, charts, HTML + text, sent by SMTP.

`build_digest` queries a week; `compose` and `send` mail it; `preview_html` writes it for a browser.
"""

from __future__ import annotations

from alerts.digest.assemble import BrandDigest, Digest, build_digest
from alerts.digest.send import DigestError, compose, preview_html, send
from alerts.digest.week import Week, WeekFormatError

__all__ = [
    "BrandDigest",
    "Digest",
    "DigestError",
    "Week",
    "WeekFormatError",
    "build_digest",
    "compose",
    "preview_html",
    "send",
]
