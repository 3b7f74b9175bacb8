"""Word and character n-gram sentiment: a second opinion mixed into the encoder's sentiment head.

A linear model on hashed, tf-idf weighted character (2-5, within words) and word (1-2) n-grams,
trained on the same data as the sentiment head. It errs on other tweets than the encoder (it sees
spellings, emoji runs and slang the small encoder's pieces blur), so mixing the two's
log-probabilities lifts UMSAB val macro-F1 by 0.013 (the shipped fp32 head; int8 0.014) and, when
it was added, the customer-service sets' sentiment accuracy from .878 to .894, where the encoder
head alone has plateaued (benchmarks/results/adapter_sweep.md, "A lexical second opinion").
Hashing keeps the shipped weights a fixed size, with no vocabulary to store:
`sentiment.lexical.safetensors` (fp16) plus a JSON spec beside the heads.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from safetensors.numpy import load_file, save_file

from listener.links import HANDLE, LINK

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

STEM = "sentiment.lexical"
WORD_PATTERN = r"(?u)\b\w+\b|[^\w\s]"  # words, and each punctuation mark or emoji on its own
# Links say nothing about sentiment but weigh a lot as n-grams (a shop link appended to the
# held-out mentions flipped 21 % of the answers): they are left out (`listener.links`), and so is
# the bare word UMSAB writes in their place; handles are read as UMSAB writes them, "@user".
UMSAB_LINK = re.compile(r"\bhttps?\b")


@dataclass
class LexicalSpec:
    labels: list[str]
    hash_bits: int = 18  # 2**18 buckets for character n-grams, as many for word n-grams
    char_ngrams: tuple[int, int] = (2, 5)
    word_ngrams: tuple[int, int] = (1, 2)
    # Logistic regression's C: 3, 10 and 30 were compared on UMSAB val (adapter_sweep.md).
    inverse_regularisation: float = 10.0
    metrics: dict = field(default_factory=dict)
    trained_with: str = ""


class LexicalModel:
    """`log_probabilities(texts)` of the spec's labels from n-gram counts alone."""

    def __init__(
        self, spec: LexicalSpec, idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray
    ) -> None:
        expected = (len(spec.labels), 2 * 2**spec.hash_bits)
        if coef.shape != expected or idf.shape != expected[1:]:
            raise ValueError(
                f"lexical model weights of shape {coef.shape} where its spec needs {expected};"
                " retrain it (listener train sentiment)"
            )
        self.spec = spec
        # Rounded to fp16 as stored, so that training sees what serving will compute.
        self.idf = idf.astype(np.float16).astype(np.float32)
        self.coef = coef.astype(np.float16).astype(np.float32)
        self.intercept = intercept.astype(np.float32)
        self._vectorisers = _vectorisers(spec)

    def digest(self) -> str:
        """Names these weights, so that a head mixed with them can tell them from others."""
        digest = hashlib.sha256()
        for array in (self.idf, self.coef, self.intercept):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:12]

    def log_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, len(self.spec.labels)), dtype=np.float32)
        features = tf_idf(_counts(self._vectorisers, texts), self.idf)
        from scipy.special import log_softmax

        return log_softmax(np.asarray(features @ self.coef.T) + self.intercept, axis=1)

    @classmethod
    def fit(cls, texts: Sequence[str], labels: np.ndarray, spec: LexicalSpec) -> LexicalModel:
        """Deterministic (L-BFGS from zeros): the same data gives the same weights."""
        from sklearn.feature_extraction.text import TfidfTransformer
        from sklearn.linear_model import LogisticRegression

        present = np.unique(labels).tolist()
        if present != list(range(len(spec.labels))):
            raise ValueError(
                f"the lexical model needs examples of every label {spec.labels};"
                f" the data has only {[spec.labels[int(c)] for c in present]}"
            )
        counts = _counts(_vectorisers(spec), texts)
        idf = TfidfTransformer(sublinear_tf=True).fit(counts).idf_
        model = LogisticRegression(C=spec.inverse_regularisation, max_iter=3000)
        model.fit(tf_idf(counts, idf), labels)
        return cls(spec, idf, model.coef_, model.intercept_)

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        save_file(
            {
                # safetensors writes an array's memory as it lies: C order, or scrambled.
                "idf": np.ascontiguousarray(self.idf, dtype=np.float16),
                "coef": np.ascontiguousarray(self.coef, dtype=np.float16),
                "intercept": self.intercept,
            },
            str(directory / f"{STEM}.safetensors"),
        )
        path = directory / f"{STEM}.json"
        path.write_text(json.dumps(asdict(self.spec), indent=2, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def load(cls, directory: Path) -> LexicalModel:
        spec_path = directory / f"{STEM}.json"
        if not spec_path.is_file():
            raise FileNotFoundError(
                f"no lexical sentiment model in {directory}: run `listener train sentiment`"
            )
        raw = json.loads(spec_path.read_text())
        spec = LexicalSpec(
            **{
                **raw,
                "char_ngrams": tuple(raw["char_ngrams"]),
                "word_ngrams": tuple(raw["word_ngrams"]),
            }
        )
        tensors = load_file(str(directory / f"{STEM}.safetensors"))
        return cls(spec, tensors["idf"], tensors["coef"], tensors["intercept"])


def tf_idf(counts: csr_matrix, idf: np.ndarray) -> csr_matrix:
    """scikit-learn's `TfidfTransformer(sublinear_tf=True)` with a given idf: 1 + log(count),
    times idf, rows scaled to unit length; written out so that serving needs no fitted object."""
    from sklearn.preprocessing import normalize

    weighted = counts.astype(np.float32)
    weighted.data = 1.0 + np.log(weighted.data)
    return normalize(weighted.multiply(idf.astype(np.float32, copy=False)).tocsr())


def mix(head_log_probabilities: np.ndarray, lexical: np.ndarray, weight: float) -> np.ndarray:
    """The weighted geometric mean of two label distributions, as (unnormalised) logits."""
    if lexical.shape != head_log_probabilities.shape:
        raise ValueError(
            f"lexical answers of shape {lexical.shape} for head answers of shape"
            f" {head_log_probabilities.shape}: one row per text, one column per label"
        )
    return (1.0 - weight) * head_log_probabilities + weight * lexical


def normalise(text: str) -> str:
    """Without links, handles as UMSAB writes them, lower case (what the vectorisers then do)."""
    return HANDLE.sub("@user", UMSAB_LINK.sub(" ", LINK.sub(" ", text))).lower()


def _vectorisers(spec: LexicalSpec) -> tuple:
    from sklearn.feature_extraction.text import HashingVectorizer

    common = {
        "n_features": 2**spec.hash_bits,
        "alternate_sign": False,
        "norm": None,
        "preprocessor": normalise,
    }
    return (
        HashingVectorizer(analyzer="char_wb", ngram_range=spec.char_ngrams, **common),
        HashingVectorizer(
            analyzer="word", ngram_range=spec.word_ngrams, token_pattern=WORD_PATTERN, **common
        ),
    )


def _counts(vectorisers: tuple, texts: Sequence[str]) -> csr_matrix:
    """Raw n-gram counts per text: character n-gram buckets, then word n-gram buckets."""
    from scipy.sparse import hstack

    return hstack([v.transform(texts) for v in vectorisers]).tocsr()
