"""Sentence embeddings from the e5 encoder: one pass per text, shared by every task head."""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load, load_file
from transformers import AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from listener.nlp.encoder import ENCODER_NAME
from listener.nlp.heads import WEIGHTS_DIR
from listener.nlp.heap import release_free_memory
from listener.nlp.onnx_int8 import FEATURES, OnnxInt8Encoder, build_int8_model, int8_model_path
from listener.nlp.precision import resolve_precision

log = logging.getLogger(__name__)
QUERY_PREFIX = "query: "  # how e5 was trained for classification-style inputs
MAX_TOKENS = 128  # mentions are short; long reviews keep their first 128 pieces
# int8 in the two bottom layers costs the adapted encoder 0.02 UMSAB macro-F1 in torch (their
# activations have outliers that one scale per tensor flattens); above them it costs ~0. With
# ONNX Runtime, int8 everywhere keeps cosine 0.92 of fp32, these two in fp32 0.98. Measured on val.
FLOAT_LAYERS = 2
# int8 embeds one mention per call. Its activations are quantised with one scale per call, so in
# a batch a mention's result would depend on its neighbours (held-out sentiment labels change
# with the batching); alone it does not, and ONNX Runtime loses little without batches, having
# no padding to compute: 2 threads, 512 UMSAB val tweets: 1 184-224/s, 16 201-234/s, 64 173/s.
INT8_BATCH = 1
ADAPTER_NAME = "adapter"


def bert_from_state(config: BertConfig, state: Mapping[str, torch.Tensor]) -> BertModel:
    """The encoder without a pooler, its weights taken as they are from `state`.

    Built on the meta device and filled with `assign=True`, so no random initialisation runs and
    no second copy of the weights is made.
    """
    with torch.device("meta"):
        model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict(state, assign=True, strict=True)
    positions = torch.arange(config.max_position_embeddings).expand((1, -1))
    model.embeddings.register_buffer("position_ids", positions, persistent=False)
    model.embeddings.register_buffer(
        "token_type_ids", torch.zeros_like(positions), persistent=False
    )
    return model.eval()


def load_bert(directory: Path) -> BertModel:
    """The cached encoder; its safetensors file is memory-mapped, so only the embedding rows of
    pieces actually seen are paged in."""
    state = load_file(str(directory / "model.safetensors"))
    return bert_from_state(BertConfig.from_pretrained(directory), state)


def adapter_paths(directory: Path = WEIGHTS_DIR) -> tuple[Path, Path]:
    return directory / f"{ADAPTER_NAME}.safetensors", directory / f"{ADAPTER_NAME}.json"


@dataclass(frozen=True)
class AppliedAdapter:
    version: str
    digest: str  # of the weights and their scale: two trainings of one version differ here

    def __str__(self) -> str:
        return f"adapter {self.version} ({self.digest})"


def apply_adapter(model: BertModel, directory: Path = WEIGHTS_DIR) -> AppliedAdapter | None:
    """Merge a LoRA adapter (`listener train adapter`) into `model` in place.

    Returns what was merged, or None if `directory` holds no adapter. Merged before int8
    quantisation, the adapter costs nothing at inference and needs no `peft`.
    """
    weights_path, meta_path = adapter_paths(directory)
    if not weights_path.is_file():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    raw = weights_path.read_bytes()
    tensors = load(raw)
    scale = meta["alpha"] / meta["rank"]
    with torch.no_grad():
        for key in sorted(k for k in tensors if k.endswith(".lora_A")):
            path = key.removesuffix(".lora_A")
            linear = model.get_submodule(path)
            delta = tensors[f"{path}.lora_B"].float() @ tensors[key].float()
            # The base weight may be a read-only memory map: replace it, don't add in place.
            linear.weight = torch.nn.Parameter(linear.weight + scale * delta, requires_grad=False)
    # The scale changes the merged weights as much as the file does.
    digest = hashlib.sha256(raw)
    digest.update(f"scale={scale!r}".encode())
    return AppliedAdapter(str(meta.get("version", "1")), digest.hexdigest()[:12])


