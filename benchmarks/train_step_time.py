"""Seconds per training step of the encoder on a CPU: full fine-tuning against peft LoRA.

    .venv/bin/python benchmarks/train_step_time.py [--steps 40]

The same length-bucketed batches of 32 for every variant (the first 5 steps are not timed), bf16
autocast where the CPU has it: UMSAB train alone at 96 tokens, and UMSAB train plus the
customer-service training split four times at 128 tokens (the adapter's data). Variants: full
fine-tuning (word embeddings frozen), LoRA r 16 on query/key/value/dense with dropout 0.1 (the
shipped adapter's until 2026-11-27) and without (since). Prints a table. Needs ../shared/data/umsab.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UMSAB = ROOT.parent / "shared" / "data" / "umsab"
VARIANTS = {"full": "full fine-tuning", "lora": "LoRA, dropout 0.1", "lora0": "LoRA, no dropout"}
DATA = {"umsab": ("UMSAB train", 96), "mixed": ("UMSAB + CS x4", 128)}
WARM_STEPS = 5


def _model(variant: str):  # type: ignore[no-untyped-def]
    from transformers import BertModel

    from listener.nlp.encoder import prepare_encoder

    model = BertModel.from_pretrained(prepare_encoder(), add_pooling_layer=False)
    if variant == "full":
        model.embeddings.word_embeddings.weight.requires_grad_(False)
        return model
    from peft import LoraConfig, get_peft_model

    dropout = 0.1 if variant == "lora" else 0.0
    config = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=dropout, target_modules=["query", "key", "value", "dense"]
    )
    return get_peft_model(model, config)


def _rows(data: str) -> tuple[list[list[int]], int]:
    """The data's token ids, and the padding id."""
    from full_finetune import encode
    from transformers import AutoTokenizer

    from listener.nlp.encoder import prepare_encoder
    from listener.nlp.training import load_cs_mentions, load_umsab

    texts = [t for part in load_umsab(UMSAB, "train").values() for t in part.texts]
    if data == "mixed":
        texts += [r["text"] for r in load_cs_mentions()["train"]] * 4
    tokenizer = AutoTokenizer.from_pretrained(prepare_encoder())
    return encode(tokenizer, texts, DATA[data][1]), tokenizer.pad_token_id


def child(variant: str, data: str, steps: int) -> None:
    import torch

    from listener.nlp.adapter import length_batches, pad_ids
    from listener.nlp.embedder import sentence_embeddings
    from listener.nlp.heap import pin_mmap_threshold
    from listener.nlp.precision import native_bf16

    torch.manual_seed(0)
    torch.set_num_threads(2)
    pin_mmap_threshold()
    (rows, pad_id), model = _rows(data), _model(variant)
    head = torch.nn.Linear(384, 3)
    trained = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    optimiser = torch.optim.AdamW(trained, lr=1e-5)
    chunks = length_batches(list(map(len, rows)), 32, random.Random(0))  # noqa: S311
    mixed = native_bf16()
    model.train()
    began = 0.0
    for n, chunk in enumerate(chunks[: steps + WARM_STEPS]):
        if n == WARM_STEPS:
            began = time.perf_counter()
        ids, mask = pad_ids([rows[i] for i in chunk], pad_id)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        logits = head(sentence_embeddings(hidden, mask)).float()
        loss = torch.nn.functional.cross_entropy(logits, torch.randint(0, 3, (len(chunk),)))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    print(f"{(time.perf_counter() - began) / steps:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.steps)
        return
    if not (UMSAB / "english" / "train_text.txt").is_file():
        sys.exit(f"skipped: {UMSAB} has no UMSAB data (../shared/data/umsab beside the checkout)")
    columns = [f"{name} ({length} tokens)" for name, length in DATA.values()]
    print("| variant | " + " | ".join(columns) + " |")
    print("|---" * (len(DATA) + 1) + "|")
    for variant, label in VARIANTS.items():
        cells = []
        for data in DATA:  # each in its own process: one model's memory does not slow the next
            command = [sys.executable, __file__, "--steps", str(args.steps), "--child", variant]
            result = subprocess.run(
                [*command, data], capture_output=True, text=True, check=True, cwd=ROOT
            )
            cells.append(f"{float(result.stdout.split()[-1]):.2f} s/step")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
