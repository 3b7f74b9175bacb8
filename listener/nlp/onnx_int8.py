"""int8 for CPUs without hardware bf16: the adapted encoder run by ONNX Runtime.

torch's dynamic int8 gives each weight matrix one scale and runs its layers unfused: on UMSAB val
its embeddings drift to cosine ~0.90 of fp32's. ONNX Runtime's (per-channel weight scales, fused
attention, the bottom `FLOAT_LAYERS` layers kept in fp32) stays at ~0.98 and is faster
(benchmarks/classify_speed.py; figures in benchmarks/results/adapter_sweep.md).

The model is built from the fp32 encoder with its adapter merged (export, graph fusion,
quantisation: ~10 s, 1.8 GB at the peak, once) into the cache, named by the adapter's digest, so
another adapter gets its own; `listener model prepare` builds it where `auto` picks int8.
"""

from __future__ import annotations

import fcntl
import logging
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import BertModel

log = logging.getLogger(__name__)
# Raise when the recipe below changes: files built by an older one are then rebuilt, not reused.
RECIPE = 2
# What heads trained on this model's embeddings record (`HeadSpec.features`): heads fitted on
# torch's int8 or on another recipe are refused rather than read embeddings they never saw.
FEATURES = f"int8 (ONNX Runtime, recipe {RECIPE})"
INPUTS = ("inputs_embeds", "attention_mask")


def _int8_prefix(encoder: Path) -> str:
    return f"{encoder.name}-int8-"


def int8_model_path(encoder: Path, adapter_digest: str | None, float_layers: int) -> Path:
    """Beside the `encoder` folder it is built from, named by all that shapes it."""
    shaped_by = f"{adapter_digest or 'no-adapter'}-fp32x{float_layers}-r{RECIPE}"
    return encoder.parent / f"{_int8_prefix(encoder)}{shaped_by}.onnx"


def remove_stale_int8_models(
    encoder: Path, current: Path, progress: Callable[[str], None] = log.info
) -> None:
    """Remove the int8 models (and lock files) of `encoder` other than `current`: built for
    another adapter, recipe or number of float layers by earlier releases, 32 MB each."""
    keep = {current.name, current.name + ".lock"}
    for path in sorted(encoder.parent.iterdir()):
        if path.name.startswith(_int8_prefix(encoder)) and path.name not in keep and path.is_file():
            path.unlink(missing_ok=True)
            progress(f"Removed {path.name}: an int8 model of an earlier adapter or recipe.")


class _LastHiddenState(torch.nn.Module):
    """The encoder as ONNX sees it: word vectors and mask in, token states out.

    The word embeddings (250,002 x 384 fp32, 384 MB of the encoder's 470) stay outside: looked
    up in their memory-mapped file, only the rows of pieces seen are read, and the model that is
    exported, fused and quantised is an 86 MB graph (a 4.5 GB build step with them)."""

    def __init__(self, model: BertModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask)
        return states.last_hidden_state


def _export(model: BertModel, path: Path) -> None:
    # ONNX Runtime fuses attention written out as matmuls and a softmax, not torch's sdpa call.
    model.set_attn_implementation("eager")
    ids = torch.tensor([[0, 6, 2], [0, 7, 2]])  # two rows: no batch size is fixed in the graph
    example = model.embeddings.word_embeddings(ids), torch.ones_like(ids)
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its successor
        torch.onnx.export(
            _LastHiddenState(model),
            example,
            str(path),
            input_names=list(INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=dict.fromkeys((*INPUTS, "last_hidden_state"), axes),
            opset_version=17,
            dynamo=False,
        )


def _fuse(source: Path, target: Path, heads: int, hidden: int) -> int:
    """Fused attention, GELU and layer norms; returns how many attention blocks were fused."""
    from onnxruntime.transformers.optimizer import optimize_model

    fused = optimize_model(
        str(source), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0
    )
    fused.save_model_to_file(str(target))
    return int(fused.get_fused_operator_statistics().get("Attention", 0))


def _float_nodes(path: Path, float_layers: int) -> list[str]:
    """The nodes of the bottom `float_layers` layers: their activations have outliers that one
    int8 scale per tensor flattens (0.02 UMSAB macro-F1 in torch; see embedder.FLOAT_LAYERS)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    attention = [node.name for node in graph.node if node.op_type == "Attention"]  # in layer order
    layers = tuple(f"/layer.{i}/" for i in range(float_layers))
    matmuls = [node.name for node in graph.node if any(layer in node.name for layer in layers)]
    return attention[:float_layers] + matmuls


def build_int8_model(
    model: BertModel, target: Path, float_layers: int, progress: Callable[[str], None] = log.info
) -> None:
    """Export `model` (adapter merged, fp32), fuse and quantise it into `target`, atomically,
    unless another process built it meanwhile."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # Workers starting together build it once: the others wait here, then find it built.
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_file():
            _build(model, target, float_layers, progress)


def _build(
    model: BertModel, target: Path, float_layers: int, progress: Callable[[str], None]
) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    progress(f"Building the int8 encoder for ONNX Runtime in {target.parent} (once, ~10 s) …")
    config = model.config
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        exported, fused, quantised = (Path(tmp) / name for name in ("e.onnx", "f.onnx", "q.onnx"))
        _export(model, exported)
        blocks = _fuse(exported, fused, config.num_attention_heads, config.hidden_size)
        if blocks != config.num_hidden_layers:
            raise RuntimeError(
                f"ONNX Runtime fused {blocks} of {config.num_hidden_layers} attention blocks:"
                " this onnxruntime/transformers pair exports another graph; use model.precision"
                " fp32 or bf16, or the versions it was made with (onnxruntime 1.32, onnx 1.23,"
                " transformers 5.24, torch 2.13)"
            )
        quantize_dynamic(
            str(fused),
            str(quantised),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=_float_nodes(fused, float_layers),
            extra_options={
                "DefaultTensorType": 1
            },  # fp32, where shape inference stops at fused ops
        )
        quantised.replace(target)
    progress(f"int8 encoder ready: {target}")


class OnnxInt8Encoder:
    """Token states from the int8 model, as the torch encoder's `last_hidden_state`."""

    def __init__(
        self, path: Path, word_embeddings: torch.nn.Embedding, threads: int | None = None
    ) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Intra-op threads spin between calls (ORT's default). The int8 model embeds one text per
        # call, so they stay hot: 512 UMSAB val texts on 2 cores at 130-139 texts/s, against
        # 89-90 with `session.intra_op.allow_spinning` 0, for the same CPU time (7.3-7.9 s).
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.word_embeddings = word_embeddings
        self.path = path

    @torch.inference_mode()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        feeds = {
            "inputs_embeds": self.word_embeddings(input_ids).numpy(),
            "attention_mask": attention_mask.numpy().astype(np.int64, copy=False),
        }
        return torch.from_numpy(self.session.run(None, feeds)[0])
