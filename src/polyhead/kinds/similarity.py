"""Sentence-pair similarity: the cosine of the two texts' pooled embeddings, trained on gold scores."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .base import Head, Kind, finite_number
from .metrics import similarity_metrics

# angle-emb's STS-B recipe (SeanLee97/AnglE, v0.6: cosine_w 1.0, angle_w 0.02, both scales 20; its
# in-batch-negative term is left out here: with graded STS scores a pair scored 0 is no positive).
ANGLE_WEIGHT = 0.02


class SimilarityHead(Head):
    """Cosine of the two pooled embeddings; no parameters of its own."""

    kind = "similarity"
    reads = "pooled"

    def __init__(self, spec: Any, in_dim: int) -> None:
        super().__init__()
        self.low, self.high = spec.score_range
        self.loss_name = spec.loss
        self.scale = spec.contrastive_scale

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """The normalised pooled vectors, ready for cosine similarity."""
        return nn.functional.normalize(features["pooled"].float(), p=2, dim=-1)

    def score(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of paired rows."""
        return (a * b).sum(-1)

    def pair_output(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """What the task predicts for pairs from the two sides' head outputs: their cosine."""
        return self.score(a, b)

    def loss(self, a: torch.Tensor, b: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """The task's loss on a batch of pairs (docs/training.md, "Losses"):

        cosine_mse: the cosine regressed onto the gold score mapped to [0, 1].
        contrastive: in-batch negatives; each a_i's positive is b_i, the other b_j its negatives.
        cosent: CoSENT (Su, 2022): only the *order* of the cosines is trained, every pair of pairs
          whose gold scores differ is one ranking term, log(1 + sum exp(scale * (cos_j - cos_i)))
          over gold_i > gold_j. It leaves the cosine's scale free, which a shared encoder needs.
        angle: CoSENT on the cosine plus ANGLE_WEIGHT x the same ranking on AnglE's angle
          similarity (Li & Li, 2023; angle_similarity()), the weights of angle-emb's STS-B
          recipe, whose angle term keeps a gradient where the cosine saturates.
        """
        if self.loss_name == "contrastive":
            sims = a @ b.T * self.scale
            target = torch.arange(a.shape[0], device=a.device)
            return nn.functional.cross_entropy(sims, target)
        if self.loss_name == "cosent":
            return ranking_loss(self.score(a, b), scores.float(), self.scale)
        if self.loss_name == "angle":
            gold = scores.float()
            return ranking_loss(self.score(a, b), gold, self.scale) + ANGLE_WEIGHT * ranking_loss(angle_similarity(a, b), gold, self.scale)
        target = (scores.float() - self.low) / (self.high - self.low)
        return nn.functional.mse_loss(self.score(a, b), target)


def ranking_loss(pred: torch.Tensor, gold: torch.Tensor, scale: float) -> torch.Tensor:
    """log(1 + sum over (i, j) with gold_i > gold_j of exp(scale * (pred_j - pred_i))), in fp32.

    Zero (with a gradient path) when no two gold scores differ, e.g. a batch of one pair.
    """
    pred = pred.float() * scale
    diff = pred[None, :] - pred[:, None]  # [i, j] = pred_j - pred_i
    ordered = gold[:, None] > gold[None, :]  # [i, j]: pair i should score above pair j
    terms = torch.cat([pred.new_zeros(1), diff[ordered]])  # the 0 is the "1 +" inside the log
    return torch.logsumexp(terms, dim=0)


def angle_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """AnglE's angle similarity as angle-emb and sentence-transformers compute it: each embedding
    read as a complex vector (first half of the dimensions real parts, second half imaginary), the
    quotient a / b scaled by the vectors' norms, and |sum of its real and imaginary parts|. Smooth
    and bounded, unlike a per-component atan2 (whose gradient explodes near zero components)."""
    half = a.shape[-1] // 2
    ar, ai, br, bi = a[..., :half].float(), a[..., half : 2 * half].float(), b[..., :half].float(), b[..., half : 2 * half].float()
    re = (ar * br + ai * bi).sum(-1)  # real part of a * conj(b), summed over components
    im = (ai * br - ar * bi).sum(-1)  # imaginary part
    norms = a.float().norm(dim=-1) * b.float().norm(dim=-1)
    return (re + im).abs() / norms.clamp_min(1e-12)


class Similarity(Kind):
    name = "similarity"
    aliases = ("pair", "sts")
    description = "a similarity score for two texts: the cosine of their embeddings"
    head = SimilarityHead
    losses = ("cosine_mse", "contrastive", "cosent", "angle")
    label_column = "score"
    has_labels = False
    pairs = True
    cosine = True
    per_text = False
    activation = "cosine of the two texts' outputs"
    metric = "spearman"
    summary_metrics = ("spearman", "pearson")
    hub_task = "sentence-similarity"

    @classmethod
    def check_spec(cls, spec: Any) -> None:
        spec.labels = []  # it scores pairs: a label list given for it means nothing

    @classmethod
    def read_label(cls, value: Any, where: str, task: str, fmt: str) -> Any | None:
        """The pair's gold score, a finite number."""
        return finite_number(value, where, "score")

    @classmethod
    def label_values(cls, label: Any) -> list[str]:
        return []

    @classmethod
    def label_set(cls, configured: list[str] | None, train_labels: Sequence[Any]) -> list[str]:
        return []

    @classmethod
    def batch_labels(cls, spec: Any, labels: Sequence[Any], firsts: list[list[int]] | None, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.tensor([float(x) for x in labels])

    @classmethod
    def guesses(cls, spec: Any, output: np.ndarray, firsts: list[list[int]] | None) -> list[Any]:
        return [float(x) for x in output]

    @classmethod
    def metrics(cls, gold: list, pred: list, spec: Any | None = None) -> dict[str, float]:
        return similarity_metrics(gold, pred)

    @classmethod
    def decode_pairs(cls, spec: Any, state: dict[str, np.ndarray] | None, a: np.ndarray, b: np.ndarray) -> list[dict[str, Any]]:
        """Each pair's cosine and the score on the task's own scale (`from_cosine`)."""
        unit = lambda x: x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)  # noqa: E731
        cos = (unit(a.astype(np.float32)) * unit(b.astype(np.float32))).sum(axis=1)
        scores = cls.from_cosine({"score_range": list(spec.score_range)}, cos)
        return [{"score": s, "cosine": float(c)} for s, c in zip(scores, cos)]

    @classmethod
    def from_cosine(cls, task: dict[str, Any], cos: np.ndarray) -> list[float]:
        """Training maps gold scores onto [0, 1] cosine targets; this is the inverse, clipped
        because a cosine below 0 has no meaning on a 0-5 scale."""
        low, high = task["score_range"]
        return [float(np.clip(low + c * (high - low), low, high)) for c in cos]

    @classmethod
    def facts(cls, spec: Any) -> dict[str, Any]:
        return {"score_range": list(spec.score_range)}

    @classmethod
    def describe_labels(cls, task: dict[str, Any]) -> str:
        low, high = (task.get("score_range") or [0, 1])[:2]
        return f"cosine similarity of two texts (trained on gold scores {low:g}–{high:g})"
