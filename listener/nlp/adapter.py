"""A LoRA adapter that fine-tunes the shared encoder for every head at once, shipped as a few MB.

Trained with `peft` (rank-r updates of every attention and dense projection) on three tasks at
once, so the one encoder pass per mention keeps serving all heads: sentiment on UMSAB train plus
the customer-service set's training part, intent and urgency on that part. Selected on UMSAB val.
At load time `embedder.apply_adapter` merges the low-rank updates into the encoder's weights
before int8 quantisation, so inference costs nothing extra and needs no `peft`.

Runs on a CPU (slow: use `--train-layers 4`) or, from a bundle (`listener.nlp.bundle`), on a GPU
machine that has only torch, transformers and peft: `python -m listener.nlp.adapter --help`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import BertModel

from listener.nlp.bundle import UNLABELLED, Bundle, Split, load_bundle
from listener.nlp.embedder import adapter_paths, sentence_embeddings
from listener.nlp.heads import INPUT_SCALE, macro_f1
from listener.nlp.heap import pin_mmap_threshold
from listener.nlp.precision import native_bf16

# peft matches module names by suffix: the attention projections and every dense layer.
TARGETS = ("query", "key", "value", "dense")
Progress = Callable[[str], None]
Autocast = Callable[[], AbstractContextManager[object]]
LENGTH_GROUP = 50  # batches sorted by length together


@dataclass(frozen=True)
class AdapterSpec:
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.0  # peft's LoRA dropout costs ~40 % of a CPU step (train_step_time.py)
    train_layers: int = 12  # LoRA on the top layers; the frozen ones below run once (cached)
    lr: float = 5e-4
    head_lr: float = 2e-3
    batch_size: int = 32
    epochs: int = 6
    cs_weight: float = 1.0  # weight of the intent and urgency losses
    cs_repeat: int = 4  # customer-service examples are seen this many times per epoch
    label_smoothing: float = 0.0
    ema: float = 0.0  # decay of an exponential moving average of the trained weights; 0 = off


def length_batches(
    lengths: Sequence[int], size: int, rng: random.Random | None, group: int | None = None
) -> list[list[int]]:
    """Positions in batches of similar length, so that little of a step is padding.

    Without `group`, sorted by length once (the same batches every time). With it, shuffled,
    then sorted within runs of `group` batches (as `transformers`' group_by_length), so the
    batches still change from epoch to epoch. The batches' order is shuffled given `rng`.
    """
    order = list(range(len(lengths)))
    span = len(order) if group is None else group * size
    if rng is not None and group is not None:
        rng.shuffle(order)
    runs = [
        sorted(order[i : i + span], key=lengths.__getitem__) for i in range(0, len(order), span)
    ]
    batches = [run[i : i + size] for run in runs for i in range(0, len(run), size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def _export_lora(peft_model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """peft's lora_A/lora_B weights (fp16) under the encoder's own module paths."""
    exported = {}
    for name, tensor in peft_model.state_dict().items():
        if "lora_A" not in name and "lora_B" not in name:
            continue
        module = "encoder." + name.split(".encoder.", 1)[1]
        which = "lora_A" if ".lora_A." in module else "lora_B"
        path = module.split(f".{which}.", 1)[0]
        exported[f"{path}.{which}"] = tensor.detach().to("cpu", torch.float16).contiguous()
    return exported


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (1.0 - mask)[:, None, None, :].to(dtype) * torch.finfo(dtype).min


def _run_layers(
    layers: torch.nn.ModuleList | list, hidden: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    additive = _additive(mask, hidden.dtype)
    for layer in layers:
        out = layer(hidden, attention_mask=additive)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def pad_ids(
    rows: Sequence[Sequence[int] | np.ndarray], pad_id: int, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids padded to the longest row, and the attention mask."""
    longest = max(len(row) for row in rows)
    ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), longest)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1.0
    return ids.to(device), mask.to(device)


@torch.inference_mode()
def _lower_states(
    model: BertModel, split: Split, start: int, pad_id: int, device: str
) -> list[torch.Tensor]:
    """The frozen part's output per text (fp16, unpadded): embeddings + layers below `start`."""
    order = sorted(range(len(split)), key=lambda i: len(split.ids[i]))
    states: list[torch.Tensor | None] = [None] * len(split)
    for batch_start in range(0, len(order), 128):
        index = order[batch_start : batch_start + 128]
        ids, mask = pad_ids([split.ids[i] for i in index], pad_id, device)
        hidden = _run_layers(model.encoder.layer[:start], model.embeddings(input_ids=ids), mask)
        for row, i in enumerate(index):
            states[i] = hidden[row, : len(split.ids[i])].to(torch.float16).clone()
    return states  # type: ignore[return-value]


def _pad_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(s.shape[0] for s in states)
    hidden = states[0].new_zeros(len(states), longest, states[0].shape[1], dtype=torch.float32)
    mask = states[0].new_zeros(len(states), longest, dtype=torch.float32)
    for row, state in enumerate(states):
        hidden[row, : state.shape[0]] = state.float()
        mask[row, : state.shape[0]] = 1.0
    return hidden, mask


