"""The default transformer classifier through its stable CLI contracts."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from config.schema import EXAMPLE_CONFIG
from listener.cli import app

runner = CliRunner()
MENTIONS = [
    {"id": "a", "text": "I love my new lamp, best purchase this year!", "lang": "en"},
    {"id": "b", "text": "Mein Ladegerät hat geraucht und ist geschmolzen, gefährlich!"},
    {
        "id": "c",
        "text": "Où est mon colis ? Toujours rien après deux semaines.",
        "rating": 1,
        "source": "trustpilot",
    },
    {"id": "d", "text": "Netko mi je hakirao račun i promijenio lozinku", "author_followers": 90},
]


@pytest.fixture
def e5_config(tmp_path, encoder_dir):
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["model"]["name"] = "e5-heads"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_classify_writes_the_documented_shape(tmp_path, e5_config):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(m, ensure_ascii=False) + "\n" for m in MENTIONS))
    target = tmp_path / "out.jsonl"

    result = runner.invoke(
        app, ["classify", "--input", str(source), "--output", str(target), "-c", str(e5_config)]
    )

    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    assert [r["language"] for r in rows] == ["en", "de", "fr", "hr"]
    for row in rows:
        scores = row["sentiment"]["scores"]
        assert set(scores) == {"negative", "neutral", "positive"}
        assert abs(sum(scores.values()) - 1) < 1e-3
        assert row["sentiment"]["label"] == max(scores, key=scores.get)
        assert row["urgency"]["level"] in {"low", "medium", "high", "critical"}
        assert isinstance(row["urgency"]["reasons"], list)
        assert row["intent"]
    assert rows[0]["sentiment"]["label"] == "positive"
    assert rows[2]["sentiment"]["label"] == "negative"


def test_classify_rejects_lines_without_text(tmp_path, e5_config):
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "1"}\n')
    result = runner.invoke(
        app,
        ["classify", "--input", str(source), "--output", str(tmp_path / "o"), "-c", str(e5_config)],
    )
    assert result.exit_code == 2
    assert f"{source} line 1: missing 'text' (a string); fix or remove the line" in result.output


def test_classify_keeps_a_mention_whole_whatever_separators_its_text_holds(tmp_path):
    # A spreadsheet export with a byte-order mark and CRLF, and a text with a raw U+2028 (which
    # json.dumps(..., ensure_ascii=False) writes as is): two mentions in, two out.
    records = [
        {"id": "sep", "text": "Paket nicht da.\u2028Bitte melden!", "lang": "de"},
        {"id": "nel", "text": "Colis jamais reçu\x85remboursez-moi", "lang": "fr"},
    ]
    source = tmp_path / "in.jsonl"
    lines = "\r\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    source.write_bytes(b"\xef\xbb\xbf" + lines.encode())
    target = tmp_path / "out.jsonl"

    result = runner.invoke(app, ["classify", "--input", str(source), "--output", str(target)])

    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in target.read_text().split("\n") if line] == [
        "sep",
        "nel",
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("engagement", "many", "'engagement' must be a whole number or null, got 'many'"),
        ("author_followers", 1.5, "'author_followers' must be a whole number or null, got 1.5"),
        ("rating", 6, "'rating' must be 1-5, got 6"),
        ("rating", "6", "'rating' must be 1-5, got 6"),
        ("engagement", -3, "'engagement' counts people or reactions, so it cannot be negative"),
        ("lang", 5, """'lang' must be a language tag such as "en" or "pt-BR" or null, got 5"""),
        ("source", ["x"], """'source' must be a platform such as "twitter" or null, got ['x']"""),
    ],
)
def test_classify_rejects_counts_and_tags_it_cannot_read(tmp_path, field, value, message):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "1", "text": "hi", field: value}) + "\n")
    result = runner.invoke(
        app, ["classify", "--input", str(source), "--output", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert f"line 1: {message}" in result.output


def test_classify_reads_counts_written_as_strings_or_whole_floats(tmp_path):
    # What spreadsheet exports write: "250000" and 1.0 for the numbers 250000 and 1.
    record = {
        "id": "1",
        "text": "Worst shop ever, my order never came and nobody answers.",
        "lang": "en",
        "author_followers": "250000",
        "rating": 1.0,
    }
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(record) + "\n")
    target = tmp_path / "out.jsonl"

    result = runner.invoke(app, ["classify", "--input", str(source), "--output", str(target)])

    assert result.exit_code == 0, result.output
    [row] = [json.loads(line) for line in target.read_text().splitlines()]
    assert row["urgency"]["level"] == "critical"
    assert "1-star review" in row["urgency"]["reasons"]
    assert any("250,000 followers" in reason for reason in row["urgency"]["reasons"])


def test_eval_sentiment_prints_and_writes_the_report(tmp_path, e5_config):
    data = tmp_path / "umsab"
    examples = {
        "english": ["I hate this, worst service ever", "It is a phone", "Absolutely love it!"],
        "italian": ["Servizio pessimo, mai più", "È un telefono", "Lo adoro, fantastico!"],
    }
    for language, texts in examples.items():
        (data / language).mkdir(parents=True)
        (data / language / "test_text.txt").write_text("\n".join(texts) + "\n")
        (data / language / "test_labels.txt").write_text("0\n1\n2\n")
    report_file = tmp_path / "report.json"

    result = runner.invoke(
        app,
        [
            "eval",
            "sentiment",
            "--data",
            str(data),
            "--split",
            "test",
            "--json",
            str(report_file),
            "-c",
            str(e5_config),
        ],
    )

    assert result.exit_code == 0, result.output
    assert "average" in result.output
    report = json.loads(report_file.read_text())
    assert set(report["languages"]) == {"english", "italian"}
    for row in report["languages"].values():
        assert set(row) == {"macro_f1", "accuracy", "n"}
        assert 0.0 <= row["macro_f1"] <= 1.0
        assert row["n"] == 3
    assert 0.0 <= report["average_macro_f1"] <= 1.0


@pytest.mark.parametrize(
    ("files", "split", "message"),
    [
        ({}, "test", "no <language>/test_text.txt files under"),
        ({"test_text.txt": "a\nb\n"}, "test", "has no test_labels.txt beside it"),
        ({"test_text.txt": "a\nb\n", "test_labels.txt": "0\n"}, "test", "2 texts but 1 labels"),
        ({"test_text.txt": "a\n", "test_labels.txt": "positive\n"}, "test", "got 'positive'"),
        ({"val_text.txt": "a\n", "val_labels.txt": "0\n"}, "test", "check --data and --split"),
    ],
)
def test_eval_sentiment_names_what_is_wrong_with_the_data(tmp_path, files, split, message):
    """Checked before the model loads: a wrong path costs no minutes and shows no traceback."""
    language = tmp_path / "umsab" / "english"
    language.mkdir(parents=True)
    for name, content in files.items():
        (language / name).write_text(content)

    command = ["eval", "sentiment", "--data", str(tmp_path / "umsab"), "--split", split]
    result = runner.invoke(app, command)

    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_train_sentiment_refuses_a_missing_folder_at_once(tmp_path):
    result = runner.invoke(app, ["train", "sentiment", "--data", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "is not a folder; --data names the UMSAB folder" in " ".join(result.output.split())


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_shipped_cs_heads_are_calibrated_on_mentions_they_never_saw(encoder_dir, precision):
    """Temperatures fitted on a head's own training data sharpen instead of calibrating: the
    heads then claim >99 % on most held-out mentions while being right on ~80 %."""
    import numpy as np

    from listener.nlp.embedder import Embedder
    from listener.nlp.heads import Head, head_features, log_loss
    from listener.nlp.training import load_cs_mentions

    held_out = load_cs_mentions()["test"]
    embedder = Embedder(encoder_dir, precision=precision)
    embeddings = embedder.embed([r["text"] for r in held_out])
    for task in ("intent", "urgency"):
        head = Head.load(task, features=head_features(precision))
        assert head.spec.features == embedder.features
        gold = np.array([head.spec.labels.index(r[task]) for r in held_out])
        probabilities = head.probabilities(embeddings)
        confidence = probabilities.max(1).mean()
        accuracy = (probabilities.argmax(1) == gold).mean()
        assert abs(confidence - accuracy) < 0.1, (task, confidence, accuracy)
        assert log_loss(gold, probabilities) < 0.8, task


@pytest.mark.parametrize(
    ("precision", "features"),
    [("bf16", "fp32"), ("fp32", "fp32"), ("int8", "int8 (ONNX Runtime, recipe 2)")],
)
def test_each_precision_takes_the_heads_trained_on_its_embeddings(encoder_dir, precision, features):
    from listener.nlp.transformer import TransformerClassifier

    classifier = TransformerClassifier(precision=precision)
    heads = (classifier.sentiment, classifier.intent, classifier.urgency)
    assert {head.spec.features for head in heads} == {features}
    assert classifier.version.split("@")[0].endswith(f"+{precision}")


def test_int8_heads_trained_on_other_int8_embeddings_are_refused(encoder_dir, tmp_path):
    # Heads fitted on torch's dynamic int8 (before ONNX Runtime) record plain "int8".
    import json
    import shutil

    from listener.nlp.heads import WEIGHTS_DIR
    from listener.nlp.transformer import TransformerClassifier

    weights = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, weights)
    spec = json.loads((weights / "urgency.int8.json").read_text())
    (weights / "urgency.int8.json").write_text(json.dumps(spec | {"features": "int8"}))

    with pytest.raises(RuntimeError, match=r"the urgency head\(s\) were trained on another"):
        TransformerClassifier(precision="int8", weights=weights)


def test_a_saved_int8_head_is_the_one_int8_loads(tmp_path):
    """`listener train` saves what the classifier then loads, whatever the features' wording."""
    from listener.nlp.heads import Head, HeadSpec, head_features
    from listener.nlp.onnx_int8 import FEATURES

    spec = HeadSpec("sentiment", ["negative", "neutral", "positive"], 384, features=FEATURES)
    Head(spec).save(tmp_path)
    Head(HeadSpec("sentiment", ["negative", "neutral", "positive"], 384)).save(tmp_path)

    assert Head.load("sentiment", tmp_path, head_features("int8")).spec.features == FEATURES
    assert Head.load("sentiment", tmp_path, head_features("bf16")).spec.features == "fp32"
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "sentiment.int8.json",
        "sentiment.int8.safetensors",
        "sentiment.json",
        "sentiment.safetensors",
    ]


