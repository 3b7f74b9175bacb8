"""The LoRA adapter is merged into the encoder's weights at load; heads must match their encoder."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel

from listener.nlp.embedder import adapter_paths, apply_adapter


def _tiny_bert() -> BertModel:
    config = BertConfig(
        vocab_size=50, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=16,
    )  # fmt: skip
    torch.manual_seed(0)
    return BertModel(config, add_pooling_layer=False).eval()


def test_the_low_rank_update_is_merged_into_the_named_layers_only(tmp_path):
    model = _tiny_bert()
    query = "encoder.layer.1.attention.self.query"
    dense = "encoder.layer.1.intermediate.dense"
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    a_query, b_query = torch.randn(4, 8), torch.randn(8, 4)
    a_dense, b_dense = torch.randn(4, 8), torch.randn(16, 4)
    weights, meta = adapter_paths(tmp_path)
    save_file(
        {
            f"{query}.lora_A": a_query,
            f"{query}.lora_B": b_query,
            f"{dense}.lora_A": a_dense,
            f"{dense}.lora_B": b_dense,
        },
        str(weights),
    )
    meta.write_text(json.dumps({"rank": 4, "alpha": 8, "version": "7"}))

    applied = apply_adapter(model, tmp_path)
    assert applied is not None
    assert applied.version == "7"
    assert applied.digest == hashlib.sha256(weights.read_bytes() + b"scale=2.0").hexdigest()[:12]
    meta.write_text(json.dumps({"rank": 4, "alpha": 16, "version": "7"}))
    assert apply_adapter(_tiny_bert(), tmp_path).digest != applied.digest  # another scale

    after = dict(model.named_parameters())
    torch.testing.assert_close(
        after[f"{query}.weight"], before[f"{query}.weight"] + 2 * b_query @ a_query
    )
    torch.testing.assert_close(
        after[f"{dense}.weight"], before[f"{dense}.weight"] + 2 * b_dense @ a_dense
    )
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed == {f"{query}.weight", f"{dense}.weight"}


def test_no_adapter_file_leaves_the_encoder_as_it_is(tmp_path):
    model = _tiny_bert()
    before = [p.detach().clone() for p in model.parameters()]
    assert apply_adapter(model, tmp_path) is None
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def _copy_of_shipped_weights(tmp_path):
    """The shipped heads and adapter, in a folder a test may change."""
    from listener.nlp.heads import WEIGHTS_DIR

    copy = tmp_path / "weights"
    copy.mkdir()
    for source in WEIGHTS_DIR.iterdir():
        (copy / source.name).write_bytes(source.read_bytes())
    return copy


def test_heads_trained_on_another_encoder_are_refused(encoder_dir, tmp_path):
    from listener.nlp.transformer import TransformerClassifier

    stale = _copy_of_shipped_weights(tmp_path)
    spec = json.loads((stale / "intent.json").read_text())
    spec["encoder"] = "some other encoder"
    (stale / "intent.json").write_text(json.dumps(spec))

    with pytest.raises(RuntimeError, match="intent head\\(s\\) were trained on another encoder"):
        TransformerClassifier(threads=1, weights=stale)


def test_heads_fitted_on_another_training_of_the_same_adapter_version_are_refused(
    encoder_dir, tmp_path
):
    from safetensors.torch import load_file

    from listener.nlp import heads
    from listener.nlp.transformer import TransformerClassifier

    retrained = _copy_of_shipped_weights(tmp_path)
    adapter, meta = adapter_paths(retrained)
    tensors = load_file(str(adapter))
    first_b = next(k for k in sorted(tensors) if k.endswith(".lora_B"))
    tensors[first_b] = tensors[first_b] * 1.01  # another training: same version, other weights
    save_file(tensors, str(adapter))
    assert (
        json.loads(meta.read_text())["version"]
        == json.loads(adapter_paths(heads.WEIGHTS_DIR)[1].read_text())["version"]
    )

    with pytest.raises(RuntimeError, match="sentiment, intent, urgency head\\(s\\) were trained"):
        TransformerClassifier(threads=1, weights=retrained)


def _tiny_datasets(tmp_path):
    """Two UMSAB-layout languages and a small customer-service set, in the real formats."""
    umsab = tmp_path / "umsab"
    tweets = {
        "english": ["I love this phone", "worst service ever", "it is a phone", "meh, fine"],
        "german": ["Ich liebe es", "Schrecklicher Service", "Ein Telefon", "Geht so"],
    }
    for language, texts in tweets.items():
        (umsab / language).mkdir(parents=True)
        for split in ("train", "val"):
            (umsab / language / f"{split}_text.txt").write_text("\n".join(texts) + "\n")
            (umsab / language / f"{split}_labels.txt").write_text("2\n0\n1\n1\n")
    cs = tmp_path / "cs"
    cs.mkdir()
    records = [
        {"id": f"en-{i}", "text": text, "sentiment": s, "intent": intent, "urgency": urgency}
        for i, (text, s, intent, urgency) in enumerate(
            [
                ("My order never arrived", "negative", "delivery", "high"),
                ("Charged twice, refund me", "negative", "billing_payment", "high"),
                ("The charger caught fire", "negative", "safety", "critical"),
                ("Love the lamp, thanks!", "positive", "praise", "low"),
                ("Do you ship to Croatia?", "neutral", "question", "medium"),
            ]
            * 3
        )
    ]
    (cs / "en.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return umsab, cs


def test_a_bundle_encodes_exactly_like_the_full_encoder_and_survives_a_file(encoder_dir, tmp_path):
    from transformers import AutoTokenizer

    from listener.nlp.bundle import load_bundle, save_bundle
    from listener.nlp.embedder import QUERY_PREFIX, load_bert
    from listener.nlp.training import adapter_bundle

    umsab, cs = _tiny_datasets(tmp_path)
    bundle = adapter_bundle(umsab, progress=lambda _m: None, cs_directory=cs)
    save_bundle(bundle, tmp_path / "bundle.safetensors")
    loaded = load_bundle(tmp_path / "bundle.safetensors")

    assert loaded.config["vocab_size"] < 200  # only the pieces the texts use
    assert sorted(loaded.splits) == ["cs_dev", "train", "val"]
    val = loaded.splits["val"]
    assert val.groups == ["english"] * 4 + ["german"] * 4
    assert val.labels["sentiment"].tolist() == [2, 0, 1, 1] * 2
    assert set(val.labels["intent"].tolist()) == {-1}  # tweets carry sentiment only
    cs_rows = [i for i, g in enumerate(loaded.splits["train"].groups) if g == "cs"]
    assert cs_rows
    assert all(loaded.splits["train"].labels["urgency"][i] >= 0 for i in cs_rows)

    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    full = load_bert(encoder_dir)
    small = loaded.encoder().eval()
    with torch.inference_mode():
        expected = full(**tokenizer([QUERY_PREFIX + "Geht so"], return_tensors="pt"))
        ids = torch.from_numpy(val.ids[7].astype("int64"))[None]
        actual = small(input_ids=ids)
    torch.testing.assert_close(actual.last_hidden_state, expected.last_hidden_state)


def test_an_adapter_trained_on_a_bundle_merges_into_the_full_encoder(encoder_dir, tmp_path):
    from transformers import AutoTokenizer

    from listener.nlp.adapter import main
    from listener.nlp.bundle import load_bundle, save_bundle
    from listener.nlp.embedder import QUERY_PREFIX, load_bert
    from listener.nlp.training import adapter_bundle

    umsab, cs = _tiny_datasets(tmp_path)
    save_bundle(adapter_bundle(umsab, progress=lambda _m: None, cs_directory=cs), tmp_path / "b")
    out = tmp_path / "weights"
    options = ["--epochs", "2", "--train-layers", "1", "--lr", "1e-2", "--batch-size", "4"]
    options += ["--ema", "0.9", "--label-smoothing", "0.1"]
    main(["--bundle", str(tmp_path / "b"), "--output", str(out), "--device", "cpu", *options])

    meta = json.loads((out / "adapter.json").read_text())
    assert meta["layers"] == [11]
    assert meta["rank"] == 16
    assert (meta["spec"]["ema"], meta["spec"]["label_smoothing"]) == (0.9, 0.1)
    assert [h["epoch"] for h in meta["history"]] == list(range(1, meta["epoch"] + 1))
    assert 0.0 <= meta["val_macro_f1_linear_head"] <= 1.0
    assert set(meta["history"][0].get("cs_dev_accuracy", {})) <= {"sentiment", "intent", "urgency"}

    # The low-rank updates live in the layers, not the vocabulary: merged into the full encoder
    # and into the bundle's reduced one they give the same output for the same text.
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    full, small = load_bert(encoder_dir), load_bundle(tmp_path / "b").encoder().eval()
    untouched = full(**tokenizer([QUERY_PREFIX + "Ein Telefon"], return_tensors="pt"))
    applied = apply_adapter(full, out)
    assert applied is not None
    assert applied.version == "2"
    assert apply_adapter(small, out) == applied
    with torch.inference_mode():
        expected = full(**tokenizer([QUERY_PREFIX + "Ein Telefon"], return_tensors="pt"))
        ids = torch.from_numpy(load_bundle(tmp_path / "b").splits["val"].ids[6].astype("int64"))
        actual = small(input_ids=ids[None])
    torch.testing.assert_close(actual.last_hidden_state, expected.last_hidden_state)
    assert not torch.allclose(untouched.last_hidden_state, expected.last_hidden_state)


def test_train_adapter_export_bundle_writes_a_bundle_the_trainer_reads(encoder_dir, tmp_path):
    from typer.testing import CliRunner

    from listener.cli import app
    from listener.nlp.bundle import load_bundle
    from listener.nlp.training import load_cs_mentions

    umsab, _ = _tiny_datasets(tmp_path)
    target = tmp_path / "bundle.safetensors"
    result = CliRunner().invoke(
        app, ["train", "adapter", "--data", str(umsab), "--export-bundle", str(target)]
    )

    assert result.exit_code == 0, result.output
    assert "Wrote" in result.output
    bundle = load_bundle(target)
    cs_train = len(load_cs_mentions()["train"])  # the shipped set, split into train and dev
    in_train = sum(group == "cs" for group in bundle.splits["train"].groups)
    assert in_train + len(bundle.splits["cs_dev"]) == cs_train
    assert 0 < len(bundle.splits["cs_dev"]) < in_train
    assert len(bundle.splits["val"]) == 8


def test_the_moving_average_is_evaluated_in_place_of_the_trained_weights_then_put_back():
    from listener.nlp.adapter import _MovingAverage

    weight = torch.nn.Parameter(torch.zeros(3))
    average = _MovingAverage([weight], decay=0.5)
    for value in (10.0, 20.0):
        with torch.no_grad():
            weight.fill_(value)
        average.update()
    # decay ramps as min(0.5, (1 + n) / (10 + n)): 2/11 after one update, 0.25 after the second
    first = 10.0 * (1 - 2 / 11)
    expected = first + (20.0 - first) * (1 - 0.25)
    with average.applied():
        torch.testing.assert_close(weight.detach(), torch.full((3,), expected))
    torch.testing.assert_close(weight.detach(), torch.full((3,), 20.0))


def test_training_pins_the_mmap_threshold_unless_the_environment_sets_one(monkeypatch):
    import platform
    import sys

    from listener.nlp.heap import pin_mmap_threshold

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert pin_mmap_threshold() is False
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert pin_mmap_threshold() is glibc


def test_length_batches_cover_every_position_once_with_little_padding():
    import random

    from listener.nlp.adapter import length_batches

    rng = random.Random(0)  # noqa: S311  (test data)
    lengths = [rng.randint(3, 96) for _ in range(1000)]

    def padded(batches: list[list[int]]) -> int:
        return sum(len(batch) * max(lengths[p] for p in batch) for batch in batches)

    shuffled = list(range(1000))
    rng.shuffle(shuffled)
    random_batches = [shuffled[i : i + 32] for i in range(0, 1000, 32)]
    epochs = [length_batches(lengths, 32, rng, group=10) for _ in range(2)]
    for batches in epochs:
        assert sorted(p for batch in batches for p in batch) == list(range(1000))
        assert len(batches) == len(random_batches)  # as many steps as random batches
        assert padded(batches) < 1.15 * sum(lengths) < 0.7 * padded(random_batches)
    assert epochs[0] != epochs[1]  # shuffled anew, not the same batches every epoch


def test_length_batches_without_a_group_sort_once():
    from listener.nlp.adapter import length_batches

    batches = length_batches([5, 1, 4, 2, 3], 2, None)
    assert batches == [[1, 3], [4, 2], [0]]


def test_heads_are_trained_on_the_adapter_of_the_folder_they_are_saved_to(tmp_path):
    # `listener train sentiment|urgency --output DIR` after a new adapter in DIR: heads fitted
    # on the shipped adapter's embeddings would serve another encoder.
    from listener.cli_nlp import _embedders_for_heads
    from listener.nlp.heads import WEIGHTS_DIR

    shipped = next(_embedders_for_heads(WEIGHTS_DIR))
    bare = next(_embedders_for_heads(tmp_path))

    assert shipped.adapter is not None
    assert bare.adapter is None
