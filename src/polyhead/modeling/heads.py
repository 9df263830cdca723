"""Task heads: small modules that read the shared encoder's output. One class per kind.

Every kind-specific decision lives on its head class (the `Head` interface): which encoder
output it reads, whether it predicts per text, its loss, and how its probabilities become a
prediction. `decode` works on NumPy arrays, so the ONNX Runtime backend shares it.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from .tagging import bio_to_spans, first_subtokens, split_words
from .tasks import TaskSpec

IGNORE_INDEX = -100


class Head(nn.Module):
    """The interface of a task head: what it reads, its loss, and how its output is decoded."""

    kind: ClassVar[str]
    reads: ClassVar[str]  # "pooled" (sentence vector) or "token_embeddings" (per-token states)
    per_text: ClassVar[bool] = True  # False: needs pairs of texts (similarity), not in predict()
    token_level: ClassVar[bool] = False  # True: outputs (batch, seq, labels) and needs offsets

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover - abstract
        """The head's output for a batch of encoder features."""
        raise NotImplementedError

    @staticmethod
    def decode(spec: TaskSpec, probs: np.ndarray, text: str, offsets: list) -> dict[str, Any]:
        """One text's prediction from its row of probabilities (and token offsets)."""
        raise NotImplementedError(f"{spec.kind} heads do not predict per text")


class _MLP(nn.Module):
    """Optional hidden layer (Linear + GELU) then dropout + linear output."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if hidden_dim:
            layers += [nn.Linear(in_dim, hidden_dim), nn.GELU()]
            in_dim = hidden_dim
        layers += [nn.Dropout(dropout), nn.Linear(in_dim, out_dim)]
        self.net = nn.Sequential(*layers)


class ClassificationHead(_MLP, Head):
    """Sentence classification (topic, intent, sentiment): softmax over labels from the pooled vector."""

    kind = "classification"
    reads = "pooled"

    def __init__(self, spec: TaskSpec, in_dim: int) -> None:
        super().__init__(in_dim, spec.num_labels, spec.hidden_dim, spec.dropout)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of shape (batch, num_labels)."""
        # The un-normalised pooled vector is used: L2 normalisation shrinks every feature by
        # about 1/sqrt(dim), which a linear layer would have to learn to undo.
        return self.net(features["pooled"])

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy against label ids."""
        return nn.functional.cross_entropy(logits.float(), labels)

    @staticmethod
    def decode(spec: TaskSpec, probs: np.ndarray, text: str, offsets: list) -> dict[str, Any]:
        """The best label, its probability and every label's probability."""
        best = int(probs.argmax())
        return {
            "label": spec.labels[best],
            "score": float(probs[best]),
            "scores": {lab: float(p) for lab, p in zip(spec.labels, probs)},
        }


class TokenHead(_MLP, Head):
    """Token classification (e.g. BIO NER): a label per sub-token from the per-token states."""

    kind = "token"
    reads = "token_embeddings"
    token_level = True

    def __init__(self, spec: TaskSpec, in_dim: int) -> None:
        super().__init__(in_dim, spec.num_labels, spec.hidden_dim, spec.dropout)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of shape (batch, seq, num_labels)."""
        return self.net(features["token_embeddings"])

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over labelled sub-tokens only (padding, specials, non-first pieces: -100)."""
        return nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX
        )

    @staticmethod
    def decode(spec: TaskSpec, probs: np.ndarray, text: str, offsets: list) -> dict[str, Any]:
        """Word tags from each word's first sub-token, then BIO spans as entities with char offsets."""
        words = split_words(text)
        firsts = first_subtokens([tuple(o) for o in offsets], words)
        tags, scores = [], []
        for t in firsts:
            if t < 0:  # the word was cut off by truncation
                tags.append("O")
                scores.append(1.0)
            else:
                best = int(probs[t].argmax())
                tags.append(spec.labels[best])
                scores.append(float(probs[t][best]))
        entities = []
        for typ, start, end in bio_to_spans(tags):
            cs, ce = words[start][0], words[end - 1][1]
            entities.append(
                {
                    "text": text[cs:ce],
                    "type": typ,
                    "start_char": cs,
                    "end_char": ce,
                    "start_word": start,
                    "end_word": end,
                    "score": float(np.mean(scores[start:end])),
                }
            )
        return {"entities": entities, "words": [text[s:e] for s, e in words], "tags": tags}


class SimilarityHead(Head):
    """Sentence-pair similarity: cosine of the two pooled embeddings; no parameters of its own."""

    kind = "similarity"
    reads = "pooled"
    per_text = False

    def __init__(self, spec: TaskSpec, in_dim: int) -> None:
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


# angle-emb's STS-B recipe (SeanLee97/AnglE, v0.6: cosine_w 1.0, angle_w 0.02, both scales 20; its
# in-batch-negative term is left out here: with graded STS scores a pair scored 0 is no positive).
ANGLE_WEIGHT = 0.02


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


HEAD_CLASSES: dict[str, type[Head]] = {cls.kind: cls for cls in (ClassificationHead, TokenHead, SimilarityHead)}


def head_class(spec: TaskSpec) -> type[Head]:
    """The head class for a task spec's kind (its reads/per_text/token_level/decode)."""
    return HEAD_CLASSES[spec.kind]


def build_head(spec: TaskSpec, in_dim: int) -> Head:
    """The head module for a task spec."""
    return head_class(spec)(spec, in_dim)


def decode(spec: TaskSpec, probs: np.ndarray, text: str, offsets: list) -> dict[str, Any]:
    """One text's prediction for one task, from NumPy probabilities: the same for every backend."""
    return head_class(spec).decode(spec, probs, text, offsets)


def per_text_tasks(specs: dict[str, TaskSpec], names: list[str]) -> list[str]:
    """Those of `names` whose heads predict per text (similarity heads need pairs)."""
    return [n for n in names if head_class(specs[n]).per_text]
