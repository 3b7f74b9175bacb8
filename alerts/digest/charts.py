"""The digest's charts as PNG bytes: matplotlib's Agg renderer, no pyplot, no display needed."""

from __future__ import annotations

import io

from matplotlib.figure import Figure

from alerts.digest.assemble import SENTIMENTS, BrandDigest, Digest
from alerts.digest.complaints import language_name
from alerts.digest.figures import UNCLASSIFIED

COLOURS = {
    "negative": "#d64541",
    "neutral": "#a0a4a8",
    "positive": "#3a9e5f",
    UNCLASSIFIED: "#dfe3e6",
}
LANGUAGES_SHOWN = 10
SOURCES_SHOWN = 10
SIZE = (6.4, 2.8)
DPI = 100


def _label(text: str) -> str:
    """Untrusted labels (source names) must not switch matplotlib into mathtext with `$`."""
    return text.replace("$", r"\$")


def _png(figure: Figure) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _order(series: dict[str, object]) -> list[str]:
    return [name for name in (*SENTIMENTS, UNCLASSIFIED) if name in series]


def daily_volume(brand: BrandDigest, digest: Digest) -> bytes:
    figure = Figure(figsize=SIZE)
    axes = figure.subplots()
    days = [f"{day:%a %d}" for day in digest.week.days]
    bottom = [0] * 7
    for name in _order(brand.daily):
        values = brand.daily[name]
        axes.bar(days, values, bottom=bottom, label=name, color=COLOURS[name])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set_ylim(0, max(*bottom, 1) * 1.3)  # room for the legend above the bars
    axes.set_title("Mentions per day by sentiment", fontsize=10)
    axes.legend(fontsize=8, frameon=False, ncol=4, loc="upper left")
    axes.tick_params(labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def by_language(brand: BrandDigest) -> bytes:
    totals = {lang: sum(counts.values()) for lang, counts in brand.by_language.items()}
    languages = sorted(totals, key=lambda lang: (-totals[lang], lang))[:LANGUAGES_SHOWN][::-1]
    names = {s for counts in brand.by_language.values() for s in counts}
    figure = Figure(figsize=(SIZE[0], 0.9 + 0.28 * len(languages)))
    axes = figure.subplots()
    labels = [_label(f"{language_name(lang)} ({lang})") for lang in languages]
    left = [0.0] * len(languages)
    for name in _order(dict.fromkeys(names)):
        shares = [
            100 * brand.by_language[lang].get(name, 0) / totals[lang] if totals[lang] else 0
            for lang in languages
        ]
        axes.barh(labels, shares, left=left, label=name, color=COLOURS.get(name, "#888"))
        left = [a + b for a, b in zip(left, shares, strict=True)]
    for index, lang in enumerate(languages):
        axes.text(101, index, f"{totals[lang]:,}", va="center", fontsize=7)
    axes.set_xlim(0, 112)
    axes.set_title("Sentiment by language (% of mentions; count at right)", fontsize=10)
    axes.legend(fontsize=8, frameon=False, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.1))
    axes.tick_params(labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def by_source(brand: BrandDigest) -> bytes:
    ranked = sorted(brand.by_source.items(), key=lambda item: (-item[1], item[0]))
    shown = ranked[:SOURCES_SHOWN]
    if len(ranked) > SOURCES_SHOWN:
        shown.append(("other sources", sum(count for _name, count in ranked[SOURCES_SHOWN:])))
    shown = shown[::-1]
    figure = Figure(figsize=(SIZE[0], 0.8 + 0.28 * len(shown)))
    axes = figure.subplots()
    axes.barh([_label(name) for name, _count in shown], [c for _n, c in shown], color="#4a6fa5")
    axes.bar_label(axes.containers[0], labels=[f"{c:,}" for _n, c in shown], fontsize=7, padding=2)
    axes.set_title("Mentions by source", fontsize=10)
    axes.tick_params(labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def draw_charts(digest: Digest) -> dict[str, bytes]:
    """`b<index>-daily`, `-languages`, `-sources` for every brand with mentions this week."""
    charts: dict[str, bytes] = {}
    for index, brand in enumerate(digest.brands):
        if not brand.current.mentions:
            continue
        charts[f"b{index}-daily"] = daily_volume(brand, digest)
        charts[f"b{index}-languages"] = by_language(brand)
        charts[f"b{index}-sources"] = by_source(brand)
    return charts
