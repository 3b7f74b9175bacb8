"""The soak benchmark's synthetic feed: realistic mentions in 8 languages, as replay JSONL.

Texts combine per-language templates (complaints, questions, praise) with fragments (products,
order numbers, emoji), plus the bundled demo feed's texts; a share are cross-posts of an earlier
text on another platform, spam, hostile markup (Slack control sequences, HTML, zero-width and
bidi characters), and store reviews with star ratings. Deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from listener.textfiles import read_lines

FEED = Path(__file__).resolve().parent.parent / "listener" / "data" / "demo_feed.jsonl"
LANGUAGES = ("en", "de", "fr", "it", "es", "pt", "hr", "ja")
PRODUCTS = ("Lumora Glow", "Lumora PowerCube", "Lumora AirPure", "Lumora SmartPlug")
SOCIAL = ("twitter", "reddit", "mastodon", "bluesky", "youtube", "hackernews")
STORES = ("appstore", "googleplay", "trustpilot")
EMOJI = ("", "", "", " 😡", " 🙏", " 👍", " 😤", " ❤️", " 🤷")
# (template, star rating a review with this text would carry)
TEMPLATES: dict[str, list[tuple[str, int]]] = {
    "en": [
        ("Where is my order {order}? Still waiting after {days} days, ridiculous", 1),
        ("My {product} stopped working after a week, I want a refund", 1),
        ("{product} arrived broken, the box was crushed. How do I return it?", 2),
        ("You charged my card twice for order {order}, please fix this", 1),
        ("The {product} overheated and started smoking, my kid almost got burned!", 1),
        ("Does the {product} work with 110V? Thinking of buying one", 4),
        ("Love my new {product}, delivery was fast and support was lovely", 5),
        ("Someone hacked my Lumora account and placed an order with my card", 1),
    ],
    "de": [
        ("Wo bleibt meine Bestellung {order}? Warte schon seit {days} Tagen", 1),
        ("Mein {product} ist nach einer Woche kaputt, ich will mein Geld zurück", 1),
        ("{product} kam beschädigt an. Wie kann ich es zurückschicken?", 2),
        ("Sie haben meine Karte doppelt belastet für Bestellung {order}", 1),
        ("Der {product} ist überhitzt und hat geraucht! Gefährlich!", 1),
        ("Funktioniert der {product} auch mit Alexa? Überlege ihn zu kaufen", 4),
        ("Super zufrieden mit dem {product}, schnelle Lieferung, danke!", 5),
    ],
    "fr": [
        ("Où est ma commande {order} ? J'attends depuis {days} jours", 1),
        ("Mon {product} ne marche plus après une semaine, je veux un remboursement", 1),
        ("{product} reçu cassé, comment le retourner ?", 2),
        ("Vous avez débité ma carte deux fois pour la commande {order}", 1),
        ("Le {product} a surchauffé et a fumé, c'est dangereux !", 1),
        ("Le {product} est-il compatible avec Google Home ?", 4),
        ("J'adore mon {product}, livraison rapide, merci !", 5),
    ],
    "it": [
        ("Dov'è il mio ordine {order}? Aspetto da {days} giorni", 1),
        ("Il mio {product} non funziona più dopo una settimana, voglio il rimborso", 1),
        ("{product} arrivato rotto, come faccio il reso?", 2),
        ("Mi avete addebitato due volte l'ordine {order}", 1),
        ("Ho contattato il mio avvocato per il rimborso del {product}, ora basta", 1),
        ("Il {product} funziona con la corrente a 110V?", 4),
        ("Adoro il mio {product}, consegna velocissima!", 5),
    ],
    "es": [
        ("¿Dónde está mi pedido {order}? Llevo {days} días esperando", 1),
        ("Mi {product} dejó de funcionar en una semana, quiero el reembolso", 1),
        ("El {product} llegó roto, ¿cómo lo devuelvo?", 2),
        ("Me cobrasteis dos veces el pedido {order}", 1),
        ("El {product} se sobrecalentó y echó humo, ¡peligroso!", 1),
        ("¿El {product} funciona con Alexa?", 4),
        ("Me encanta el {product}, llegó en 48h 👌", 5),
    ],
    "pt": [
        ("Cadê meu pedido {order}? Esperando há {days} dias", 1),
        ("Meu {product} parou de funcionar em uma semana, quero reembolso", 1),
        ("O {product} chegou quebrado, como faço a devolução?", 2),
        ("Vocês cobraram duas vezes o pedido {order} no meu cartão", 1),
        ("O {product} superaqueceu e soltou fumaça, perigoso!", 1),
        ("O {product} funciona em 220V?", 4),
        ("Adorei o {product}, entrega rápida, obrigado!", 5),
    ],
    "hr": [
        ("Gdje je moja narudžba {order}? Čekam već {days} dana", 1),
        ("Moj {product} ne radi nakon tjedan dana, želim povrat novca", 1),
        ("{product} je stigao oštećen, kako ga vratiti?", 2),
        ("Naplatili ste mi dvaput narudžbu {order}, molim povrat novca", 1),
        ("{product} se pregrijao i počeo dimiti, opasno!", 1),
        ("Radi li {product} s Google Home?", 4),
        ("Oduševljen sam s {product}, brza dostava, hvala!", 5),
    ],
    "ja": [
        ("注文{order}がまだ届きません。{days}日も待っています", 1),
        ("{product}が一週間で壊れました。返金してください", 1),
        ("{product}が壊れた状態で届きました。返品方法を教えてください", 2),
        ("注文{order}で二重に請求されています", 1),
        ("{product}が過熱して煙が出ました。危ないです！", 1),
        ("{product}はAlexaに対応していますか？", 4),
        ("{product}とても便利です。最高！", 5),
    ],
}
# An order reference makes most texts unique, as real posts are; repeats are then cross-posts.
ORDER_REFS = {
    "en": " (order {order})", "de": " (Bestellung {order})", "fr": " (commande {order})",
    "it": " (ordine {order})", "es": " (pedido {order})", "pt": " (pedido {order})",
    "hr": " (narudžba {order})", "ja": "（注文{order}）",
}  # fmt: skip
CLOSERS: dict[str, tuple[str, ...]] = {
    "en": (" Any update?", " Third time asking.", " @LumoraHelp"),
    "de": (" Gibt es Neuigkeiten?", " Schon zum dritten Mal!"),
    "fr": (" Des nouvelles ?", " Troisième relance !"),
    "it": (" Novità?", " Terza volta che scrivo!"),
    "es": (" ¿Alguna novedad?", " ¡Tercera vez que escribo!"),
    "pt": (" Alguma novidade?", " Terceira vez que escrevo!"),
    "hr": (" Ima li novosti?", " Pišem već treći put!"),
    "ja": ("　何か進展はありますか？", "　三回目の問い合わせです。"),
}
SPAM = (
    "🔥🔥 Cheap followers + Lumora promo codes 90% OFF!!! DM me or visit http://spam.example/{n}",
    "Win a free Lumora Glow!!! Click http://giveaway.example/{n} now 🎁🎁🎁",
)
HOSTILE = (
    "<!channel> Lumora order {order} never came <@U0BOSS> see <https://evil.example|lumora.com>",
    "<script>alert('lumora')</script> my {product} ({order}) is broken &amp; nobody answers",
    "Lumora\u200b\u200d refund\u202e{order}\u202c please *bold* _it_ ~strike~ `code` > quote",
    "<img src=x onerror=alert(1)> {product} {order} broke **again** [x](javascript:alert(1))",
)


def demo_texts() -> list[tuple[str, str | None]]:
    """(text, language) of the bundled demo feed."""
    records = [json.loads(line) for line in read_lines(FEED) if line]
    return [(r["text"], r.get("lang")) for r in records if r.get("lang") in (None, *LANGUAGES)]


class FeedWriter:
    """Writes `count` mentions to a JSONL file and counts what kinds it wrote."""

    def __init__(self, seed: int = 8) -> None:
        self.rng = random.Random(seed)  # noqa: S311  (test data, not cryptography)
        self.demo = demo_texts()
        self.kinds: Counter[str] = Counter()
        self.recent: list[tuple[str, str]] = []  # (text, author) of posts to copy

    def record(self, n: int, created: datetime) -> dict:
        rng = self.rng
        roll = rng.random()
        lang: str | None = rng.choice(LANGUAGES)
        source, rating = rng.choice(SOCIAL), None
        fill = {
            "order": f"LM-{rng.randrange(10**6, 10**7)}",
            "days": rng.randrange(3, 30),
            "product": rng.choice(PRODUCTS),
            "n": n,
        }
        original_author = ""
        if roll < 0.04 and self.recent:
            kind, (text, original_author) = "cross_post", rng.choice(self.recent)
            lang = None
        elif roll < 0.07:
            kind, text, lang = "spam", rng.choice(SPAM).format(**fill), "en"
        elif roll < 0.09:
            kind, text, lang = "hostile", rng.choice(HOSTILE).format(**fill), None
        elif roll < 0.21:
            kind = "demo"
            text, lang = rng.choice(self.demo)
            text = f"{text} #{n}"  # each demo text once; a repeat would be a cross-post
        else:
            template, stars = rng.choice(TEMPLATES[lang or "en"])
            language = lang or "en"
            if "{order}" not in template and rng.random() < 0.97:
                template += ORDER_REFS[language]
            if rng.random() < 0.5:
                template += rng.choice(CLOSERS[language])
            text = template.format(**fill) + rng.choice(EMOJI)
            kind = "template"
            if rng.random() < 0.25:
                kind, source = "review", rng.choice(STORES)
                rating = max(1, min(5, stars + rng.choice((-1, 0, 0, 1))))
        self.kinds[kind] += 1
        if kind == "cross_post":
            source = rng.choice(SOCIAL)
        author = original_author or f"user{rng.randrange(20_000)}"  # a cross-post: the same one
        if kind in ("template", "review") and len(text) >= 40:
            self.recent = [*self.recent, (text, author)][-200:]
        record = {
            "id": f"soak-{n}",
            "source": source,
            "author": author,
            "author_followers": int(rng.paretovariate(1.2) * 50),
            "created_at": created.isoformat(),
            "url": f"https://example.com/{source}/{n}",
            "text": text,
        }
        if lang:
            record["lang"] = lang
        if rating is not None:
            record["rating"] = rating
        return record

    def write(self, path: Path, count: int, now: datetime | None = None) -> Path:
        """`count` mentions, oldest first, spread evenly over the week before `now`."""
        now = now or datetime.now(UTC)
        start = now - timedelta(days=7)
        step = timedelta(days=7) / max(count, 1)
        with path.open("w", encoding="utf-8") as out:
            for n in range(count):
                record = self.record(n, start + step * n)
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return path
