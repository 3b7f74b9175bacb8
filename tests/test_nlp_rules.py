"""Rules around the models: language guards, a repeated charge, and the urgency scoring's
review-star verdict."""

from __future__ import annotations

import pytest

from listener.enums import Intent, Sentiment, Urgency
from listener.nlp import TextInput
from listener.nlp.charges import amounts, repeated_charge
from listener.nlp.keywords import Lexicon
from listener.nlp.language import LanguageIdentifier
from listener.nlp.urgency import Signals, TeamRules, named_critical_matter, score_urgency

CONFIGURED = ["en", "de", "fr", "it", "es", "pt", "hr", "ja"]


def test_a_language_in_its_own_script_is_named_not_forced_into_a_configured_one():
    identify = LanguageIdentifier(CONFIGURED).identify
    assert identify("التطبيق سهل والتوصيل كان سريع للإمارات، المصباح Glow رائع 👍") == "ar"
    assert identify("Где мой заказ? Уже две недели жду") == "ru"
    assert identify("Lumora Glow super") == "en"  # short Latin text stays among the configured
    assert identify("Naplatili ste mi dvaput istu narudžbu") == "hr"


def test_a_happy_five_star_review_is_low_even_if_the_model_says_high():
    level, _score, reasons = score_urgency(
        Signals(
            intent=Intent.PRAISE,
            scores={Sentiment.NEGATIVE: 0.02, Sentiment.NEUTRAL: 0.08, Sentiment.POSITIVE: 0.9},
            rating=5,
            model_urgency={
                Urgency.LOW: 0.05,
                Urgency.MEDIUM: 0.05,
                Urgency.HIGH: 0.85,
                Urgency.CRITICAL: 0.05,
            },
        )
    )
    assert level is Urgency.LOW
    assert "5-star positive review" in reasons


def test_stars_never_hide_a_safety_report():
    level, _score, _reasons = score_urgency(
        Signals(
            intent=Intent.SAFETY,
            scores={Sentiment.NEGATIVE: 0.2, Sentiment.NEUTRAL: 0.1, Sentiment.POSITIVE: 0.7},
            rating=5,
        )
    )
    assert level is Urgency.CRITICAL


def _delivery(model_urgency: dict[Urgency, float], churn_threat: bool = False):
    """A calm delivery mention (a worry, not yet a failure) scored with this urgency head."""
    return score_urgency(
        Signals(
            intent=Intent.DELIVERY,
            scores={Sentiment.NEGATIVE: 0.2, Sentiment.NEUTRAL: 0.7, Sentiment.POSITIVE: 0.1},
            churn_threat=churn_threat,
            model_urgency=model_urgency,
        )
    )


def _head(**probabilities: float) -> dict[Urgency, float]:
    """Urgency head probabilities: those named, the rest shared equally."""
    rest = (1 - sum(probabilities.values())) / (4 - len(probabilities))
    return {u: probabilities.get(u.label, rest) for u in Urgency}


def test_a_sure_urgency_head_takes_a_delivery_worry_down_to_medium_and_no_further():
    assert _delivery(_head(medium=0.1))[0] is Urgency.HIGH  # the rules alone: a delivery problem
    level, _score, reasons = _delivery(_head(medium=0.85))
    assert level is Urgency.MEDIUM
    assert reasons == ["delivery problem", "the model rates it medium (85%)"]
    assert _delivery(_head(medium=0.7))[0] is Urgency.HIGH  # not sure enough to lower
    assert _delivery(_head(low=0.95))[0] is Urgency.HIGH  # only a sure "medium" lowers
    assert _delivery(_head(medium=0.9), churn_threat=True)[0] is Urgency.HIGH


def test_a_sure_medium_never_lowers_a_keyword_named_critical_intent_or_a_viral_complaint():
    calm_negative = {Sentiment.NEGATIVE: 0.6, Sentiment.NEUTRAL: 0.3, Sentiment.POSITIVE: 0.1}

    def level(**signals) -> Urgency:
        base = {"scores": calm_negative, "model_urgency": _head(medium=0.95)}
        return score_urgency(Signals(**(base | signals)))[0]

    assert level(intent=Intent.BILLING_PAYMENT) is Urgency.MEDIUM
    assert level(intent=Intent.BILLING_PAYMENT, author_followers=120_000) is Urgency.CRITICAL
    # A legal threat its keywords name ("lawsuit"): the head's "medium" does not lower it.
    assert level(intent=Intent.LEGAL, critical_matter=Intent.LEGAL) is Urgency.CRITICAL