class _MultiTaskTop(torch.nn.Module):
    """The encoder's trained layers (with LoRA), then one linear head per task on the sentence
    embedding, scaled as `heads.Head` scales its input."""

    def __init__(self, layers: list[torch.nn.Module], hidden: int, labels: dict[str, int]) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)
        self.heads = torch.nn.ModuleDict(
            {task: torch.nn.Linear(hidden, n) for task, n in labels.items()}
        )

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        features = sentence_embeddings(_run_layers(self.layers, hidden, mask), mask) * INPUT_SCALE
        return {task: head(features) for task, head in self.heads.items()}


def _loss(
    logits: dict[str, torch.Tensor], gold: dict[str, torch.Tensor], spec: AdapterSpec
) -> torch.Tensor:
    """Cross-entropy of each task over the examples labelled for it (tweets: sentiment only)."""
    total = logits["sentiment"].new_zeros(())
    for task, task_logits in logits.items():
        labelled = gold[task] != UNLABELLED
        if labelled.any():
            weight = 1.0 if task == "sentiment" else spec.cs_weight
            loss = torch.nn.functional.cross_entropy(
                task_logits[labelled], gold[task][labelled], label_smoothing=spec.label_smoothing
            )
            total = total + weight * loss
    return total


class _MovingAverage:
    """An exponential moving average of the trained weights, evaluated and exported in their
    place: it smooths the epoch-to-epoch swings of a small validation score (Polyak averaging).
    The decay ramps up from 0.1 so the early, random weights are forgotten quickly."""

    def __init__(self, parameters: list[torch.nn.Parameter], decay: float) -> None:
        self.parameters = parameters
        self.decay = decay
        self.shadow = [p.detach().clone() for p in parameters]
        self.updates = 0

    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            torch._foreach_lerp_(self.shadow, [p.detach() for p in self.parameters], 1 - decay)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged weights in place of the trained ones, for evaluation and export."""
        with torch.no_grad():
            trained = [p.detach().clone() for p in self.parameters]
            torch._foreach_copy_(self.parameters, self.shadow)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.parameters, trained)


def _predict(
    model: _MultiTaskTop, states: list[torch.Tensor], autocast: Autocast
) -> dict[str, np.ndarray]:
    model.eval()
    predicted: dict[str, list[int]] = {task: [] for task in model.heads}
    with torch.inference_mode(), autocast():
        for i in range(0, len(states), 256):
            for task, logits in model(*_pad_states(states[i : i + 256])).items():
                predicted[task] += logits.argmax(1).tolist()
    model.train()
    return {task: np.array(values) for task, values in predicted.items()}


def _evaluate(
    model: _MultiTaskTop,
    bundle: Bundle,
    cached: dict[str, list[torch.Tensor]],
    autocast: Autocast,
) -> dict:
    """UMSAB val macro-F1 per language (the selection score) and the CS dev part's accuracy."""
    val = bundle.splits["val"]
    guess = _predict(model, cached["val"], autocast)["sentiment"]
    gold = val.labels["sentiment"]
    groups = np.array(val.groups)
    languages = {
        language: round(macro_f1(gold[groups == language], guess[groups == language], 3), 4)
        for language in sorted(set(val.groups))
    }
    result = {"average": round(float(np.mean(list(languages.values()))), 4), "languages": languages}
    if "cs_dev" in cached and len(bundle.splits["cs_dev"]):
        dev = bundle.splits["cs_dev"]
        predicted = _predict(model, cached["cs_dev"], autocast)
        result["cs_dev_accuracy"] = {
            task: round(float((predicted[task] == dev.labels[task]).mean()), 4)
            for task in predicted
        }
    return result


