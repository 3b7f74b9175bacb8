"""Classification speed on this machine: the default model vs a plain transformers pipeline.

    .venv/bin/python benchmarks/classify_speed.py [--texts 512] [--threads 2]

Prints texts/s for (a) a plain one-at-a-time `transformers.pipeline("feature-extraction")` on the
same fp32 encoder, (b) listener's embedder at batch 1, (c) listener's embedder in length-sorted
batches of 64 at each precision: fp32, torch's dynamic int8 (what int8 was before ONNX Runtime),
bf16 (where the CPU has it in hardware; `auto`, the default, picks it); and int8 in ONNX Runtime,
the fallback where the CPU lacks hardware bf16, which embeds one text per call
(`embedder.INT8_BATCH`); (d) the whole classifier at the default precision (embedder, heads, the
lexical sentiment model, the scoring rules) in batches of 64; plus the cold start and peak
memory of `listener classify` (after `listener model prepare`) with the default precision and
with int8.
Texts: UMSAB val from ../shared when present, else the demo feed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from listener.textfiles import read_lines

ROOT = Path(__file__).resolve().parent.parent
UMSAB = ROOT.parent / "shared" / "data" / "umsab"


def load_texts(limit: int) -> tuple[list[str], str]:
    if UMSAB.is_dir():
        texts = []
        for language in sorted(p for p in UMSAB.iterdir() if p.is_dir()):
            texts += read_lines(language / "val_text.txt")
        step = max(len(texts) // limit, 1)
        return texts[::step][:limit], f"UMSAB val (every {step}th of {len(texts)})"
    feed = ROOT / "listener" / "data" / "demo_feed.jsonl"
    texts = [json.loads(line)["text"] for line in read_lines(feed)]
    return (texts * (limit // len(texts) + 1))[:limit], "the demo feed (repeated)"


def rate(function, texts: list[str]) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    function(texts)
    return len(texts) / (time.perf_counter() - start)


def classify_subprocess(texts: list[str], precision: str = "auto") -> tuple[float, float]:
    """Wall time and peak RSS (MB) of `listener classify` on the texts, model cache warm."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in.jsonl"
        source.write_text(
            "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts))
        )
        settings = yaml.safe_load((ROOT / "config" / "example.yaml").read_text(encoding="utf-8"))
        settings["model"]["precision"] = precision
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
        command = [
            sys.executable,
            *("-m", "listener", "classify", "--input", str(source)),
            *("--output", str(Path(tmp) / "out.jsonl"), "--config", str(config)),
        ]
        start = time.perf_counter()
        # Through a small launcher: a child forked straight from this process (the models of the
        # other measurements loaded) would count their pages in its own peak before it execs.
        launched = subprocess.run(
            [sys.executable, "-c", MEASURE_PEAK, *command],
            check=True,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - start
    return elapsed, float(launched.stdout.split()[-1])


MEASURE_PEAK = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, capture_output=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import pipeline

    from listener.nlp.embedder import FLOAT_LAYERS, INT8_BATCH, Embedder, quantise_linear_layers
    from listener.nlp.encoder import prepare_encoder
    from listener.nlp.precision import native_bf16, resolve_precision

    directory = prepare_encoder()
    texts, origin = load_texts(args.texts)
    plain = pipeline(
        "feature-extraction",
        model=str(directory),
        tokenizer=str(directory),
        device="cpu",
        framework="pt",
    )
    fp32 = Embedder(directory, precision="fp32")
    int8 = Embedder(directory, precision="int8")
    torch_int8 = Embedder(directory, precision="fp32")
    assert torch_int8.model is not None
    quantise_linear_layers(torch_int8.model, FLOAT_LAYERS)
    bf16 = Embedder(directory, precision="bf16")
    default = resolve_precision("auto")
    small = texts[: max(args.texts // 4, 32)]
    rows = [
        (
            "transformers.pipeline, one at a time (fp32)",
            rate(lambda ts: [plain(t) for t in ts], small),
        ),
        ("listener embedder, batch 1 (fp32)", rate(lambda ts: fp32.embed(ts, batch_size=1), small)),
        ("listener embedder, batch 1 (int8)", rate(lambda ts: int8.embed(ts, batch_size=1), small)),
        ("listener embedder, batch 1 (bf16)", rate(lambda ts: bf16.embed(ts, batch_size=1), small)),
        (
            "listener embedder, sorted batches of 64 (fp32)",
            rate(lambda ts: fp32.embed(ts, 64), texts),
        ),
        (
            f"torch dynamic int8 above layer {FLOAT_LAYERS}, sorted batches of 64",
            rate(lambda ts: torch_int8.embed(ts, 64), texts),
        ),
        (
            f"listener embedder, int8 in ONNX Runtime ({INT8_BATCH} text per call)",
            rate(lambda ts: int8.embed(ts, INT8_BATCH), texts),
        ),
        (
            "listener embedder, sorted batches of 64 (bf16"
            + (")" if native_bf16() else ", emulated: this CPU lacks it)"),
            rate(lambda ts: bf16.embed(ts, 64), texts),
        ),
    ]
    from listener.nlp import TextInput
    from listener.nlp.transformer import TransformerClassifier

    classifier = TransformerClassifier(threads=args.threads, precision=default)
    rows.append(
        (
            f"listener classifier: embedder + heads + lexical model ({default})",
            rate(lambda ts: classifier.classify([TextInput(t, "und") for t in ts]), texts),
        )
    )
    baseline = rows[0][1]
    print(f"{len(texts)} texts from {origin}; {args.threads} threads; torch {torch.__version__}")
    print(f"default precision on this machine (auto): {default}")
    print(f"{'configuration':66} {'texts/s':>9} {'vs pipeline':>12}")
    for name, value in rows:
        print(f"{name:66} {value:9.1f} {value / baseline:11.2f}x")
    print()
    for precision in dict.fromkeys((default, "int8")):  # the int8 fallback too, where auto is bf16
        cold, _ = classify_subprocess(texts[:1], precision)
        full, peak = classify_subprocess(texts, precision)
        print(
            f"listener classify ({precision}), 1 text (cold start incl. Python and model load):"
            f" {cold:.1f} s; {len(texts)} texts: {full:.1f} s; peak memory {peak:.0f} MB"
        )


if __name__ == "__main__":
    main()