def test_a_critical_intent_no_keyword_names_pages_only_when_the_urgency_head_backs_it():
    """'The app asks for my password at every start': the intent head (or the ambiguous word
    "password") reads account security, but the urgency head, which learnt that login trouble
    is no takeover, finds critical unlikely: high, not a page."""
    annoyed = {Sentiment.NEGATIVE: 0.9, Sentiment.NEUTRAL: 0.08, Sentiment.POSITIVE: 0.02}

    def scored(**signals) -> tuple[Urgency, list[str]]:
        base = {"intent": Intent.ACCOUNT_SECURITY, "scores": annoyed}
        level, _score, reasons = score_urgency(Signals(**(base | signals)))
        return level, reasons

    level, reasons = scored(model_urgency=_head(critical=0.21, medium=0.7))
    assert level is Urgency.HIGH
    assert reasons[:2] == [
        "account or login problem",  # not "account takeover or fraud mentioned": no word did
        "the model finds it unlikely to be critical (21%)",
    ]
    # Backed: by the urgency head, or by an unambiguous keyword ("hacked"), whatever the head.
    assert scored(model_urgency=_head(critical=0.6))[0] is Urgency.CRITICAL
    takeover = {"critical_matter": Intent.ACCOUNT_SECURITY}
    assert scored(model_urgency=_head(critical=0.1), **takeover)[0] is Urgency.CRITICAL
    # Classifiers without an urgency head: their critical intents come from keywords.
    assert scored()[0] is Urgency.CRITICAL
    # A team's own keyword is never ambiguous: it names the matter, and the mention pages.
    team = Lexicon({"account_security": {"en": ["sim swap"]}})
    named = named_critical_matter(team.evidence("they did a sim swap on my number", "en"))
    assert named is Intent.ACCOUNT_SECURITY
    assert scored(model_urgency=_head(critical=0.1), critical_matter=named)[0] is Urgency.CRITICAL
    # Doubted, but a negative post by a big account is still a viral risk; the doubt is moot.
    viral = scored(model_urgency=_head(critical=0.2), author_followers=200_000)
    assert viral[0] is Urgency.CRITICAL
    assert not any(reason.startswith("the model finds it unlikely") for reason in viral[1])
    # Scored as a service problem: a head sure of "medium" calms it, angry or not ...
    sure_medium = _head(critical=0.02, medium=0.95)
    assert scored(model_urgency=sure_medium)[0] is Urgency.MEDIUM
    calm = {Sentiment.NEGATIVE: 0.3, Sentiment.NEUTRAL: 0.6, Sentiment.POSITIVE: 0.1}
    assert scored(scores=calm, model_urgency=sure_medium)[0] is Urgency.MEDIUM
    # ... and a happy 5-star review stays low, as one with a delivery intent does.
    happy = {Sentiment.NEGATIVE: 0.02, Sentiment.NEUTRAL: 0.08, Sentiment.POSITIVE: 0.9}
    assert scored(scores=happy, rating=5, model_urgency=_head(low=0.9))[0] is Urgency.LOW


def test_rules_given_an_urgency_head_read_the_critical_matter_themselves_if_not_told():
    """A caller with an urgency head that does not pass what the keywords named loses no
    keyword-named threat: the rules look the keywords up."""
    rules = TeamRules()
    angry = {Sentiment.NEGATIVE: 0.9, Sentiment.NEUTRAL: 0.08, Sentiment.POSITIVE: 0.02}
    doubting = _head(critical=0.1, high=0.6)

    def level(text: str) -> Urgency:
        item = TextInput(text, "en")
        return rules.prediction(item, angry, Intent.ACCOUNT_SECURITY, doubting).urgency

    assert level("someone hacked my account and ordered 3 phones") is Urgency.CRITICAL
    assert level("the app asks for my password every single time") is Urgency.HIGH


