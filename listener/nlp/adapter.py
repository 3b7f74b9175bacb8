"""A LoRA adapter that fine-tunes the shared encoder for sentiment, shipped as a few MB.

Trained with `peft` (rank-r updates of the attention query and value projections) on UMSAB train,
selected on val. At load time the low-rank updates are merged into the encoder's weights before
int8 quantisation, so inference costs nothing extra and needs no `peft`.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import BertModel

from listener.nlp.heads import WEIGHTS_DIR, macro_f1

ADAPTER_NAME = "adapter"
# peft matches module names by suffix: the attention projections and every dense layer.
TARGETS = ("query", "key", "value", "dense")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class AdapterSpec:
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.1
    train_layers: int = 4  # LoRA on the top layers only; the frozen ones below run once
    lr: float = 5e-4
    head_lr: float = 2e-3
    batch_size: int = 32
    max_tokens: int = 96
    epochs: int = 4


def adapter_paths(directory: Path = WEIGHTS_DIR) -> tuple[Path, Path]:
    return directory / f"{ADAPTER_NAME}.safetensors", directory / f"{ADAPTER_NAME}.json"


def apply_adapter(model: BertModel, directory: Path = WEIGHTS_DIR) -> str | None:
    """Merge the shipped adapter into `model` in place; its version string, or None if none."""
    weights_path, meta_path = adapter_paths(directory)
    if not weights_path.is_file():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    tensors = load_file(str(weights_path))
    scale = meta["alpha"] / meta["rank"]
    with torch.no_grad():
        for key in sorted(k for k in tensors if k.endswith(".lora_A")):
            path = key.removesuffix(".lora_A")
            linear = model.get_submodule(path)
            delta = tensors[f"{path}.lora_B"] @ tensors[key]
            # The base weight may be a read-only memory map: replace it, don't add in place.
            linear.weight = torch.nn.Parameter(linear.weight + scale * delta, requires_grad=False)
    return str(meta.get("version", "1"))


def _export_lora(peft_model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """peft's lora_A/lora_B weights under the encoder's own module paths."""
    exported = {}
    for name, tensor in peft_model.state_dict().items():
        if "lora_A" not in name and "lora_B" not in name:
            continue
        module = "encoder." + name.split(".encoder.", 1)[1]
        which = "lora_A" if ".lora_A." in module else "lora_B"
        path = module.split(f".{which}.", 1)[0]
        exported[f"{path}.{which}"] = tensor.detach().contiguous().clone()
    return exported


@dataclass
class _Cached:
    """The frozen lower layers' output for each text (fp16, unpadded) and its label."""

    states: list[torch.Tensor]
    labels: list[int]


def _lower_states(  # type: ignore[no-untyped-def]
    model: BertModel, tokenizer, texts: list[str], spec: AdapterSpec, start: int, *, progress
) -> list[torch.Tensor]:
    from listener.nlp.embedder import QUERY_PREFIX

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    states: list[torch.Tensor | None] = [None] * len(texts)
    all_layers = model.encoder.layer
    model.encoder.layer = all_layers[:start]  # the top layers' output is not needed here
    with torch.inference_mode():
        for batch_start in range(0, len(order), 64):
            index = order[batch_start : batch_start + 64]
            batch = tokenizer(
                [QUERY_PREFIX + texts[i] for i in index],
                padding=True,
                truncation=True,
                max_length=spec.max_tokens,
                return_tensors="pt",
            )
            hidden = model(**batch, output_hidden_states=True).hidden_states[start]
            lengths = batch["attention_mask"].sum(1).tolist()
            for row, i in enumerate(index):
                states[i] = hidden[row, : lengths[row]].to(torch.float16).clone()
            if batch_start % 1280 == 0:
                progress(f"  lower layers: {batch_start + len(index)}/{len(texts)}")
    model.encoder.layer = all_layers
    return states  # type: ignore[return-value]


def _pad(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(s.shape[0] for s in states)
    hidden = torch.zeros(len(states), longest, states[0].shape[1])
    mask = torch.zeros(len(states), longest)
    for row, state in enumerate(states):
        hidden[row, : state.shape[0]] = state.float()
        mask[row, : state.shape[0]] = 1.0
    return hidden, mask


class _TopClassifier(torch.nn.Module):
    """The encoder's top layers (with LoRA) + mean pooling + a linear head."""

    def __init__(self, layers: list[torch.nn.Module], hidden: int, labels: int) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)
        self.head = torch.nn.Linear(hidden, labels)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        additive = (1.0 - mask)[:, None, None, :] * torch.finfo(hidden.dtype).min
        for layer in self.layers:
            out = layer(hidden, attention_mask=additive)
            hidden = out[0] if isinstance(out, tuple) else out
        weights = mask.unsqueeze(-1)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        return self.head(torch.nn.functional.normalize(pooled, dim=-1) * 10.0)