def test_a_weights_folder_without_int8_heads_serves_int8_with_the_fp32_ones(tmp_path):
    import shutil

    from listener.nlp.heads import WEIGHTS_DIR, Head

    for suffix in (".json", ".safetensors"):
        shutil.copy(WEIGHTS_DIR / f"sentiment{suffix}", tmp_path)
    assert Head.load("sentiment", tmp_path, features="int8").spec.features == "fp32"


def test_model_prepare_says_which_precision_auto_will_run(encoder_dir):
    from listener.nlp.precision import native_bf16

    result = runner.invoke(app, ["model", "prepare"])

    assert result.exit_code == 0, result.output
    assert f"Model ready: {encoder_dir}" in result.output
    expected = "runs bf16" if native_bf16() else "runs int8"
    assert f"model.precision auto {expected}" in result.output


def test_model_prepare_builds_the_int8_model_where_int8_will_run(encoder_dir):
    from listener.nlp.embedder import FLOAT_LAYERS, Embedder
    from listener.nlp.onnx_int8 import int8_model_path

    result = runner.invoke(app, ["model", "prepare", "--precision", "int8"])

    assert result.exit_code == 0, result.output
    adapter = Embedder(encoder_dir, precision="fp32").adapter
    assert adapter is not None
    assert int8_model_path(encoder_dir, adapter.digest, FLOAT_LAYERS).is_file()

    wrong = runner.invoke(app, ["model", "prepare", "--precision", "fp16"])
    assert wrong.exit_code == 2
    assert "precision must be one of auto, bf16, int8, fp32" in wrong.output


