"""How a transformer computes on CPU: the choices and what `auto` means on this machine.

Light on purpose (torch is imported only to probe the CPU): the config schema reads the choices.
"""

from __future__ import annotations

# bf16 where the CPU multiplies bf16 in hardware (AVX512-BF16, AMX): there ~2x int8's speed and
# within cosine 0.9999 of fp32. int8 elsewhere: ONNX Runtime's dynamic quantisation
# (listener.nlp.onnx_int8) stays within cosine ~0.98 of fp32 at ~2x its speed, one mention per
# call, so that its result does not depend on a batch (a Hugging Face model's int8 is torch's,
# batched, and does). fp32: exact, slowest. benchmarks/results/adapter_sweep.md has the figures.
PRECISIONS = ("auto", "bf16", "int8", "fp32")


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX)."""
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without the probes: assume not
        return False


def resolve_precision(precision: str) -> str:
    """`auto` as this machine's best: bf16 where native, else int8."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16() else "int8"
    return precision
