"""A Hugging Face sequence-classification model named in the config replaces the default.

The model here is a real one: a one-layer BERT with its own tokenizer, trained for a second on
a toy vocabulary and written with `save_pretrained`, so the whole transformers loading path runs
offline exactly as it would for a downloaded model.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from config.schema import EXAMPLE_CONFIG, ModelConfig
from listener.cli import app
from listener.enums import Intent, Sentiment, Urgency
from listener.nlp import ModelLoadError, TextInput, load_classifier
from listener.nlp.hub import ModelLabelError, sentiment_columns

runner = CliRunner()
WORDS = {
    0: ["awful", "broken", "terrible", "worst"],
    1: ["parcel", "today", "order", "box", "sent"],
    2: ["love", "great", "perfect", "thanks", "best"],
}
FILLER = ["the", "my", "is", "it", "was", "a", "so"]
INDEX_LABELS = {"0": "negative", "1": "neutral", "2": "positive"}


def _toy_examples(count: int) -> tuple[list[str], list[int]]:
    rng = random.Random(0)  # noqa: S311  (toy data, not cryptography)
    texts, labels = [], []
    for _ in range(count):
        label = rng.randrange(3)
        words = [rng.choice(WORDS[label]), rng.choice(WORDS[1])]
        words += rng.sample(FILLER, rng.randrange(0, 4))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A trained 3-label model whose labels are LABEL_0..2 (0 negative, 1 neutral, 2 positive)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    vocabulary = {
        w: i
        for i, w in enumerate([*specials, *FILLER, *(w for words in WORDS.values() for w in words)])
    }
    pieces = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    pieces.normalizer = normalizers.Lowercase()
    pieces.pre_tokenizer = pre_tokenizers.Whitespace()
    pieces.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=pieces,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=32,
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocabulary),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        num_labels=3,
    )
    model = BertForSequenceClassification(config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    texts, labels = _toy_examples(300)
    for _epoch in range(8):
        for start in range(0, len(texts), 30):
            batch = tokenizer(texts[start : start + 30], padding=True, return_tensors="pt")
            loss = model(**batch, labels=torch.tensor(labels[start : start + 30])).loss
            loss.backward()
            optimiser.step()
            optimiser.zero_grad()
    directory = tmp_path_factory.mktemp("hf") / "toy-sentiment"
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _relabelled(model_dir: Path, target: Path, id2label: dict[int, str]) -> Path:
    """A copy of the model whose config names its labels differently."""
    shutil.copytree(model_dir, target)
    config = json.loads((target / "config.json").read_text())
    config["id2label"] = {str(i): name for i, name in id2label.items()}
    config["label2id"] = {name: i for i, name in id2label.items()}
    (target / "config.json").write_text(json.dumps(config))
    return target


def test_a_local_model_gives_sentiment_and_the_rules_give_intent_and_urgency(model_dir):
    classifier = load_classifier(ModelConfig(name=str(model_dir), labels=INDEX_LABELS))
    items = [
        TextInput("the parcel was broken so awful", "en"),
        TextInput("love it", "en"),
        TextInput("my box was sent today", "en"),
        TextInput("thanks the order is perfect", "en", rating=5),
    ]

    complaint, short_praise, neutral, review = classifier.classify(items)

    # Batches are sorted by length inside; results come back in the input's order.
    assert [p.sentiment for p in (complaint, short_praise, neutral, review)] == [
        Sentiment.NEGATIVE,
        Sentiment.POSITIVE,
        Sentiment.NEUTRAL,
        Sentiment.POSITIVE,
    ]
    assert complaint.intent is Intent.DAMAGED_DEFECTIVE
    assert complaint.urgency >= Urgency.HIGH
    assert any("negative sentiment" in reason for reason in complaint.reasons)
    assert review.urgency is Urgency.LOW
    assert classifier.name == f"hf:{model_dir}"
    digest, precision = classifier.version.split("+")
    assert len(digest) == 8
    assert precision in {"bf16", "int8"}  # auto: bf16 where the CPU does it in hardware


@pytest.mark.parametrize("precision", ["bf16", "int8", "fp32"])
def test_a_hub_model_runs_at_each_precision_with_the_same_answers(model_dir, precision):
    config = ModelConfig(name=str(model_dir), labels=INDEX_LABELS, precision=precision)
    classifier = load_classifier(config)
    texts = ["the parcel was broken so awful", "love it", "my box was sent today"]
    predictions = classifier.classify([TextInput(text, "en") for text in texts])
    assert [p.sentiment for p in predictions] == [
        Sentiment.NEGATIVE,
        Sentiment.POSITIVE,
        Sentiment.NEUTRAL,
    ]
    assert classifier.version.endswith(f"+{precision}")


def test_labels_that_name_their_sentiment_need_no_mapping(model_dir, tmp_path):
    named = _relabelled(model_dir, tmp_path / "named", {0: "Negative", 1: "Neutral", 2: "Positive"})
    [prediction] = load_classifier(ModelConfig(name=str(named))).classify(
        [TextInput("so awful and broken", "en")]
    )
    assert prediction.sentiment is Sentiment.NEGATIVE


def test_a_different_mapping_is_a_different_version(model_dir):
    swapped = {"0": "positive", "1": "neutral", "2": "negative"}
    first = load_classifier(ModelConfig(name=str(model_dir), labels=INDEX_LABELS))
    second = load_classifier(ModelConfig(name=str(model_dir), labels=swapped))
    [prediction] = second.classify([TextInput("so awful and broken", "en")])
    assert prediction.sentiment is Sentiment.POSITIVE
    assert first.version != second.version


def test_several_labels_may_share_a_sentiment_and_their_probabilities_add_up():
    stars = {i: f"{i + 1} stars" for i in range(5)}
    mapping = {
        "1 stars": Sentiment.NEGATIVE,
        "2 stars": Sentiment.NEGATIVE,
        "3 stars": Sentiment.NEUTRAL,
        "4 stars": Sentiment.POSITIVE,
        "5 stars": Sentiment.POSITIVE,
    }
    columns = sentiment_columns(stars, mapping, "stars-model")
    probabilities = [0.1, 0.2, 0.3, 0.15, 0.25]
    assert (probabilities @ columns).round(6).tolist() == [0.3, 0.3, 0.4]


def test_a_binary_model_leaves_neutral_at_zero():
    columns = sentiment_columns({0: "NEGATIVE", 1: "POSITIVE"}, {}, "binary")
    assert ([0.7, 0.3] @ columns).round(6).tolist() == [0.7, 0.0, 0.3]


def test_unmapped_labels_are_an_error_that_names_them_and_the_fix(model_dir):
    with pytest.raises(ModelLabelError) as caught:
        load_classifier(ModelConfig(name=str(model_dir)))
    message = str(caught.value)
    assert "['LABEL_0', 'LABEL_1', 'LABEL_2']" in message
    assert "model.labels: {LABEL_0: ..., LABEL_1: ..., LABEL_2: ...}" in message


def test_a_mapping_of_labels_the_model_lacks_is_an_error(model_dir):
    with pytest.raises(ModelLabelError, match=r"names \['LABEL_7'\].*its labels are"):
        load_classifier(
            ModelConfig(name=str(model_dir), labels={**INDEX_LABELS, "LABEL_7": "positive"})
        )


def test_a_model_that_cannot_say_negative_is_refused():
    with pytest.raises(ModelLabelError, match="means negative"):
        sentiment_columns({0: "neutral", 1: "positive"}, {}, "half")


def test_labels_belong_to_hugging_face_models_only():
    with pytest.raises(ValidationError, match="e5-heads has its own"):
        ModelConfig(name="e5-heads", labels={"0": "negative"})


def test_a_name_transformers_cannot_load_is_a_clear_error(tmp_path):
    with pytest.raises(
        ModelLoadError, match=r"unknown model .*e5-heads.*baseline.*save_pretrained"
    ):
        load_classifier(ModelConfig(name=str(tmp_path / "no-such-model")))


def _config_file(tmp_path: Path, model: dict) -> Path:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["model"] = {**data["model"], **model}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_classify_runs_a_model_named_in_the_yaml_config(model_dir, tmp_path):
    # YAML reads `0: negative` with an int key; it means the label with index 0.
    config = tmp_path / "config.yaml"
    config.write_text(
        EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
            "  name: e5-heads",
            f"  name: {model_dir}\n  labels: {{0: negative, 1: neutral, 2: positive}}",
            1,
        ),
        encoding="utf-8",
    )
    source = tmp_path / "in.jsonl"
    lines = [
        {"id": "a", "text": "the parcel was broken so awful", "lang": "en"},
        {"id": "b", "text": "love it the best", "lang": "en"},
    ]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    target = tmp_path / "out.jsonl"

    result = runner.invoke(
        app, ["classify", "--input", str(source), "--output", str(target), "-c", str(config)]
    )

    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(r["id"], r["sentiment"]["label"]) for r in rows] == [
        ("a", "negative"),
        ("b", "positive"),
    ]
    assert rows[0]["intent"] == "damaged_defective"
    assert f"hf:{model_dir}" in result.output


def test_classify_with_an_unusable_model_exits_with_the_reason(model_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "text": "hello"}\n')
    config = _config_file(tmp_path, {"name": str(model_dir)})

    result = runner.invoke(
        app,
        ["classify", "--input", str(source), "--output", str(tmp_path / "o"), "-c", str(config)],
    )

    assert result.exit_code == 2
    assert "model.name:" in result.output
    assert "LABEL_0" in result.output
    assert "Traceback" not in result.output