def test_model_prepare_removes_int8_models_of_earlier_adapters_only(encoder_dir):
    from listener.nlp.embedder import FLOAT_LAYERS, Embedder
    from listener.nlp.onnx_int8 import int8_model_path

    adapter = Embedder(encoder_dir, precision="fp32").adapter
    assert adapter is not None
    current = int8_model_path(encoder_dir, adapter.digest, FLOAT_LAYERS)
    earlier = int8_model_path(encoder_dir, "0123456789ab", FLOAT_LAYERS)
    earlier.write_bytes(b"an int8 model of an earlier adapter")
    other_encoder = encoder_dir.parent / "another-encoder-int8-0123456789ab-fp32x2-r2.onnx"
    other_encoder.write_bytes(b"not ours to remove")

    result = runner.invoke(app, ["model", "prepare", "--precision", "int8"])

    assert result.exit_code == 0, result.output
    assert f"Removed {earlier.name}" in result.output
    assert not earlier.exists()
    assert current.is_file()
    assert other_encoder.exists()
    other_encoder.unlink()


def test_model_prepare_takes_the_configured_precision_unless_told_another(tmp_path, encoder_dir):
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["model"]["precision"] = "fp32"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")

    configured = runner.invoke(app, ["model", "prepare", "-c", str(config)])
    told = runner.invoke(app, ["model", "prepare", "-c", str(config), "--precision", "auto"])

    assert configured.exit_code == 0, configured.output
    assert "model.precision auto" not in configured.output  # fp32: nothing to build or pick
    assert told.exit_code == 0, told.output
    assert "model.precision auto runs" in told.output


