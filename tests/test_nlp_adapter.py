"""The LoRA adapter is merged into the encoder's weights at load; heads must match their encoder."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel

from listener.nlp.adapter import adapter_paths, apply_adapter


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

    assert apply_adapter(model, tmp_path) == "7"

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


def test_heads_trained_on_another_encoder_are_refused(encoder_dir, tmp_path):
    from listener.nlp import heads
    from listener.nlp.transformer import TransformerClassifier

    stale = tmp_path / "weights"
    stale.mkdir()
    for source in heads.WEIGHTS_DIR.iterdir():  # the shipped heads (and adapter, if any)
        (stale / source.name).write_bytes(source.read_bytes())
    spec = json.loads((stale / "intent.json").read_text())
    spec["encoder"] = "some other encoder"
    (stale / "intent.json").write_text(json.dumps(spec))

    with pytest.raises(RuntimeError, match="intent head\\(s\\) were trained on another encoder"):
        TransformerClassifier(threads=1, weights=stale)
