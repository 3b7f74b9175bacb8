"""Resident memory of adapter training on a CPU: glibc's mmap threshold pinned, or left to adapt.

    .venv/bin/python benchmarks/adapter_memory.py [--limit 100] [--train-layers 12]

Trains one epoch (UMSAB train, `--limit` texts per language, plus the customer-service training
split) twice, each in its own process: as `listener train adapter` does, with the threshold
pinned (`listener.nlp.heap.pin_mmap_threshold`), and with glibc's default. Prints the peak
resident memory and the wall time of each. Needs ../shared/data/umsab.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UMSAB = ROOT.parent / "shared" / "data" / "umsab"
MODES = {"pinned": "as shipped: buffers over 4 MiB by mmap", "glibc": "glibc's adaptive default"}


def child(mode: str, limit: int, train_layers: int) -> None:
    from listener.nlp import adapter, heap
    from listener.nlp.training import adapter_bundle

    if mode == "glibc":
        heap.MMAP_THRESHOLD = None
    bundle = adapter_bundle(UMSAB, limit, progress=lambda _message: None)
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as output:
        adapter.train_adapter(
            bundle,
            spec=adapter.AdapterSpec(epochs=1, train_layers=train_layers),
            seed=0,
            output=Path(output),
            device="cpu",
            progress=lambda _message: None,
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mb": peak_mb, "seconds": time.monotonic() - began}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--train-layers", type=int, default=12)
    parser.add_argument("--child", choices=MODES)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.limit, args.train_layers)
        return
    if not UMSAB.is_dir():
        sys.exit(f"skipped: {UMSAB} is absent (the UMSAB data set lives in ../shared)")
    print(f"one epoch, --limit {args.limit}, {args.train_layers} layers trained, 1 process each")
    print("| malloc | peak RSS (MB) | training + val (s) |\n|---|---|---|")
    for mode, label in MODES.items():
        command = [sys.executable, __file__, "--child", mode, "--limit", str(args.limit)]
        command += ["--train-layers", str(args.train_layers)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {label} | {result['peak_mb']:.0f} | {result['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
