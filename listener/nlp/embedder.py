"""Sentence embeddings from the e5 encoder: one pass per text, shared by every task head."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from listener.nlp.adapter import apply_adapter
from listener.nlp.encoder import ENCODER_NAME
from listener.nlp.heads import WEIGHTS_DIR

log = logging.getLogger(__name__)
QUERY_PREFIX = "query: "  # how e5 was trained for classification-style inputs
MAX_TOKENS = 128  # mentions are short; long reviews keep their first 128 pieces
# int8 in the two bottom layers costs the adapted encoder 0.02 UMSAB macro-F1 (their activations
# have outliers that one scale per tensor flattens); above them it costs ~0. Measured on val.
FLOAT_LAYERS = 2


def load_bert(directory: Path) -> BertModel:
    """The encoder without a pooler, its weights taken straight from the safetensors file.

    Built on the meta device and filled with `assign=True`, so no random initialisation runs and
    no second copy of the 470 MB of weights is made: the file is memory-mapped and only the
    embedding rows of pieces actually seen are paged in.
    """
    config = BertConfig.from_pretrained(directory)
    with torch.device("meta"):
        model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict(load_file(str(directory / "model.safetensors")), assign=True, strict=True)
    positions = torch.arange(config.max_position_embeddings).expand((1, -1))
    model.embeddings.register_buffer("position_ids", positions, persistent=False)
    model.embeddings.register_buffer(
        "token_type_ids", torch.zeros_like(positions), persistent=False
    )
    return model.eval()


def _quantise(model: BertModel, float_layers: int) -> None:
    """int8 weights (dynamic activations) for the Linear layers: ~2x faster on CPU."""
    names = {
        name: torch.ao.quantization.default_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
        and not any(name.startswith(f"encoder.layer.{i}.") for i in range(float_layers))
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch announces a successor API
        torch.ao.quantization.quantize_dynamic(model, names, dtype=torch.qint8, inplace=True)


class Embedder:
    def __init__(
        self,
        directory: Path,
        threads: int | None = None,
        quantize: bool = True,
        max_tokens: int = MAX_TOKENS,
        adapter_dir: Path | None = WEIGHTS_DIR,
        *,
        float_layers: int = FLOAT_LAYERS,
    ) -> None:
        """`adapter_dir`: where a LoRA adapter is merged from, if one is there; None for none.

        `quantize`: int8 weights for the Linear layers above the bottom `float_layers` ones.
        """
        if threads:
            torch.set_num_threads(threads)
        hf_logging.set_verbosity_error()  # the load report would list the unused pooler
        hf_logging.disable_progress_bar()
        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(directory)
        model = load_bert(directory)
        adapter = apply_adapter(model, adapter_dir) if adapter_dir else None
        self.adapter_version = adapter
        # What the heads were trained on: heads must match it (`TransformerClassifier` checks).
        self.encoder_id = ENCODER_NAME + (f" + adapter {adapter}" if adapter else "")
        if quantize:
            _quantise(model, float_layers)
        self.model = model
        self.max_tokens = max_tokens
        self.dim = int(model.config.hidden_size)

    @torch.inference_mode()
    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        batch = self.tokenizer(
            [QUERY_PREFIX + text for text in texts],
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()

    def embed(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embeddings in input order; batches are built from length-sorted texts (less padding)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            out[index] = self._embed_batch([texts[i] for i in index])
            if progress:
                progress(len(index))
        return out
