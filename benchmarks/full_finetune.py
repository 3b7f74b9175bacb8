"""Full fine-tuning of the encoder on UMSAB sentiment: does it pass the LoRA plateau?

    .venv/bin/python benchmarks/full_finetune.py [--epochs 3] [--lr 5e-5] [--json FILE]

The issue names full fine-tuning as the alternative to a LoRA adapter. This trains every
encoder weight but the word embeddings (frozen, as the issue suggests) with a linear head on
mean-pooled states, sentiment only, on UMSAB train: AdamW, batch 32 in length buckets, 6 %
warm-up then linear decay, bf16 autocast where the CPU has it, seed 0. After each epoch it
prints macro-F1 per language on val and the average, as `listener eval sentiment` does.
Nothing is saved: the weights would be ~85 MB, not a few MB to commit. Needs ../shared/data/umsab.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from listener.nlp.adapter import length_batches, pad_ids
from listener.nlp.embedder import QUERY_PREFIX

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
UMSAB = ROOT.parent / "shared" / "data" / "umsab"
BATCH = 32
MAX_TOKENS = 96  # the LoRA reference used 96; mentions are short
WARM_UP = 0.06


def encode(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], max_tokens: int = MAX_TOKENS
) -> list[list[int]]:
    """Token ids as e5 reads the texts ("query: " first), truncated."""
    return tokenizer([QUERY_PREFIX + t for t in texts], truncation=True, max_length=max_tokens)[
        "input_ids"
    ]


class FineTune:
    """The encoder (word embeddings frozen) and a linear head, trained together."""

    def __init__(self, lr: float, steps: int) -> None:
        from transformers import AutoTokenizer, BertModel

        from listener.nlp.encoder import prepare_encoder
        from listener.nlp.precision import native_bf16

        directory = prepare_encoder()
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        self.model = BertModel.from_pretrained(directory, add_pooling_layer=False)
        self.model.embeddings.word_embeddings.weight.requires_grad_(False)
        self.head = torch.nn.Linear(self.model.config.hidden_size, 3)
        self.mixed = native_bf16()
        self.trained = [p for p in self.model.parameters() if p.requires_grad]
        self.optimiser = torch.optim.AdamW(
            [{"params": self.trained, "lr": lr}, {"params": self.head.parameters(), "lr": 2e-3}],
            weight_decay=0.01,
        )
        warm = max(int(WARM_UP * steps), 1)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimiser,
            lambda step: min((step + 1) / warm, max(0.0, (steps - step) / (steps - warm))),
        )

    def logits(self, rows: list[list[int]]) -> torch.Tensor:
        from listener.nlp.embedder import sentence_embeddings
        from listener.nlp.heads import INPUT_SCALE

        ids, mask = pad_ids(rows, self.tokenizer.pad_token_id)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.mixed):
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return self.head(sentence_embeddings(hidden, mask) * INPUT_SCALE)

    def train_epoch(self, rows: list[list[int]], labels: list[int], rng: random.Random) -> None:
        self.model.train()
        self.head.train()
        for chunk in length_batches(list(map(len, rows)), BATCH, rng):
            target = torch.tensor([labels[i] for i in chunk])
            logits = self.logits([rows[i] for i in chunk]).float()
            loss = torch.nn.functional.cross_entropy(logits, target)
            self.optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.trained, 1.0)
            self.optimiser.step()
            self.schedule.step()

    @torch.inference_mode()
    def predict(self, rows: list[list[int]]) -> np.ndarray:
        self.model.eval()
        self.head.eval()
        guess = np.zeros(len(rows), dtype=int)
        for chunk in length_batches(list(map(len, rows)), 64, None):
            guess[chunk] = self.logits([rows[i] for i in chunk]).argmax(1).numpy()
        return guess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--json", type=Path, help="also append each epoch's figures here")
    args = parser.parse_args()
    if not (UMSAB / "english" / "train_text.txt").is_file():
        sys.exit(f"skipped: {UMSAB} has no UMSAB data (../shared/data/umsab beside the checkout)")
    from listener.nlp.heads import macro_f1
    from listener.nlp.heap import pin_mmap_threshold
    from listener.nlp.training import load_umsab

    torch.manual_seed(0)
    rng = random.Random(0)  # noqa: S311  (batch order, not cryptography)
    torch.set_num_threads(2)
    pin_mmap_threshold()
    train, val = load_umsab(UMSAB, "train"), load_umsab(UMSAB, "val")
    steps = math.ceil(sum(len(part.texts) for part in train.values()) / BATCH) * args.epochs
    run = FineTune(args.lr, steps)
    rows = [row for part in train.values() for row in encode(run.tokenizer, part.texts)]
    labels = [int(y) for part in train.values() for y in part.labels]
    val_rows = {language: encode(run.tokenizer, part.texts) for language, part in val.items()}
    print(f"{len(rows)} tweets, {steps} steps, {'bf16 autocast' if run.mixed else 'fp32'}")
    print("| epoch | average | " + " | ".join(val) + " | minutes |")
    print("|---" * (len(val) + 3) + "|", flush=True)
    began = time.monotonic()
    for epoch in range(1, args.epochs + 1):
        run.train_epoch(rows, labels, rng)
        scores = {
            language: round(macro_f1(val[language].labels, run.predict(val_rows[language]), 3), 4)
            for language in val
        }
        average = float(np.mean(list(scores.values())))
        cells = " | ".join(f"{scores[language]:.4f}" for language in val)
        minutes = (time.monotonic() - began) / 60
        print(f"| {epoch} | {average:.4f} | {cells} | {minutes:.1f} |", flush=True)
        if args.json:
            record = {"epoch": epoch, "lr": args.lr, "average": round(average, 4), "val": scores}
            with args.json.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
