"""The lexical n-gram sentiment model and its mixture with the encoder's sentiment head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from listener.nlp.heads import WEIGHTS_DIR, Head, HeadSpec
from listener.nlp.lexical import LexicalModel, LexicalSpec, mix, normalise, tf_idf

LABELS = ["negative", "neutral", "positive"]
TEXTS = [
    ("worst order ever, broken and late 😡", 0),
    ("terrible service, never again", 0),
    ("servizio pessimo, mai più", 0),
    ("produit cassé, horrible", 0),
    ("the parcel arrives on tuesday", 1),
    ("il pacco arriva martedì", 1),
    ("le colis arrive mardi", 1),
    ("store opens at nine", 1),
    ("love it, best purchase ever 😍", 2),
    ("lo adoro, fantastico", 2),
    ("j'adore, parfait", 2),
    ("great service, thank you!", 2),
]


@pytest.fixture(scope="module")
def small_model() -> LexicalModel:
    texts, labels = zip(*TEXTS, strict=True)
    return LexicalModel.fit(list(texts), np.array(labels), LexicalSpec(LABELS, hash_bits=12))


def test_it_learns_words_and_emoji_of_each_label(small_model):
    answers = small_model.log_probabilities(["never again, broken 😡", "fantastico, love it 😍"])
    assert [LABELS[i] for i in answers.argmax(1)] == ["negative", "positive"]
    assert np.allclose(np.exp(answers).sum(1), 1.0, atol=1e-5)


def test_saved_and_loaded_it_answers_as_before(small_model, tmp_path):
    small_model.save(tmp_path)
    loaded = LexicalModel.load(tmp_path)
    texts = [text for text, _ in TEXTS] + ["an unseen sentence entirely"]

    assert loaded.spec == small_model.spec
    before, after = small_model.log_probabilities(texts), loaded.log_probabilities(texts)
    assert np.abs(before - after).max() < 0.01  # weights stored in fp16
    assert (before.argmax(1) == after.argmax(1)).all()


def test_serving_weights_features_as_scikit_learn_does(small_model):
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfTransformer

    texts = [text for text, _ in TEXTS]
    counts = hstack([v.transform(texts) for v in small_model._vectorisers]).tocsr()
    reference = TfidfTransformer(sublinear_tf=True).fit(counts)

    ours = tf_idf(counts, reference.idf_).toarray()
    assert np.allclose(ours, reference.transform(counts).toarray(), atol=1e-6)


def test_links_are_left_out_and_handles_read_as_the_tweets_it_learnt_from_wrote_them(small_model):
    link = "https://kettlo.example/o/88?ref=tw"
    text = f"Thanks @Kettlo_UK! {link} www.kettlo.hr http"
    assert normalise(text).split() == ["thanks", "@user!"]
    plain = "love it, best purchase ever 😍"
    with_link = "love it, best purchase ever 😍 https://shop.example.com/o/88129?ref=tw"
    answers = small_model.log_probabilities([plain, with_link])
    assert np.array_equal(answers[0], answers[1])


def test_no_texts_no_answers_and_a_label_without_examples_is_refused(small_model):
    assert small_model.log_probabilities([]).shape == (0, 3)
    with pytest.raises(ValueError, match=r"needs examples of every label"):
        LexicalModel.fit(["good", "bad"], np.array([0, 2]), LexicalSpec(LABELS, hash_bits=8))
    with pytest.raises(ValueError, match="one row per text"):
        mix(np.zeros((2, 3)), np.zeros((1, 3)), 0.5)


def test_a_missing_model_names_the_command_that_trains_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="run `listener train sentiment`"):
        LexicalModel.load(tmp_path)


def test_a_mixing_head_takes_the_weighted_geometric_mean_and_needs_the_lexical_answer():
    spec = HeadSpec("sentiment", LABELS, 4, lexical_weight=0.25, temperature=2.0)
    head = Head(spec)
    embeddings = np.eye(4, dtype=np.float32)[:2]
    lexical = np.log(np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]], dtype=np.float32))

    own = Head(HeadSpec("sentiment", LABELS, 4))
    own.load_state_dict(head.state_dict())
    own_log = np.log(own.probabilities(embeddings))
    expected = np.exp((0.75 * own_log + 0.25 * lexical) / 2.0)
    expected /= expected.sum(1, keepdims=True)

    assert np.allclose(head.probabilities(embeddings, lexical), expected, atol=1e-5)
    with pytest.raises(ValueError, match="mixes in the lexical model"):
        head.probabilities(embeddings)


def test_the_shipped_sentiment_heads_mix_in_the_shipped_lexical_model():
    lexical = LexicalModel.load(WEIGHTS_DIR)
    assert lexical.coef.shape == (3, 2 * 2**lexical.spec.hash_bits)
    assert lexical.spec.trained_with.startswith("listener train sentiment")
    for features in ("fp32", "int8"):
        head = Head.load("sentiment", WEIGHTS_DIR, features)
        assert 0 < head.spec.lexical_weight < 1
        assert head.spec.lexical_digest == lexical.digest()
        assert head.spec.metrics["selected"]["lexical_weight"] == head.spec.lexical_weight


def test_train_sentiment_mixes_in_the_lexical_model_at_the_weight_val_prefers(
    encoder_dir, small_model, monkeypatch
):
    from pathlib import Path

    from listener.nlp import training
    from listener.nlp.embedder import Embedder
    from listener.nlp.training import (
        LEXICAL_WEIGHTS,
        SplitData,
        Umsab,
        evaluate_sentiment,
        train_sentiment,
    )

    monkeypatch.setattr(training, "load_cs_mentions", lambda: {"train": [], "test": []})
    texts, labels = zip(*TEXTS, strict=True)
    train = SplitData(list(texts), np.array(labels))
    val = SplitData(
        ["broken again, horrible 😡", "arriva martedì", "fantastico, j'adore 😍", "mai più"],
        np.array([0, 1, 2, 0]),
    )
    umsab = Umsab(Path("tiny"), train={"mixed": train}, val={"mixed": val})
    embedder = Embedder(encoder_dir, precision="fp32")

    head, report = train_sentiment(umsab, embedder, small_model, progress=lambda _: None)

    val_x = {"mixed": embedder.embed(val.texts)}
    val_lexical = {"mixed": small_model.log_probabilities(val.texts)}
    chosen = head.spec.lexical_weight
    assert chosen in LEXICAL_WEIGHTS
    assert head.spec.lexical_digest == small_model.digest()
    assert head.spec.metrics["selected"]["lexical_weight"] == chosen
    assert report == evaluate_sentiment(head, val_x, umsab.val, val_lexical)
    for weight in LEXICAL_WEIGHTS:
        head.spec.lexical_weight = weight
        other = evaluate_sentiment(head, val_x, umsab.val, val_lexical)
        assert other["average_macro_f1"] <= report["average_macro_f1"]


def test_the_lexical_weight_is_the_smallest_that_val_likes_best():
    from listener.nlp.training import SplitData, _choose_lexical_weight

    head = Head(HeadSpec("sentiment", LABELS, 4))
    with torch.no_grad():
        head.net.weight.zero_()  # alone it cannot tell the labels apart: "negative" every time
        head.net.bias.zero_()
    val = {"xx": SplitData(["a", "b", "c"], np.array([0, 1, 2]))}
    right = np.log(np.full((3, 3), 0.1) + 0.7 * np.eye(3)).astype(np.float32)

    chosen = _choose_lexical_weight(
        head,
        {"xx": np.zeros((3, 4), dtype=np.float32)},
        val,
        {"xx": right},
        chosen={"hidden": 0},
        progress=lambda _: None,
    )

    assert head.spec.lexical_weight == chosen["lexical_weight"] == 0.1
    assert chosen["val"]["average_macro_f1"] == 1.0


def test_a_lexical_model_other_than_the_heads_is_refused(encoder_dir, tmp_path):
    import json
    import shutil

    from listener.nlp.transformer import TransformerClassifier

    weights = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, weights)
    texts, labels = zip(*TEXTS, strict=True)
    LexicalModel.fit(list(texts), np.array(labels), LexicalSpec(LABELS)).save(weights)

    with pytest.raises(RuntimeError, match=r"trained with another lexical model"):
        TransformerClassifier(precision="fp32", weights=weights)
    spec = json.loads((weights / "sentiment.json").read_text())
    assert spec["lexical_digest"]  # the shipped head names the model it was fitted with