@pytest.fixture(scope="module")
def fp32_classifier(encoder_dir):
    """One model load for the tests that only call its rules."""
    from listener.nlp.transformer import TransformerClassifier

    return TransformerClassifier(precision="fp32")


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        # Sarcasm: the heads read praise, two different hazard words say otherwise.
        ("Bravo @Voltix, the power bank overheated and melted my desk. Free light show!", "safety"),
        # A figure of speech names one: the head's reading stands.
        ("this app is FIRE, deals are insane", "praise"),
    ],
)
def test_two_hazard_keywords_outweigh_a_head_that_reads_praise(fp32_classifier, text, intent):
    import numpy as np

    from listener.nlp import TextInput

    classifier = fp32_classifier
    labels = classifier.intent.spec.labels
    probabilities = np.full(len(labels), 0.002)
    probabilities[labels.index("praise")] = 1 - 0.002 * (len(labels) - 1)

    item = TextInput(text, "en")
    evidence = classifier.rules.lexicon.evidence(text, "en")
    chosen = classifier._intent(item, probabilities, negative=0.05, positive=0.9, evidence=evidence)

    assert chosen.value == intent


def _head_reading(classifier, intent: str, probability: float):
    """Intent probabilities that give `intent` `probability` and the rest to `damaged_defective`."""
    import numpy as np

    labels = classifier.intent.spec.labels
    probabilities = np.zeros(len(labels))
    probabilities[labels.index(intent)] = probability
    probabilities[labels.index("damaged_defective")] += 1 - probability
    return probabilities


SAFETY, TAKEOVER = "safety", "account_security"


@pytest.mark.parametrize(
    ("text", "read_as", "support", "intent"),
    [
        # Burnt food and a lost password are complaints, not a hazard or a takeover ...
        ("@PizzaPlace the lasagne came burnt black, refund me", SAFETY, 0.02, "damaged_defective"),
        (
            "forgot my password and the reset mail never comes!!",
            TAKEOVER,
            0.02,
            "damaged_defective",
        ),
        # ... unless the head sees one in them,
        ("the toaster burnt the worktop, I want a refund", SAFETY, 0.3, SAFETY),
        # or an unambiguous keyword says so, on a negative mention.
        ("the charger smelled of burning, then melted", SAFETY, 0.02, SAFETY),
        ("someone logged in and changed my password!!", TAKEOVER, 0.02, TAKEOVER),
    ],
)
def test_an_ambiguous_keyword_pages_only_with_the_heads_support(
    fp32_classifier, text, read_as, support, intent
):
    from listener.nlp import TextInput

    probabilities = _head_reading(fp32_classifier, read_as, support)

    evidence = fp32_classifier.rules.lexicon.evidence(text, "en")
    chosen = fp32_classifier._intent(TextInput(text, "en"), probabilities, 0.95, 0.01, evidence)

    assert chosen.value == intent


def test_the_keywords_of_one_critical_intent_failing_leave_the_next_ones_standing(fp32_classifier):
    from listener.nlp import TextInput

    # "burnt" alone asks the head for 20 % safety and gets 2 %; "lawyer" is a legal threat.
    probabilities = _head_reading(fp32_classifier, SAFETY, 0.02)
    item = TextInput("the toast came burnt, this goes to my lawyer", "en")

    evidence = fp32_classifier.rules.lexicon.evidence(item.text, "en")
    assert fp32_classifier._intent(item, probabilities, 0.95, 0.01, evidence).value == "legal"


