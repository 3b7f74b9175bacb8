"""Alert routing: which channels hear about a classified mention, and the alert's wording."""

from __future__ import annotations

from dataclasses import dataclass

from config.schema import AlertRoute, Settings
from listener.brands import brand_of
from listener.enums import Urgency
from listener.models import Classification, Mention

EXCERPT_CHARS = 500
UNATTRIBUTED = "(no brand named)"  # several brands configured, the mention names none


@dataclass(frozen=True)
class AlertDraft:
    key: str
    channel: str
    level: str
    title: str
    body: str
    notify: str | None


def _matches(route: AlertRoute, mention: Mention, c: Classification, brand: str | None) -> bool:
    return (
        Urgency.parse(c.urgency) >= route.urgency_floor
        and (not route.sentiments or c.sentiment in route.sentiments)
        and (not route.sources or mention.collector in route.sources)
        and (not route.languages or c.language in route.languages)
        and (not route.brands or brand in route.brands)
    )


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def alerts_for(
    mention: Mention, c: Classification, settings: Settings, occasion: str = ""
) -> list[AlertDraft]:
    """One alert per matching route's channel; cross-posts were alerted on with their original.

    `occasion` names a later alert about the same mention (e.g. "viral" when a complaint
    escalated after it was routed), so its idempotency key differs from the first one's.
    Texts are stored raw; each sink escapes them for its own medium.
    """
    if mention.duplicate_of_id is not None:
        return []
    brand = brand_of(mention, settings)
    author = f"@{mention.author_handle}" if mention.author_handle else "unknown author"
    reach = f", {mention.author_followers:,} followers" if mention.author_followers else ""
    reach += f", {mention.engagement:,} reactions" if mention.engagement else ""
    rating = f", {mention.rating}★" if mention.rating else ""
    title = f"{c.urgency.upper()} {c.intent.replace('_', ' ')} on {mention.source} ({c.language})"
    body = "\n".join(
        line
        for line in (
            f"{author}{reach}{rating} · sentiment {c.sentiment}",
            _excerpt(mention.text),
            "Why: " + "; ".join(c.urgency_reasons) if c.urgency_reasons else "",
            mention.url or "",
        )
        if line
    )
    drafts: dict[str, AlertDraft] = {}
    for route in settings.slack.routes:
        if route.channel in drafts or not _matches(route, mention, c, brand):
            continue
        drafts[route.channel] = AlertDraft(
            key=f"mention:{mention.id}:{route.channel}" + (f":{occasion}" if occasion else ""),
            channel=route.channel,
            level=c.urgency,
            title=title,
            body=body,
            notify=route.notify,
        )
    return list(drafts.values())
