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
TARGETS = ("query", "value")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class AdapterSpec:
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.1
    lr: float = 3e-4
    head_lr: float = 1e-3
    batch_size: int = 32
    max_tokens: int = 96
    epochs: int = 3


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
        for layer_index, layer in enumerate(model.encoder.layer):
            for target in meta["targets"]:
                key = f"encoder.layer.{layer_index}.attention.self.{target}"
                delta = tensors[f"{key}.lora_B"] @ tensors[f"{key}.lora_A"]
                linear = getattr(layer.attention.self, target)
                # The base weight may be a read-only memory map: replace it, don't add in place.
                linear.weight = torch.nn.Parameter(
                    linear.weight + scale * delta, requires_grad=False
                )
    return str(meta.get("version", "1"))


def _export_lora(peft_model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """peft's lora_A/lora_B weights under stable names (`encoder.layer.N.attention.self.query`)."""
    exported = {}
    for name, tensor in peft_model.state_dict().items():
        if "lora_" not in name:
            continue
        module = name.split("encoder.layer.", 1)[1]
        layer, rest = module.split(".", 1)
        target = next(t for t in TARGETS if f".{t}." in f".{rest}")
        which = "lora_A" if "lora_A" in rest else "lora_B"
        exported[f"encoder.layer.{layer}.attention.self.{target}.{which}"] = (
            tensor.detach().contiguous().clone()
        )
    return exported


class _Classifier(torch.nn.Module):
    def __init__(self, encoder: torch.nn.Module, hidden: int, labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Linear(hidden, labels)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
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
    """Fine-tune LoRA + a linear head on sentiment; write the best epoch's adapter to `output`."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    from listener.nlp.embedder import QUERY_PREFIX, load_bert

    torch.manual_seed(seed)
    rng = random.Random(seed)  # noqa: S311  (shuffling, not cryptography)
    tokenizer = AutoTokenizer.from_pretrained(encoder_directory)
    base = load_bert(encoder_directory)
    for parameter in base.parameters():
        parameter.requires_grad = False
    lora = LoraConfig(
        r=spec.rank, lora_alpha=spec.alpha, lora_dropout=spec.dropout, target_modules=list(TARGETS)
    )
    model = _Classifier(get_peft_model(base, lora), base.config.hidden_size, 3)
    examples = [
        (text, int(label))
        for texts, labels in train.values()
        for text, label in zip(texts, labels, strict=True)
    ]
    steps_per_epoch = math.ceil(len(examples) / spec.batch_size)
    total = steps_per_epoch * spec.epochs
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

    def encode(texts: list[str]) -> dict[str, torch.Tensor]:
        return tokenizer(
            [QUERY_PREFIX + t for t in texts],
            padding=True,
            truncation=True,
            max_length=spec.max_tokens,
            return_tensors="pt",
        )

    def evaluate() -> dict:
        model.eval()
        scores = {}
        with torch.inference_mode():
            for language, (texts, labels) in val.items():
                predicted = np.concatenate(
                    [
                        model(encode(texts[i : i + 64])).argmax(1).numpy()
                        for i in range(0, len(texts), 64)
                    ]
                )
                scores[language] = round(macro_f1(labels, predicted, 3), 4)
        model.train()
        return {"languages": scores, "average": round(float(np.mean(list(scores.values()))), 4)}

    checkpoints.mkdir(parents=True, exist_ok=True)
    output.mkdir(parents=True, exist_ok=True)
    history, best = [], -1.0
    model.train()
    step = 0
    for epoch in range(1, spec.epochs + 1):
        rng.shuffle(examples)
        for start in range(0, len(examples), spec.batch_size):
            chunk = examples[start : start + spec.batch_size]
            logits = model(encode([t for t, _ in chunk]))
            loss = torch.nn.functional.cross_entropy(logits, torch.tensor([y for _, y in chunk]))
            loss.backward()
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            step += 1
            if step % 20 == 0:
                progress(f"epoch {epoch} step {step}/{total} loss {loss.item():.3f}")
        result = evaluate()
        history.append({"epoch": epoch, **result})
        progress(f"epoch {epoch}: val macro-F1 {result['average']:.4f} {result['languages']}")
        tensors = _export_lora(model.encoder)
        meta = {
            "rank": spec.rank,
            "alpha": spec.alpha,
            "targets": list(TARGETS),
            "version": "1",
            "epoch": epoch,
            "val_macro_f1": result["average"],
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
