"""Single-label classification (topic, intent, sentiment): softmax over labels from the pooled vector."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .base import Kind, LabelHead
from .metrics import classification_metrics


class ClassificationHead(LabelHead):
    """Logits over the task's labels from the pooled sentence vector."""

    kind = "classification"
    reads = "pooled"

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of shape (batch, num_labels)."""
        # The un-normalised pooled vector is used: L2 normalisation shrinks every feature by
        # about 1/sqrt(dim), which a linear layer would have to learn to undo.
        return self.net(features["pooled"])

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy against label ids (rows labelled IGNORE_INDEX left out), with the task's
        class weights and label smoothing when it has them."""
        return self.cross_entropy(logits, labels)


class Classification(Kind):
    name = "classification"
    aliases = ("sentence_classification", "sentiment")
    description = "one label per text from a fixed set (softmax)"
    head = ClassificationHead
    losses = ("cross_entropy",)
    metric = "accuracy"
    summary_metrics = ("accuracy", "macro_f1")
    hub_task = "text-classification"
    frozen_fit = True
    weighted = True  # takes class_weights and label_smoothing

    @classmethod
    def decode(cls, spec: Any, probs: np.ndarray, text: str, offsets: list) -> dict[str, Any]:
        """The best label, its probability and every label's probability."""
        best = int(probs.argmax())
        return {
            "label": spec.labels[best],
            "score": float(probs[best]),
            "scores": {lab: float(p) for lab, p in zip(spec.labels, probs)},
        }

    @classmethod
    def metrics(cls, gold: list, pred: list, spec: Any | None = None) -> dict[str, float]:
        return classification_metrics(gold, pred)

    @classmethod
    def arrow_columns(cls, spec: Any) -> dict[str, Any]:
        import pyarrow as pa

        return {"label": pa.string(), "score": pa.float32(), "scores": pa.struct([(lab, pa.float32()) for lab in spec.labels])}

    @classmethod
    def arrow_values(cls, spec: Any, preds: list[dict[str, Any]]) -> dict[str, list]:
        return {"label": [p["label"] for p in preds], "score": [p["score"] for p in preds], "scores": [p["scores"] for p in preds]}

    @classmethod
    def distill_loss(cls, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor | None, lam: float) -> torch.Tensor:
        """Cross-entropy against lam * softmax(teacher) + (1 - lam) * onehot(gold)."""
        return soft_cross_entropy(student, teacher, labels, lam)


def soft_cross_entropy(logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None, lam: float) -> torch.Tensor:
    """Mean cross-entropy of rows of `logits` against lam * softmax(teacher) + (1 - lam) * onehot(labels)
    (labels None: the teacher's softmax alone)."""
    target = torch.softmax(teacher_logits.float(), dim=-1)
    if labels is not None:
        target = lam * target + (1.0 - lam) * nn.functional.one_hot(labels, logits.shape[-1]).float()
    return nn.functional.cross_entropy(logits.float(), target)