def train_adapter(  # noqa: PLR0915  (one training loop, read top to bottom)
    bundle: Bundle,
    *,
    spec: AdapterSpec,
    seed: int,
    output: Path,
    checkpoints: Path | None = None,
    device: str = "cpu",
    trained_with: str = "",
    progress: Progress = print,
) -> dict:
    """Fine-tune LoRA + one linear head per task; keep the epoch with the best UMSAB val score.

    The frozen part (embeddings and the layers below the trained ones) runs once over every text
    and its output is cached, so each step runs only the trained layers forward and backward.
    """
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    rng = random.Random(seed)  # noqa: S311  (shuffling, not cryptography)
    if not device.startswith("cuda"):
        pin_mmap_threshold()
    base = bundle.encoder().to(device)
    base.config._attn_implementation = "sdpa" if device.startswith("cuda") else "eager"
    base.eval()
    for parameter in base.parameters():
        parameter.requires_grad = False
    layers = len(base.encoder.layer)
    start = layers - spec.train_layers
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    # bf16 autocast on a GPU, and on a CPU that multiplies bf16 in hardware (~1.3x fp32's steps).
    mixed = device_type == "cuda" or native_bf16()
    progress(
        f"Caching the frozen part's output (embeddings + {start} layers) on {device};"
        f" training in {'bf16 autocast' if mixed else 'fp32'} …"
    )
    cached = {
        name: _lower_states(base, split, start, bundle.pad_id, device)
        for name, split in bundle.splits.items()
    }
    lora = LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(TARGETS),
        layers_to_transform=list(range(start, layers)),
    )
    peft_model = get_peft_model(base, lora)
    labels = {task: len(names) for task, names in bundle.label_names.items()}
    model = _MultiTaskTop(
        [base.encoder.layer[i] for i in range(start, layers)], base.config.hidden_size, labels
    )
    model.to(device).train()
    train = bundle.splits["train"]
    examples = [
        i
        for i in range(len(train))
        for _ in range(spec.cs_repeat if train.groups[i] == "cs" else 1)
    ]
    gold_all = {task: torch.from_numpy(values).to(device) for task, values in train.labels.items()}
    total = math.ceil(len(examples) / spec.batch_size) * spec.epochs
    optimiser = torch.optim.AdamW(
        [
            {"params": [p for n, p in model.named_parameters() if "lora_" in n], "lr": spec.lr},
            {"params": model.heads.parameters(), "lr": spec.head_lr},
        ],
        weight_decay=0.01,
    )
    average = (
        _MovingAverage([p for p in model.parameters() if p.requires_grad], spec.ema)
        if spec.ema
        else None
    )
    warmup = max(1, total // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, 1 - step / total)
    )

    def autocast() -> AbstractContextManager[object]:
        return torch.autocast(device_type, dtype=torch.bfloat16, enabled=mixed)

    output.mkdir(parents=True, exist_ok=True)
    if checkpoints:
        checkpoints.mkdir(parents=True, exist_ok=True)
    history: list[dict] = []
    best = -1.0
    step, began = 0, time.monotonic()
    lengths = [cached["train"][i].shape[0] for i in examples]
    for epoch in range(1, spec.epochs + 1):
        # Random batches pad every text to the batch's longest. Batches of similar length and
        # no LoRA dropout took a step of the 12-layer run on 2 cores from ~2 s to ~1 s.
        for positions in length_batches(lengths, spec.batch_size, rng, group=LENGTH_GROUP):
            chunk = [examples[p] for p in positions]
            index = torch.tensor(chunk, device=device)
            with autocast():
                logits = model(*_pad_states([cached["train"][i] for i in chunk]))
            loss = _loss(logits, {t: g[index] for t, g in gold_all.items()}, spec)
            loss.backward()
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            if average:
                average.update()
            step += 1
            if step % 100 == 0:
                rate = step / (time.monotonic() - began)
                progress(
                    f"epoch {epoch} step {step}/{total} loss {loss.item():.3f} ({rate:.1f} steps/s)"
                )
        with average.applied() if average else nullcontext():
            result = _evaluate(model, bundle, cached, autocast)
            tensors = _export_lora(peft_model)
        history.append({"epoch": epoch, **result})
        progress(f"epoch {epoch}: {json.dumps(result)}")
        meta = {
            "rank": spec.rank,
            "alpha": spec.alpha,
            "targets": list(TARGETS),
            "layers": list(range(start, layers)),
            "version": "2",
            "epoch": epoch,
            "val_macro_f1_linear_head": result["average"],
            "spec": dataclasses.asdict(spec),
            "seed": seed,
            "device": device,
            "autocast": "bf16" if mixed else "fp32",
            "trained_with": trained_with,
        }
        if checkpoints:
            save_file(tensors, str(checkpoints / f"epoch{epoch}.safetensors"))
            (checkpoints / f"epoch{epoch}.json").write_text(json.dumps(meta, indent=2))
        if result["average"] > best:
            best = result["average"]
            weights_path, meta_path = adapter_paths(output)
            save_file(tensors, str(weights_path))
            meta_path.write_text(json.dumps({**meta, "history": history}, indent=2) + "\n")
    return {"history": history, "best": best}


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m listener.nlp.adapter",
        description="Train the LoRA adapter from a bundle written by `listener train adapter"
        " --export-bundle FILE`, on a machine with torch, transformers and peft only (a GPU).",
    )
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True, help="folder for adapter.*")
    parser.add_argument("--checkpoints", type=Path)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    for field in dataclasses.fields(AdapterSpec):
        parser.add_argument(
            f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default
        )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _argument_parser().parse_args(argv)
    spec = AdapterSpec(**{f.name: getattr(args, f.name) for f in dataclasses.fields(AdapterSpec)})
    result = train_adapter(
        load_bundle(args.bundle),
        spec=spec,
        seed=args.seed,
        output=args.output,
        checkpoints=args.checkpoints,
        device=args.device,
        trained_with=" ".join(["python -m listener.nlp.adapter", *(argv or sys.argv[1:])]),
        progress=lambda message: print(message, flush=True),
    )
    print(f"best val macro-F1 {result['best']:.4f}", flush=True)


if __name__ == "__main__":
    main()