def test_the_urgency_head_alone_never_makes_a_mention_critical():
    angry = {Sentiment.NEGATIVE: 0.9, Sentiment.NEUTRAL: 0.05, Sentiment.POSITIVE: 0.05}

    def level(**signals) -> Urgency:
        base = {"intent": Intent.DELIVERY, "scores": angry, "model_urgency": _head(critical=0.95)}
        return score_urgency(Signals(**(base | signals)))[0]

    assert level() is Urgency.HIGH
    assert level(intent=Intent.OTHER) is Urgency.HIGH
    _level, _score, reasons = score_urgency(
        Signals(intent=Intent.OTHER, scores=angry, model_urgency=_head(critical=0.95))
    )
    assert reasons[-1] == "the model rates it high (97%)"  # at least high: P(high) + P(critical)
    assert level(intent=Intent.ACCOUNT_SECURITY) is Urgency.CRITICAL
    assert level(author_followers=120_000) is Urgency.CRITICAL  # a complaint that may go viral


PRAISING = {Sentiment.NEGATIVE: 0.05, Sentiment.NEUTRAL: 0.1, Sentiment.POSITIVE: 0.85}


def test_a_delivery_problem_an_intent_head_reads_through_praise_words_is_not_low():
    """'love that my next-day delivery is now on day 6 👏': the head saw the failure."""
    level, _score, reasons = score_urgency(
        Signals(intent=Intent.DELIVERY, scores=PRAISING, intent_by_model=True)
    )
    assert level is Urgency.MEDIUM
    assert "positive wording around the problem: possibly sarcastic" in reasons


def test_a_delivery_keyword_in_praise_stays_low():
    """'fast delivery, love it': keywords name delivery, nothing needs doing."""
    level, _score, reasons = score_urgency(Signals(intent=Intent.DELIVERY, scores=PRAISING))
    assert level is Urgency.LOW
    assert not any("sarcastic" in reason for reason in reasons)


def test_a_happy_review_stays_low_whatever_the_intent_head_read():
    level, _score, _reasons = score_urgency(
        Signals(intent=Intent.DELIVERY, scores=PRAISING, rating=5, intent_by_model=True)
    )
    assert level is Urgency.LOW


def test_praise_the_urgency_head_doubts_is_medium_not_low():
    """'Love the free light show 🔥 sparks shot out the base': praise words, but the urgency head
    gives a service failure a real chance, so the mention reaches the reply queue."""

    def praise(head: dict[Urgency, float], rating: int | None = None):
        return score_urgency(
            Signals(intent=Intent.PRAISE, scores=PRAISING, rating=rating, model_urgency=head)
        )

    assert praise(_head(low=0.9, high=0.05, critical=0.01))[0] is Urgency.LOW
    level, _score, reasons = praise(_head(low=0.78, medium=0.02, high=0.15))
    assert level is Urgency.MEDIUM
    assert reasons == ["the model finds it possibly high or worse (20%)"]  # high + critical
    assert praise(_head(low=0.8, medium=0.2))[0] is Urgency.LOW  # a possible medium is no doubt
    # The customer's own 5 stars outweigh the doubt, as they outweigh a sure head.
    level, _score, reasons = praise(_head(low=0.7, high=0.25), rating=5)
    assert level is Urgency.LOW
    assert reasons[-1] == "5-star positive review"


@pytest.mark.parametrize(
    ("text", "charged"),
    [
        ("Kontoauszug:\n03.11. KAFFEEHAUS 12,40\n03.11. KAFFEEHAUS 12,40\nEin Kaffee.", "12,40"),
        ("took £18.50 on Monday and £18.50 again on Tuesday", "18.50"),
        ("明細に¥2,980と¥2,980。注文は1回です", "2,980"),
        ("extrato: R$ 59,90 e R$ 59,90 no mesmo dia", "59,90"),
        ("خصموا ١٢٠ ر.س ثم 120 ر.س", "120"),  # Arabic-Indic digits too
        ("USD 1,240.50 / USD 1,240.50", "1,240.50"),
        ("cobraron US$ 12.50 y otra vez US$12.50", "12.50"),  # with a currency, not a time
        ("naplatili 12 eura, pa opet 12 eura", "12"),  # the currency written out
        ("642 रुपये कटे, फिर से 642 रुपये", "642"),
    ],
)
def test_an_amount_written_twice_is_a_repeated_charge(text, charged):
    assert repeated_charge(text) == charged


