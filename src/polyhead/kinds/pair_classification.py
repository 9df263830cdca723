"""Pair classification (duplicate question? entailment? does the answer address the question?): a
label for two texts, from the shared bi-encoder, so each text is still encoded once. The classifier
reads (u, v, |u - v|, u * v) of the two texts' sentence embeddings, as Sentence-BERT's NLI training
does (Reimers & Gurevych, 2019), softmax over the labels."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.special import erf

from ..errors import PolyheadError
from .base import Kind, LabelHead, softmax
from .classification import Classification, soft_cross_entropy
from .metrics import classification_metrics


def pair_features(a: Any, b: Any) -> Any:
    """(u, v, |u - v|, u * v) of paired rows, for torch tensors or NumPy arrays."""
    if isinstance(a, np.ndarray):
        return np.concatenate([a, b, np.abs(a - b), a * b], axis=-1)
    return torch.cat([a, b, (a - b).abs(), a * b], dim=-1)


class PairClassificationHead(LabelHead):
    """Logits over the labels from the two texts' sentence embeddings."""

    kind = "pair_classification"
    reads = "sentence_embedding"

    def __init__(self, spec: Any, in_dim: int) -> None:
        super().__init__(spec, 4 * in_dim)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """One side's vector: the sentence embedding (what the server and the exports give too)."""
        return features["sentence_embedding"].float()

    def pair_output(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits (pairs, labels) for the two sides' vectors."""
        return self.net(pair_features(a, b))

    def loss(self, a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the pair logits against label ids (with class weights / label smoothing)."""
        return self.cross_entropy(self.pair_output(a, b), labels)


def mlp_numpy(state: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The head's MLP (optional Linear + GELU, then Linear) in NumPy, from its state dict: what the
    ONNX and OpenVINO backends run on their sentence embeddings."""
    linears = sorted({k.rsplit(".", 1)[0] for k in state if k.endswith(".weight")}, key=lambda k: int(k.split(".")[1]))
    x = x.astype(np.float32)
    for i, name in enumerate(linears):
        x = x @ state[f"{name}.weight"].T + state[f"{name}.bias"]
        if i < len(linears) - 1:  # GELU (exact, erf), as torch's nn.GELU()
            x = (0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))).astype(np.float32)
    return x


class PairClassification(Kind):
    name = "pair_classification"
    aliases = ("text_pair_classification",)
    description = "a label for a pair of texts (duplicates, entailment), from both texts' embeddings"
    head = PairClassificationHead
    losses = ("cross_entropy",)
    pairs = True
    per_text = False
    metric = "accuracy"
    summary_metrics = ("accuracy", "macro_f1")
    hub_task = "text-classification"
    frozen_fit = True
    weighted = True

    @classmethod
    def decode(cls, spec: Any, probs: np.ndarray, text: str, offsets: list) -> dict[str, Any]:
        return Classification.decode(spec, probs, text, offsets)

    @classmethod
    def decode_pairs(cls, spec: Any, state: dict[str, np.ndarray] | None, a: np.ndarray, b: np.ndarray) -> list[dict[str, Any]]:
        """Each pair's label and probabilities from the two sides' sentence embeddings (NumPy)."""
        if not state:
            raise PolyheadError(f"task {spec.name!r}: the pair head's weights are missing (export the model again)")
        probs = softmax(mlp_numpy(state, pair_features(a.astype(np.float32), b.astype(np.float32))))
        return [cls.decode(spec, p, "", []) for p in probs]

    @classmethod
    def metrics(cls, gold: list, pred: list, spec: Any | None = None) -> dict[str, float]:
        return classification_metrics(gold, pred)

    @classmethod
    def describe_labels(cls, task: dict[str, Any]) -> str:
        return "a pair of texts: " + (", ".join(str(x) for x in task.get("labels") or []) or "–")

    @classmethod
    def distill_loss(cls, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor | None, lam: float) -> torch.Tensor:
        return soft_cross_entropy(student, teacher, labels, lam)
