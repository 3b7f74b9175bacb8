"""A team's own per-language keywords (`model.keywords`) feed intent and urgency for every model."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
import yaml

from config.schema import EXAMPLE_CONFIG, ConfigError, KeywordGroup, ModelConfig, load_settings
from listener.enums import Intent, Urgency
from listener.nlp import TextInput, load_classifier
from listener.nlp.keywords import (
    KEYWORD_GROUPS,
    KeywordEvidence,
    Lexicon,
    builtin_fingerprint,
    builtin_lexicon,
)


def _baseline(keywords: dict) -> object:
    return load_classifier(ModelConfig(name="baseline", keywords=keywords))


def test_an_added_safety_word_makes_a_mention_critical():
    mention = TextInput("Is my kettle part of the recall?", "en")
    [before] = _baseline({}).classify([mention])
    [after] = _baseline({"safety": {"en": ["recall"]}}).classify([mention])

    assert before.intent is Intent.QUESTION
    assert after.intent is Intent.SAFETY
    assert after.urgency is Urgency.CRITICAL


def test_added_words_match_as_prefixes_and_ignore_case():
    lexicon = Lexicon({"legal": {"de": ["Rückruf"]}, "churn": {"fr": ["je file chez"]}})
    assert lexicon.intent("RÜCKRUFAKTION für den Wasserkocher?", "de") is Intent.LEGAL
    assert lexicon.churn_threat("Bon, je file chez le concurrent.", "fr")
    assert not lexicon.churn_threat("Je file chez le concurrent.", "de")  # only French texts


def test_built_in_words_stay_when_words_are_added():
    lexicon = Lexicon({"safety": {"en": ["recall"]}})
    assert lexicon.intent("the charger started to smoke", "en") is Intent.SAFETY


@pytest.mark.parametrize(
    "text",
    [
        "Der Heizlüfter riecht nach verschmortem Plastik, das Kabel ist ganz weich.",
        "Aus dem Netzteil qualmt es.",
        "Die Steckdosenleiste hat gekokelt und gequalmt.",
    ],
)
def test_a_smouldering_smell_is_a_hazard_in_german(text):
    assert Lexicon().intent(text, "de") is Intent.SAFETY


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("फोन में आग लग गई", Intent.SAFETY),
        ("mera phone overheat ho gaya aur smoke aaya", Intent.SAFETY),  # English words count
        ("मेरा अकाउंट हैक हो गया", Intent.ACCOUNT_SECURITY),
        ("पैसे दो बार कट गए", Intent.BILLING_PAYMENT),
        ("रिफंड अभी तक नहीं मिला", Intent.REFUND_RETURN),
        ("आगे से ध्यान रखना", Intent.OTHER),  # "आगे" (ahead) is not "आग लग" (caught fire)
        ("सूजी का हलवा", Intent.OTHER),  # semolina, not swelling
    ],
)
def test_hindi_keywords_in_devanagari_and_mixed_with_english(text, intent):
    assert Lexicon().intent(text, "hi") is intent


@pytest.mark.parametrize(
    ("text", "language", "intent"),
    [
        # Everyday words that a critical keyword used to open: each paged when negative.
        ("火曜に届く予定だった荷物がまだ届きません", "ja", Intent.DELIVERY),  # Tuesday, not fire
        ("Llevo de mal humor toda la semana, mi pedido no llega", "es", Intent.DELIVERY),
        ("No puedo descargar la factura de mi pedido", "es", Intent.BILLING_PAYMENT),  # download
        ("Iskreno, paket još nije stigao", "hr", Intent.DELIVERY),  # "honestly", not sparks
        ("Fiquei em choque com a demora da entrega", "pt", Intent.DELIVERY),  # shocked
        ("Le service à fondue est arrivé sans les fourchettes", "fr", Intent.OTHER),
        ("Die brandneue Jacke ist nie angekommen", "de", Intent.OTHER),
        ("the sparkly dress arrived damaged", "en", Intent.DAMAGED_DEFECTIVE),
        ("Die Lieferzeit betrug über zwei Stunden", "de", Intent.OTHER),  # betragen, not Betrug
        ("ピザが熱くなかった", "ja", Intent.OTHER),  # was not hot
        ("住所が不正確で届かない", "ja", Intent.DELIVERY),  # inaccurate
        ("L'avocat était pourri", "fr", Intent.OTHER),  # an avocado
        ("La fotocamera non mette a fuoco", "it", Intent.OTHER),  # focus
        ("Paket stigao iskrivljen", "hr", Intent.DELIVERY),  # bent
        ("Não conseguiram processar o pagamento", "pt", Intent.BILLING_PAYMENT),
        ("Fire TV stick stopped working", "en", Intent.DAMAGED_DEFECTIVE),
        ("المبلغ لسه ما دخل على حسابي", "ar", Intent.OTHER),  # a refund not in yet
        # The hazards themselves still are.
        ("充電器から火が出ました", "ja", Intent.SAFETY),
        ("El cargador empezó a echar humo", "es", Intent.SAFETY),
        ("Me dio una descarga eléctrica al enchufarlo", "es", Intent.SAFETY),
        ("Punjač je iskrio i udarila me struja", "hr", Intent.SAFETY),
        ("O carregador deu choque na minha mão", "pt", Intent.SAFETY),
        ("Le chargeur a fondu sur la table", "fr", Intent.SAFETY),
        ("Die Powerbank hat Feuer gefangen", "de", Intent.SAFETY),
        ("the charger sparked and went dark", "en", Intent.SAFETY),
        ("Das ist Betrug, ich wurde betrogen", "de", Intent.ACCOUNT_SECURITY),
        ("充電中に熱くなって怖い", "ja", Intent.SAFETY),
        ("カードを不正利用された", "ja", Intent.ACCOUNT_SECURITY),
        ("Je vais contacter mon avocat", "fr", Intent.LEGAL),
        ("Il caricatore è andato a fuoco", "it", Intent.SAFETY),
        ("Punjač iskri!", "hr", Intent.SAFETY),
        ("Vou processar vocês", "pt", Intent.LEGAL),
        ("The charger caught fire", "en", Intent.SAFETY),
        ("حد دخل على حسابي وغير كل حاجة", "ar", Intent.ACCOUNT_SECURITY),
        # "<account> was" opens a debited account as often as a taken-over one.
        ("Mein Konto wurde doppelt belastet", "de", Intent.BILLING_PAYMENT),
        ("Mon compte a été débité deux fois", "fr", Intent.BILLING_PAYMENT),
        ("Račun je pogrešan, naplatili ste mi dvaput", "hr", Intent.BILLING_PAYMENT),
        # A fraud in words other than "hacked".
        ("3 Zahlungen drin, die ich nicht kenne", "de", Intent.ACCOUNT_SECURITY),
        ("a minha conta foi acedida a partir do Brasil", "pt", Intent.ACCOUNT_SECURITY),
        ("netko mi je preuzeo racun i promijenio lozinku", "hr", Intent.ACCOUNT_SECURITY),
        ("il profilo falso chiede i dati della carta", "it", Intent.ACCOUNT_SECURITY),
        ("偽アカウントからDMが来ました", "ja", Intent.ACCOUNT_SECURITY),
        ("kupnja od 389 € koju nisam ja napravila", "hr", Intent.ACCOUNT_SECURITY),
        ("trocaram o e-mail da minha conta sem eu saber", "pt", Intent.ACCOUNT_SECURITY),
        ("₹18,500 transfer hua, OTP maine kisi ko nahi diya", "hi", Intent.ACCOUNT_SECURITY),
        # Legal words: the everyday ones are not, the threats are.
        ("Where is my order? Sue", "en", Intent.DELIVERY),  # a name, not a lawsuit
        ("no courtesy at all from your driver", "en", Intent.OTHER),
        ("I will sue you if this is not fixed", "en", Intent.LEGAL),
        ("das Gericht kam kalt an", "de", Intent.OTHER),  # a dish
        ("Wir sehen uns vor Gericht", "de", Intent.LEGAL),
        ("estoy ocupado, llamadme mañana", "es", Intent.OTHER),
        ("el consumo de batería es altísimo", "es", Intent.OTHER),
        ("hay mucha demanda esta semana", "es", Intent.OTHER),
        ("He puesto una reclamación en la OCU", "es", Intent.LEGAL),
        ("o processo de troca é lento", "pt", Intent.OTHER),
        ("a decoração chegou linda", "pt", Intent.OTHER),
        ("fiz queixa à DECO", "pt", Intent.LEGAL),
        # A chargeback is a legal threat in the labelling guide, in every language's loanword.
        ("se non mi rimborsate faccio chargeback", "it", Intent.LEGAL),
        ("返金がなければカードのチャージバックを申請します", "ja", Intent.LEGAL),
        ("لو ما رجعتوا فلوسي هعمل chargeback من البنك", "ar", Intent.LEGAL),
        ("Ich mache einen Chargeback bei der Bank", "de", Intent.LEGAL),  # lexicon.yaml's `any`
        # Flames in every language; a dish and "you call me" are not.
        ("the heater burst into flames", "en", Intent.SAFETY),
        ("der Akku stand plötzlich in Flammen", "de", Intent.SAFETY),
        ("la bougie a fait une flamme énorme", "fr", Intent.SAFETY),
        ("il ventilatore ha preso fiamme", "it", Intent.SAFETY),
        ("el cargador acabó en llamas", "es", Intent.SAFETY),
        ("o carregador ficou em chamas", "pt", Intent.SAFETY),
        ("punjač se zapalio usred noći", "hr", Intent.SAFETY),
        ("der Flammkuchen kam kalt an", "de", Intent.OTHER),  # a dish, not a fire
        ("me llamas cuando llegue", "es", Intent.OTHER),  # "you call me", not "flames"
    ],
)
def test_a_critical_keyword_names_only_what_it_means(text, language, intent):
    assert Lexicon().intent(text, language) is intent


def test_a_keyword_ending_in_a_dollar_is_a_whole_word():
    lexicon = Lexicon({"legal": {"en": ["acme board$"]}, "safety": {"ja": ["火$"]}})
    assert lexicon.intent("reported to the ACME board.", "en") is Intent.LEGAL
    assert lexicon.intent("the acme boardroom", "en") is Intent.OTHER
    assert lexicon.intent("火!", "ja") is Intent.SAFETY
    assert lexicon.intent("火曜", "ja") is Intent.OTHER


def test_a_devanagari_keyword_does_not_match_after_a_vowel_sign():
    # Python's \w leaves out Devanagari vowel signs: "जल" must not be found inside "बिजली".
    lexicon = Lexicon({"safety": {"hi": ["जल"]}})
    assert lexicon.intent("बिजली चली गई", "hi") is Intent.OTHER
    assert lexicon.intent("प्लग जल गया", "hi") is Intent.SAFETY


def test_the_evidence_counts_different_keywords_once_each():
    lexicon = Lexicon()
    assert lexicon.evidence("deals on fire, prices ON FIRE", "en") == [
        KeywordEvidence(Intent.SAFETY, 1)
    ]
    assert lexicon.evidence("it overheated and melted the socket", "en") == [
        KeywordEvidence(Intent.SAFETY, 2, ambiguous=1)
    ]
    assert lexicon.evidence("a mug", "en") == []


def test_the_evidence_names_every_intent_found_the_most_serious_first():
    found = Lexicon().evidence("forgot my password, and the refund never came", "en")

    assert [(e.intent, e.unambiguous, e.ambiguous) for e in found] == [
        (Intent.ACCOUNT_SECURITY, 0, 1),
        (Intent.REFUND_RETURN, 1, 0),
    ]


def test_every_language_of_a_critical_list_names_its_ambiguous_words():
    # A language missing from an ambiguous list would read the English one ("password" in
    # German): each is written out, [] for none.
    lexicon = Lexicon()
    for intent, section in lexicon.ambiguous.items():
        assert set(section) == set(builtin_lexicon()["intents"][intent]), intent


def test_an_ambiguous_word_still_names_its_intent_and_a_teams_word_is_never_ambiguous():
    lexicon = Lexicon({"account_security": {"en": ["password reset"]}})

    assert lexicon.intent("ordered toast, it came burnt", "en") is Intent.SAFETY
    [found] = lexicon.evidence("I never asked for a password reset", "en")
    assert (found.unambiguous, found.ambiguous) == (1, 0)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("the kitchen smells of burning", "en"),  # "burn" inside "burning smell"
        ("c'è puzza di bruciato dalla presa", "it"),
        ("充電器が焦げ臭い", "ja"),
    ],
)
def test_an_ambiguous_word_inside_a_keyword_is_not_counted_again(text, language):
    # Counted twice, one phrase would pass for two different keywords and page on its own.
    assert Lexicon().evidence(text, language) == [KeywordEvidence(Intent.SAFETY, 1)]


TAKEOVER = Intent.ACCOUNT_SECURITY


@pytest.mark.parametrize(
    ("text", "language", "evidence"),
    [
        # Someone else changed it: a takeover.
        ("someone changed my email and ordered two laptops", "en", (1, 0)),
        ("jemand hat meine E-Mail-Adresse geändert", "de", (1, 0)),
        ("quelqu'un a changé mon adresse mail", "fr", (1, 0)),
        ("mi hanno cambiato l'email dell'account", "it", (1, 0)),
        ("alguien cambió mi correo y no puedo entrar", "es", (1, 0)),
        ("trocaram meu email e fizeram compras", "pt", (1, 0)),
        ("netko mi je promijenio email i lozinku", "hr", (1, 1)),
        ("勝手にメールアドレスを変更されて、ログインできません", "ja", (1, 0)),
        ("حد غير الايميل بتاع حسابي", "ar", (1, 0)),
        ("kisi ne mera email change kar diya", "hi", (1, 0)),
        # Said without who did it: ambiguous, it counts only with the intent head's support.
        ("the email address on my account was changed", "en", None),
        ("my account's email was changed and I can't log in", "en", (0, 1)),
        ("تم تغيير البريد الإلكتروني في حسابي", "ar", (0, 1)),
        ("メールアドレスが変更されました", "ja", (0, 1)),
        # The customer changed it, or asks how to: no takeover.
        ("I changed the email on my account, where do receipts go now?", "en", None),
        ("Jučer sam promijenio email, gdje stižu računi?", "hr", None),
        ("ho cambiato l'email, ma le ricevute?", "it", None),
        ("メールアドレスが変更されないのですが", "ja", None),
        ("ممكن تغيروا الايميل بتاعي؟", "ar", None),
        ("maine email change kar diya, bill kahan aayega?", "hi", None),
    ],
)
def test_an_email_changed_by_someone_else_names_a_takeover(text, language, evidence):
    found = {e.intent: (e.unambiguous, e.ambiguous) for e in Lexicon().evidence(text, language)}
    assert found.get(TAKEOVER) == evidence


def test_a_language_the_lexicon_lacks_keeps_its_english_fallback():
    # Texts in a language without built-in words are read with the English list; adding words
    # for that language extends what it read, instead of replacing English with one word.
    lexicon = Lexicon({"safety": {"sw": ["moto"]}})
    assert lexicon.intent("chaja ilishika moto", "sw") is Intent.SAFETY
    assert lexicon.intent("the charger caught fire", "sw") is Intent.SAFETY


def test_the_stored_version_says_which_added_words_were_in_force():
    plain = _baseline({})
    first = _baseline({"safety": {"en": ["recall"]}})
    second = _baseline({"safety": {"en": ["recall", "choking"]}})
    assert plain.version == f"1@{builtin_fingerprint()}"
    assert first.version.startswith("1+keywords:")
    assert len({plain.version, first.version, second.version}) == 3


def test_every_keyword_group_of_the_lexicon_is_accepted_by_the_config():
    assert set(get_args(KeywordGroup)) == set(KEYWORD_GROUPS)


def _config_with(tmp_path: Path, keywords: object) -> Path:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["model"]["keywords"] = keywords
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_the_config_reads_keywords_per_intent_and_language(tmp_path):
    path = _config_with(tmp_path, {"safety": {"en": [" recall "]}, "churn": {"de": ["kündige"]}})
    settings = load_settings(path)
    assert settings.model.keywords == {"safety": {"en": ["recall"]}, "churn": {"de": ["kündige"]}}


def test_bad_keyword_entries_are_reported_with_their_paths(tmp_path):
    path = _config_with(
        tmp_path,
        {"refunds": {"en": ["money back"]}, "safety": {"english": ["recall"], "de": [""]}},
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    paths = {problem.path for problem in caught.value.problems}
    assert paths == {
        "model.keywords.refunds",
        "model.keywords.safety.english",
        "model.keywords.safety.de[0]",
    }
    assert "refund_return" in str(caught.value)  # the message lists the groups that exist


def test_an_edit_of_the_built_in_lexicon_is_a_new_baseline_version(tmp_path, monkeypatch):
    from listener.nlp import keywords
    from listener.nlp.baseline import BaselineClassifier

    shipped = BaselineClassifier().version
    edited = tmp_path / "lexicon.yaml"
    edited.write_text(keywords.LEXICON.read_text(encoding="utf-8") + "\n# one more line\n")
    monkeypatch.setattr(keywords, "LEXICON", edited)
    builtin_fingerprint.cache_clear()
    try:
        assert BaselineClassifier().version != shipped
    finally:
        builtin_fingerprint.cache_clear()


def test_an_edit_of_the_rule_code_is_a_new_baseline_version(tmp_path, monkeypatch):
    """A release that changes how levels are scored (a new rule in urgency.py) stores results
    under a new version, though no weight and no keyword changed."""
    import shutil

    from listener.nlp import keywords
    from listener.nlp.baseline import BaselineClassifier

    shipped = BaselineClassifier().version
    code = tmp_path / "nlp"
    code.mkdir()
    for module in keywords.RULES_CODE.glob("*.py"):
        shutil.copy(module, code)
    monkeypatch.setattr(keywords, "RULES_CODE", code)
    builtin_fingerprint.cache_clear()
    try:
        assert BaselineClassifier().version == shipped  # the same code, copied
        rules = code / "urgency.py"
        rules.write_bytes(rules.read_bytes().replace(b"\n", b"\r\n"))
        builtin_fingerprint.cache_clear()
        assert BaselineClassifier().version == shipped  # the same code, checked out with CRLF
        rules.write_text(rules.read_text(encoding="utf-8") + "\nMODEL_DOUBT = 0.1\n")
        builtin_fingerprint.cache_clear()
        assert BaselineClassifier().version != shipped
    finally:
        builtin_fingerprint.cache_clear()