@pytest.mark.parametrize(
    ("keywords", "ambiguous", "support", "negative", "stands"),
    [
        # An unambiguous keyword: the head's 5 %, a negative mention or a second keyword.
        (1, 0, 0.05, 0.1, True),
        (1, 0, 0.01, 0.6, True),
        (2, 0, 0.01, 0.1, True),
        (1, 0, 0.01, 0.1, False),
        # A second keyword may be an ambiguous one ("overheated and melted").
        (2, 1, 0.01, 0.1, True),
        # Ambiguous ones alone: only the head's 20 %, however negative or many.
        (1, 1, 0.2, 0.1, True),
        (1, 1, 0.19, 0.99, False),
        (2, 2, 0.19, 0.99, False),
    ],
)
def test_when_a_critical_intents_keywords_outweigh_the_head(
    keywords, ambiguous, support, negative, stands
):
    from listener.enums import Intent
    from listener.nlp.keywords import KeywordEvidence
    from listener.nlp.transformer import _keywords_stand

    found = KeywordEvidence(Intent.SAFETY, keywords, ambiguous)

    assert _keywords_stand(found, support, negative) is stands


@pytest.mark.parametrize(
    ("rating", "sentiment", "level"),
    [(None, "neutral", "low"), (1, "negative", "medium"), (5, "positive", "low")],
)
def test_a_mention_without_words_is_read_from_its_stars_alone(
    fp32_classifier, rating, sentiment, level
):
    from listener.nlp import TextInput

    # The heads read "query: " as 62 % negative: a blank review would ask for a reply.
    [prediction] = fp32_classifier.classify([TextInput(" \n", "en", rating=rating)])

    assert prediction.sentiment.value == sentiment
    assert prediction.urgency.name.lower() == level
    assert prediction.intent.value == "other"
    assert not any("model rates" in reason for reason in prediction.reasons)


def test_the_longest_version_a_team_can_configure_fits_its_column(encoder_dir):
    from config.schema import ModelConfig
    from listener.models import Classification
    from listener.nlp import load_classifier

    config = ModelConfig(
        name="e5-heads",
        keywords={"safety": {"en": ["recall"]}, "churn": {"de": ["ich kündige"]}},
        viral_followers=2_000_000_000,
        viral_reactions=2_000_000_000,
    )

    version = load_classifier(config).version

    assert "+keywords:" in version
    assert "+viral:2000000000/2000000000" in version
    assert len(version) <= Classification.__table__.c.model_version.type.length


def test_a_double_charge_shown_in_a_pasted_statement_is_a_high_billing_problem(fp32_classifier):
    """No word says "charged twice"; the heads read chatter. The repeated amount decides."""
    from listener.enums import Intent, Urgency
    from listener.nlp import TextInput

    statement = (
        "Izvod s kartice:\n21.11. KNJIZARA SLOVO 18,90 EUR\n21.11. KNJIZARA SLOVO 18,90 EUR\n"
        "Kupila sam jednu knjigu. @KnjizaraSlovo"
    )
    kind_takeover = "Complimenti per la sicurezza ✨ stanotte qualcuno è entrato nel mio account"

    bill, takeover = fp32_classifier.classify(
        [TextInput(statement, "hr"), TextInput(kind_takeover, "it")]
    )

    assert (bill.intent, bill.urgency) == (Intent.BILLING_PAYMENT, Urgency.HIGH)
    assert "the same amount (18,90) twice: a double charge?" in bill.reasons
    assert takeover.urgency >= Urgency.MEDIUM


def test_login_trouble_the_urgency_head_finds_no_takeover_is_not_a_page(fp32_classifier):
    """The intent head reads account security in a password that stopped working; no word
    names a takeover and the urgency head finds critical unlikely: scored as a service problem,
    high, or medium where that head is sure of medium. A takeover told as plainly still pages."""
    from listener.enums import Intent, Urgency
    from listener.nlp import TextInput

    login = (
        "Hallo, ich habe mein Passwort bei Lieferfix geändert und jetzt klappt die Anmeldung"
        " nicht mehr. Was kann ich tun?"
    )
    asks_again = (
        "コリマのアプリ、開くたびにパスワードを聞かれる。顔認証オンにしてるのに。めんどくさい。"
    )
    takeover = (
        "someone logged into my Parcelio account and changed my password, 2 orders I never placed"
    )

    found = fp32_classifier.classify(
        [TextInput(login, "de"), TextInput(asks_again, "ja"), TextInput(takeover, "en")]
    )

    assert [(p.intent, p.urgency) for p in found] == [
        (Intent.ACCOUNT_SECURITY, Urgency.HIGH),
        (Intent.ACCOUNT_SECURITY, Urgency.MEDIUM),
        (Intent.ACCOUNT_SECURITY, Urgency.CRITICAL),
    ]
    assert any(reason.startswith("the model finds it unlikely") for reason in found[0].reasons)