@pytest.mark.parametrize(
    "text",
    [
        "Lieferung um 10.30 angekündigt, um 10.30 war niemand da",  # times, not money
        "bestellt am 14.05.2026, geliefert am 14.05.2026",  # dates
        "12 kraljeva i 12 kraljica",  # "kr" starts a word: no currency
        "paid €20 for shipping and €25 for the box",  # two different amounts
        "3 realmente buenos, 3 realmente malos",  # a word that starts like a currency
        "version 2.10 crashes, 2.10 again",  # without a currency "2.10" may be a time
    ],
)
def test_times_dates_and_different_amounts_are_no_repeated_charge(text):
    assert repeated_charge(text) is None


def test_amounts_keep_thousands_and_read_spaces_inside_a_number_as_one():
    assert amounts("$ 12 000 y $\u00a012\u00a0000") == ["12 000", "12 000"]
    assert amounts("1.240,50 € und 9,99") == ["1.240,50", "9,99"]


NEUTRAL = {Sentiment.NEGATIVE: 0.1, Sentiment.NEUTRAL: 0.8, Sentiment.POSITIVE: 0.1}


def test_a_statement_pasted_twice_is_a_high_billing_problem_even_in_praise_words():
    """'so generous, you took £63.20 twice 🙃': no word says "charged twice", the amount does."""
    rules = TeamRules()
    statement = "Kontoauszug:\n03.11. KAFFEEHAUS 12,40\n03.11. KAFFEEHAUS 12,40\nEin Kaffee."
    for scores in (NEUTRAL, PRAISING):
        found = rules.prediction(TextInput(statement, "de"), scores, Intent.OTHER)
        assert (found.intent, found.urgency) == (Intent.BILLING_PAYMENT, Urgency.HIGH)
        assert "the same amount (12,40) twice: a double charge?" in found.reasons
    # A sure "medium" from the urgency head does not talk it down, as with a churn threat.
    head = {Urgency.LOW: 0.02, Urgency.MEDIUM: 0.9, Urgency.HIGH: 0.06, Urgency.CRITICAL: 0.02}
    found = rules.prediction(TextInput(statement, "de"), NEUTRAL, Intent.OTHER, head)
    assert found.urgency is Urgency.HIGH
    # A critical intent stays; a happy 5-star review stays praise.
    fraud = rules.prediction(TextInput(statement, "de"), NEUTRAL, Intent.ACCOUNT_SECURITY)
    assert (fraud.intent, fraud.urgency) == (Intent.ACCOUNT_SECURITY, Urgency.CRITICAL)
    review = TextInput("2 Tassen, 9,99 + 9,99, super Qualität", "de", rating=5)
    happy = rules.prediction(review, PRAISING, Intent.PRAISE)
    assert (happy.intent, happy.urgency) == (Intent.PRAISE, Urgency.LOW)


def test_a_critical_matter_named_in_kind_words_is_medium_not_low():
    """'Impeccable security ✨ someone got into my account last night': praise words, and the
    intent head reads praise, but a takeover named is never "nothing to do"."""
    rules = TeamRules()
    text = "Bravissimi, sicurezza impeccabile ✨ stanotte qualcuno è entrato nel mio account"
    evidence = rules.lexicon.evidence(text, "it")
    assert named_critical_matter(evidence) is Intent.ACCOUNT_SECURITY
    found = rules.prediction(TextInput(text, "it"), PRAISING, Intent.PRAISE, evidence=evidence)
    assert found.urgency is Urgency.MEDIUM
    assert found.intent is Intent.PRAISE  # a reply, not a page: the keywords did not stand
    assert "account takeover or fraud mentioned in calm or kind words" in found.reasons
    plain = "Bravissimi, consegna impeccabile ✨"
    assert named_critical_matter(rules.lexicon.evidence(plain, "it")) is None
    assert rules.prediction(TextInput(plain, "it"), PRAISING, Intent.PRAISE).urgency is Urgency.LOW
    review = TextInput(text, "it", rating=5)
    happy = rules.prediction(review, PRAISING, Intent.PRAISE, evidence=evidence)
    assert happy.urgency is Urgency.LOW
    # An ambiguous keyword alone ("password") names no critical matter.
    assert named_critical_matter(rules.lexicon.evidence("ho perso la password", "it")) is None


def test_a_long_run_of_digit_groups_is_read_in_one_pass():
    """'1 111 111 …' over 20,000 characters: each group could start a number with thousands, and
    with unbounded groups the scan took 5 s (quadratic); four groups at most keep it linear."""
    run = "1" + " 111" * 5000
    assert amounts(run) == []
    assert amounts(f"{run} €") == ["111 111 111 111 111"]  # the last groups before the €
