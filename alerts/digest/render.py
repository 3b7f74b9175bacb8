"""The digest as HTML (jinja2, autoescaped: every mention text is untrusted) and as plain text."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from alerts.digest.assemble import Digest
from alerts.digest.complaints import intent_label, language_name
from alerts.digest.figures import Headline
from alerts.rules import UNATTRIBUTED
from alerts.sinks import printable

MINUTE = 60


def count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%"


def points(value: float | None) -> str:
    return "–" if value is None else f"{value:+.0f}"


def duration(seconds: float | None) -> str:
    """`12 min`, `3 h 05 min`, `2 d 4 h` (to the nearest minute: SQLite's julianday is a float)."""
    if seconds is None:
        return "–"
    minutes = round(max(seconds, 0) / MINUTE)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes // (24 * 60)} d {minutes % (24 * 60) // 60} h"


def change(now: float | None, before: float | None, kind: str) -> str:
    """The change against last week, in the unit that reads naturally for `kind`."""
    if now is None or before is None:
        return "–"
    diff = now - before
    if kind == "count":
        relative = f" ({diff / before:+.0%})" if before else ""
        return f"{diff:+,.0f}{relative}"
    if kind == "share":
        return f"{diff:+.1f} pts"
    if kind == "points":
        return f"{diff:+.0f}"
    sign = "+" if diff >= 0 else "−"
    return sign + duration(abs(diff))


def link(url: str | None) -> str | None:
    """Only http(s) URLs become links: `javascript:` and the like in a stored URL stay text."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def clean(text: str | None) -> str:
    """Untrusted text with control and bidi characters made visible (escaping is jinja's job)."""
    return printable(text or "")


def headline_rows(now: Headline, before: Headline) -> list[tuple[str, str, str, str]]:
    """(figure, this week, last week, change) for the headline table."""
    rows = []
    for label, attribute, show, kind in (
        ("Mentions", "mentions", count, "count"),
        ("Share negative", "share_negative", percent, "share"),
        ("Net sentiment (positive − negative, pts)", "net_sentiment", points, "points"),
        ("Urgent items (high or critical)", "urgent", count, "count"),
        ("Drafts approved", "approved", count, "count"),
        ("Drafts edited, then approved", "edited", count, "count"),
        ("Drafts rejected", "rejected", count, "count"),
        ("Median time to first draft", "median_to_draft_s", duration, "duration"),
        ("Median time to approval", "median_to_approval_s", duration, "duration"),
    ):
        a, b = getattr(now, attribute), getattr(before, attribute)
        rows.append((label, show(a), show(b), change(a, b, kind)))
    return rows


def _environment() -> Environment:
    """`.html` templates are autoescaped; the plain-text one is not (it is not markup)."""
    env = Environment(
        loader=PackageLoader("alerts.digest", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        count=count,
        percent=percent,
        points=points,
        duration=duration,
        link=link,
        clean=clean,
        language=language_name,
        spike=lambda what: "all mentions" if what == "all" else f"negative: {intent_label(what)}",
    )
    env.globals.update(headline_rows=headline_rows, UNATTRIBUTED=UNATTRIBUTED)
    return env


_TEMPLATES = _environment()


def render_html(digest: Digest, image_src: Callable[[str], str], charts: dict[str, bytes]) -> str:
    """`image_src(name)` gives chart `name`'s `src`: a `cid:` URL in mail, data: in previews."""
    images = {name: image_src(name) for name in charts}
    return _TEMPLATES.get_template("digest.html").render(digest=digest, images=images)


def render_text(digest: Digest) -> str:
    return _TEMPLATES.get_template("digest.txt").render(digest=digest)


def subject(digest: Digest) -> str:
    parts = []
    for brand in digest.brands:
        if brand.brand == UNATTRIBUTED:
            continue
        share = percent(brand.current.share_negative)
        parts.append(f"{brand.brand}: {brand.current.mentions:,} mentions, {share} negative")
    if digest.empty:
        parts = ["no mentions"]
    return f"Weekly sentiment digest {digest.week.label}: " + "; ".join(parts)
