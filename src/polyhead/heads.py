"""Task heads: small modules that read the shared encoder's output. One class per kind."""
from __future__ import annotations

import torch
from torch import nn

from .tasks import TaskSpec

IGNORE_INDEX = -100


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


class ClassificationHead(_MLP):
    """Sentence classification (topic, intent, sentiment): softmax over labels from the pooled vector."""

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


class TokenHead(_MLP):
    """Token classification (e.g. BIO NER): a label per sub-token from the per-token states."""

    reads = "token_embeddings"

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


class SimilarityHead(nn.Module):
    """Sentence-pair similarity: cosine of the two pooled embeddings; no parameters of its own."""

    reads = "pooled"

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
        """Cosine-MSE against gold scores mapped onto [0, 1], or in-batch contrastive loss."""
        if self.loss_name == "contrastive":
            # Each a_i's positive is b_i; the other b_j in the batch are its negatives.
            sims = a @ b.T * self.scale
            target = torch.arange(a.shape[0], device=a.device)
            return nn.functional.cross_entropy(sims, target)
        target = (scores.float() - self.low) / (self.high - self.low)
        return nn.functional.mse_loss(self.score(a, b), target)


HEAD_CLASSES: dict[str, type[nn.Module]] = {
    "classification": ClassificationHead,
    "token": TokenHead,
    "similarity": SimilarityHead,
}


def build_head(spec: TaskSpec, in_dim: int) -> nn.Module:
    """The head module for a task spec."""
    return HEAD_CLASSES[spec.kind](spec, in_dim)