def sentence_embeddings(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states under `mask` (batch x tokens), as unit vectors: how e5 pools."""
    hidden = hidden.float()  # pool in fp32 whatever the encoder computed in
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def _layers_in_bf16(model: BertModel) -> None:
    """The 12 layers in bf16. The word embeddings stay fp32 and memory-mapped, so only the rows
    of pieces actually seen are read (converting all 250k rows cost ~300 MB of peak memory)."""
    model.encoder.to(torch.bfloat16)
    model.embeddings.register_forward_hook(lambda _module, _inputs, out: out.to(torch.bfloat16))


def quantise_linear_layers(model: torch.nn.Module, float_layers: int = 0) -> None:
    """int8 weights (dynamic activations) for the Linear layers: ~2x faster on CPU.

    The Linear layers of the bottom `float_layers` layers of a BertModel stay fp32.
    """
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
        precision: str = "auto",
        max_tokens: int = MAX_TOKENS,
        adapter_dir: Path | None = WEIGHTS_DIR,
        *,
        float_layers: int = FLOAT_LAYERS,
        progress: Callable[[str], None] = log.warning,
    ) -> None:
        """`adapter_dir`: where a LoRA adapter is merged from, if one is there; None for none.

        `precision`: one of `PRECISIONS`; int8 runs the encoder in ONNX Runtime, the layers
        above the bottom `float_layers` in int8, building that model first if the cache has
        none for this adapter (`progress` hears of it).
        """
        if threads:
            torch.set_num_threads(threads)
        hf_logging.set_verbosity_error()  # the load report would list the unused pooler
        hf_logging.disable_progress_bar()
        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(directory)
        model = load_bert(directory)
        self.adapter = apply_adapter(model, adapter_dir) if adapter_dir else None
        self.precision = resolve_precision(precision)
        self.dim = int(model.config.hidden_size)
        self.max_tokens = max_tokens
        self.model: BertModel | None = model
        self.int8: OnnxInt8Encoder | None = None
        if self.precision == "int8":
            self.int8 = self._int8_encoder(directory, model, float_layers, threads, progress)
            self.model = None  # but for its memory-mapped word embeddings, kept by self.int8
        elif self.precision == "bf16":
            _layers_in_bf16(model)

    def _int8_encoder(
        self,
        directory: Path,
        model: BertModel,
        float_layers: int,
        threads: int | None,
        progress: Callable[[str], None],
    ) -> OnnxInt8Encoder:
        """The cached int8 model of this encoder and adapter; built first if missing or
        damaged."""
        digest = self.adapter.digest if self.adapter else None
        path = int8_model_path(directory, digest, float_layers)
        words = model.embeddings.word_embeddings
        if path.is_file():
            try:
                return OnnxInt8Encoder(path, words, threads)
            except ImportError:
                raise
            except Exception as error:  # noqa: BLE001 (onnxruntime's own types, from Exception)
                progress(f"The int8 encoder {path} cannot be loaded ({error}); building it again.")
                path.unlink(missing_ok=True)
        build_int8_model(model, path, float_layers, progress)
        return OnnxInt8Encoder(path, words, threads)

    @property
    def features(self) -> str:
        """Which embeddings these are, as heads record it (`HeadSpec.features`): bf16 agrees
        with fp32 within cosine 0.9999, so both are "fp32"."""
        return FEATURES if self.precision == "int8" else "fp32"

    @property
    def encoder_id(self) -> str:
        """What the heads were trained on: heads must match it (`TransformerClassifier` checks).

        It names the adapter's digest, not only its version: heads fitted on another training
        of the same adapter version would read embeddings they never saw, without an error.
        """
        return ENCODER_NAME + (f" + {self.adapter}" if self.adapter else "")

    @torch.inference_mode()
    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        batch = self.tokenizer(
            [QUERY_PREFIX + text for text in texts],
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )
        if self.int8 is not None:
            hidden = self.int8(batch["input_ids"], batch["attention_mask"])
        else:
            assert self.model is not None
            hidden = self.model(**batch).last_hidden_state
        return sentence_embeddings(hidden, batch["attention_mask"]).numpy()

    def embed(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embeddings in input order; batches are built from length-sorted texts (less padding)."""
        if self.int8 is not None:
            batch_size = min(batch_size, INT8_BATCH)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            out[index] = self._embed_batch([texts[i] for i in index])
            if progress:
                progress(len(index))
        # The batches' buffers, sized by the longest shapes so far, would otherwise stay with the
        # process: over a large file the peak creeps up call after call.
        release_free_memory()
        return out