def train_adapter(  # noqa: PLR0915  (one training loop, read top to bottom)
    encoder_directory: Path,
    train: dict[str, tuple[list[str], np.ndarray]],
    val: dict[str, tuple[list[str], np.ndarray]],
    *,
    spec: AdapterSpec,
    seed: int,
    output: Path,
    checkpoints: Path,
    progress: Progress = print,
) -> dict:
    """Fine-tune LoRA on the top layers + a linear head on sentiment; keep the best epoch on val.

    The frozen lower layers run once over every text (their outputs are cached), so each step
    only runs the top `spec.train_layers` layers forward and backward: ~3x faster on a CPU.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    from listener.nlp.embedder import load_bert

    torch.manual_seed(seed)
    rng = random.Random(seed)  # noqa: S311  (shuffling, not cryptography)
    tokenizer = AutoTokenizer.from_pretrained(encoder_directory)
    base = load_bert(encoder_directory)
    base.config._attn_implementation = "eager"
    for parameter in base.parameters():
        parameter.requires_grad = False
    layers = len(base.encoder.layer)
    start = layers - spec.train_layers
    progress(f"Caching the output of the {start} frozen layers …")
    cached = {}
    for split, data in (("train", train), ("val", val)):
        texts = [t for texts, _ in data.values() for t in texts]
        labels = [int(y) for _, ys in data.values() for y in ys]
        cached[split] = _Cached(
            _lower_states(base, tokenizer, texts, spec, start, progress=progress), labels
        )
    val_languages = [lang for lang, (texts, _) in val.items() for _ in texts]
    lora = LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(TARGETS),
        layers_to_transform=list(range(start, layers)),
    )
    peft_model = get_peft_model(base, lora)
    model = _TopClassifier(
        [base.encoder.layer[i] for i in range(start, layers)], base.config.hidden_size, 3
    )
    examples = list(range(len(cached["train"].labels)))
    total = math.ceil(len(examples) / spec.batch_size) * spec.epochs
    optimiser = torch.optim.AdamW(
        [
            {"params": [p for n, p in model.named_parameters() if "lora_" in n], "lr": spec.lr},
            {"params": model.head.parameters(), "lr": spec.head_lr},
        ],
        weight_decay=0.01,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / 50) * max(0.0, 1 - step / total)
    )

    def evaluate() -> dict:
        model.eval()
        predicted = []
        with torch.inference_mode():
            states = cached["val"].states
            for i in range(0, len(states), 128):
                predicted += model(*_pad(states[i : i + 128])).argmax(1).tolist()
        model.train()
        gold = np.array(cached["val"].labels)
        guess = np.array(predicted)
        scores = {}
        for language in val:
            rows = np.array([lang == language for lang in val_languages])
            scores[language] = round(macro_f1(gold[rows], guess[rows], 3), 4)
        return {"languages": scores, "average": round(float(np.mean(list(scores.values()))), 4)}

    checkpoints.mkdir(parents=True, exist_ok=True)
    output.mkdir(parents=True, exist_ok=True)
    history, best = [], -1.0
    model.train()
    step = 0
    for epoch in range(1, spec.epochs + 1):
        rng.shuffle(examples)
        for batch_start in range(0, len(examples), spec.batch_size):
            chunk = examples[batch_start : batch_start + spec.batch_size]
            logits = model(*_pad([cached["train"].states[i] for i in chunk]))
            gold = torch.tensor([cached["train"].labels[i] for i in chunk])
            loss = torch.nn.functional.cross_entropy(logits, gold)
            loss.backward()
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            step += 1
            if step % 50 == 0:
                progress(f"epoch {epoch} step {step}/{total} loss {loss.item():.3f}")
        result = evaluate()
        history.append({"epoch": epoch, **result})
        progress(f"epoch {epoch}: val macro-F1 {result['average']:.4f} {result['languages']}")
        tensors = _export_lora(peft_model)
        meta = {
            "rank": spec.rank,
            "alpha": spec.alpha,
            "targets": list(TARGETS),
            "layers": list(range(start, layers)),
            "version": "1",
            "epoch": epoch,
            "val_macro_f1_linear_head": result["average"],
            "spec": vars(spec),
            "seed": seed,
            "trained_with": f"listener train adapter --epochs {spec.epochs} --seed {seed}",
        }
        save_file(tensors, str(checkpoints / f"epoch{epoch}.safetensors"))
        (checkpoints / f"epoch{epoch}.json").write_text(json.dumps(meta, indent=2))
        if result["average"] > best:
            best = result["average"]
            weights_path, meta_path = adapter_paths(output)
            save_file(tensors, str(weights_path))
            meta_path.write_text(json.dumps({**meta, "history": history}, indent=2) + "\n")
    return {"history": history, "best": best}
