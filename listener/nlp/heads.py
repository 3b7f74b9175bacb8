"""Small task heads on top of the shared sentence embedding: trained here, shipped in the repo.

A head is a one-hidden-layer MLP (or a linear layer) with a softmax temperature fitted on
validation data, saved as `<task>.safetensors` plus `<task>.json` (labels, metrics, the command
that reproduces it) in `listener/nlp/weights/`. Each head learns from the embeddings of one
precision: `<task>.*` from fp32 ones (served to bf16 and fp32, which agree within cosine 0.9999),
`<task>.int8.*` from the int8 encoder's (ONNX Runtime, cosine ~0.98 of fp32): on int8 embeddings
its own heads find 79 of the 81 held-out critical mentions, the fp32 ones 75.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from listener.nlp.lexical import mix

WEIGHTS_DIR = Path(__file__).with_name("weights")
INPUT_SCALE = 10.0  # embeddings are unit vectors; scaling them speeds up training


@dataclass
class HeadSpec:
    task: str
    labels: list[str]
    input_dim: int
    hidden: int = 0
    temperature: float = 1.0
    metrics: dict = field(default_factory=dict)
    trained_with: str = ""
    encoder: str = ""
    features: str = "fp32"  # the encoder precision whose embeddings it learnt from
    # The share of the lexical model's log-probabilities mixed into this head's (sentiment only;
    # `listener.nlp.lexical`); its temperature calibrates the mixture.
    lexical_weight: float = 0.0
    lexical_digest: str = ""  # the lexical model's `digest()` the weight and temperature fit


def head_features(precision: str) -> str:
    """Which heads an encoder precision takes: int8 its own, bf16 and fp32 the fp32 ones."""
    return "int8" if precision == "int8" else "fp32"


def _stem(task: str, features: str) -> str:
    """`<task>` for fp32 heads, `<task>.int8` for heads of any int8 embeddings: the spec's
    `features` ("int8 (ONNX Runtime, recipe 2)") says which, and is checked at load."""
    return task if features == "fp32" else f"{task}.int8"


class Head(torch.nn.Module):
    def __init__(self, spec: HeadSpec, dropout: float = 0.2) -> None:
        super().__init__()
        self.spec = spec
        n = len(spec.labels)
        if spec.hidden:
            self.net: torch.nn.Module = torch.nn.Sequential(
                torch.nn.Linear(spec.input_dim, spec.hidden),
                torch.nn.GELU(),
                torch.nn.Dropout(dropout),
                torch.nn.Linear(spec.hidden, n),
            )
        else:
            self.net = torch.nn.Linear(spec.input_dim, n)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.net(embeddings * INPUT_SCALE)

    @torch.inference_mode()
    def logits(self, embeddings: np.ndarray, lexical: np.ndarray | None = None) -> np.ndarray:
        """Uncalibrated scores: the head's own, or its mixture with the lexical model's
        log-probabilities `lexical` where the head was trained to take them."""
        self.eval()
        own = self(torch.from_numpy(embeddings))
        if not self.spec.lexical_weight:
            return own.numpy()
        if lexical is None:
            raise ValueError(f"the {self.spec.task} head mixes in the lexical model's answers")
        return mix(torch.log_softmax(own, dim=-1).numpy(), lexical, self.spec.lexical_weight)

    def probabilities(
        self, embeddings: np.ndarray, lexical: np.ndarray | None = None
    ) -> np.ndarray:
        scaled = torch.from_numpy(self.logits(embeddings, lexical)) / self.spec.temperature
        return torch.softmax(scaled, dim=-1).numpy()

    def save(self, directory: Path = WEIGHTS_DIR) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        stem = _stem(self.spec.task, self.spec.features)
        save_file(
            {k: v.contiguous() for k, v in self.state_dict().items()},
            str(directory / f"{stem}.safetensors"),
        )
        path = directory / f"{stem}.json"
        path.write_text(json.dumps(asdict(self.spec), indent=2, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def load(cls, task: str, directory: Path = WEIGHTS_DIR, features: str = "fp32") -> Head:
        """The head for embeddings of `features` precision; the fp32 one where it has none."""
        stem = _stem(task, features)
        if not (directory / f"{stem}.json").is_file():
            stem = task
        spec_path = directory / f"{stem}.json"
        if not spec_path.is_file():
            raise FileNotFoundError(
                f"no trained {task} head in {directory}: run `listener train {task}`"
            )
        head = cls(HeadSpec(**json.loads(spec_path.read_text())))
        head.load_state_dict(load_file(str(directory / f"{stem}.safetensors")))
        return head.eval()


def train_head(
    spec: HeadSpec,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    weight_decay: float = 0.05,
    lr: float = 1e-3,
    seed: int = 0,
    class_weights: np.ndarray | None = None,
) -> Head:
    """Mini-batch AdamW, seeded, so `listener train` reproduces the shipped weights."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    head = Head(spec)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y).long()
    weights = torch.from_numpy(class_weights).float() if class_weights is not None else None
    optimiser = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        head.train()
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            loss = torch.nn.functional.cross_entropy(
                head(inputs[batch]), targets[batch], weight=weights
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return head.eval()


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The softmax temperature that minimises negative log-likelihood on held-out data."""
    scores = torch.from_numpy(logits)
    targets = torch.from_numpy(y).long()
    candidates = np.linspace(0.5, 5.0, 46)
    losses = [
        torch.nn.functional.cross_entropy(scores / float(t), targets).item() for t in candidates
    ]
    return float(candidates[int(np.argmin(losses))])


def log_loss(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels: lower is better calibrated."""
    picked = probabilities[np.arange(len(y_true)), y_true]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> float:
    scores = []
    for label in range(n_labels):
        tp = int(((y_pred == label) & (y_true == label)).sum())
        wrong = int(((y_pred == label) != (y_true == label)).sum())
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + wrong))
    return float(np.mean(scores))


def per_class_report(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    report = {}
    for index, label in enumerate(labels):
        tp = int(((y_pred == index) & (y_true == index)).sum())
        predicted = int((y_pred == index).sum())
        actual = int((y_true == index).sum())
        report[label] = {
            "precision": round(tp / predicted, 3) if predicted else 0.0,
            "recall": round(tp / actual, 3) if actual else 0.0,
            "n": actual,
        }
    return report
