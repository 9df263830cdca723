"""Multi-label classification (tags on a ticket, topics of an article): zero or more labels per
text, an independent sigmoid per label, each label's decision threshold tuned on dev."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import DataError
from .base import MLP, Head, Kind, sigmoid
from .metrics import multilabel_metrics

# A CSV/TSV cell holds a text's labels joined by this character; the cell "[]" says "no label
# applies" (an empty cell leaves the text unlabelled for the task, as for every kind).
SEPARATOR = "|"
EMPTY_CELL = "[]"
DEFAULT_THRESHOLD = 0.5
THRESHOLD_GRID = tuple(round(x, 2) for x in np.arange(0.05, 0.951, 0.05))


class MultiLabelHead(MLP, Head):
    """One logit per label from the pooled sentence vector."""

    kind = "multilabel"
    reads = "pooled"

    def __init__(self, spec: Any, in_dim: int) -> None:
        super().__init__(in_dim, len(spec.labels), spec.hidden_dim, spec.dropout)
        self.label_smoothing = float(getattr(spec, "label_smoothing", 0.0) or 0.0)
        weights = getattr(spec, "stats", {}).get("pos_weight")
        self.register_buffer("pos_weight", torch.tensor(weights, dtype=torch.float32) if weights else None, persistent=False)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of shape (batch, num_labels)."""
        return self.net(features["pooled"])

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy per label, over rows that carry labels (the others are NaN),
        with the task's positive weights and label smoothing when it has them."""
        keep = self.labelled(labels)
        if not bool(keep.any()):
            return logits.sum() * 0.0
        target = labels[keep].float()
        if self.label_smoothing:
            target = target * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return nn.functional.binary_cross_entropy_with_logits(logits[keep].float(), target, pos_weight=self.pos_weight)


class MultiLabel(Kind):
    name = "multilabel"
    aliases = ("multi_label", "multilabel_classification")
    description = "zero or more labels per text (a sigmoid per label, thresholds tuned on dev)"
    head = MultiLabelHead
    losses = ("binary_cross_entropy",)
    label_column = "labels"
    min_labels = 1
    activation = "sigmoid, then each label's threshold"
    metric = "micro_f1"
    summary_metrics = ("micro_f1", "macro_f1", "exact_match")
    hub_task = "text-classification"
    frozen_fit = True
    weighted = True
    tunes = True

    @classmethod
    def read_label(cls, value: Any, where: str, task: str, fmt: str) -> Any | None:
        """A list of label strings (JSON lines), or labels joined by '|' in a CSV/TSV cell."""
        if value is None:
            return None
        if isinstance(value, str) and fmt in ("csv", "tsv"):
            if value.strip() == "":
                return None
            if value.strip() == EMPTY_CELL:
                return []
            value = [v.strip() for v in value.split(SEPARATOR) if v.strip()]
        if not isinstance(value, list):
            raise DataError(f"{where}: labels {value!r} for multilabel task {task!r} must be a list of strings "
                            f"(in CSV/TSV: labels joined by {SEPARATOR!r}, {EMPTY_CELL} for none)")
        if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            raise DataError(f"{where}: labels {value!r} for task {task!r} must be strings")
        return sorted({str(v) for v in value})

    @classmethod
    def label_values(cls, label: Any) -> list[str]:
        return list(label)

    @classmethod
    def fit_stats(cls, spec: Any, train_labels: Sequence[Any]) -> dict[str, Any]:
        """Positive weights (negatives / positives per label) when the task asks for
        `class_weights: balanced` (or gives a mapping)."""
        weights = getattr(spec, "class_weights", None)
        if weights is None:
            return {}
        if weights == "balanced":
            n = len(train_labels)
            pos = {lab: 0 for lab in spec.labels}
            for labs in train_labels:
                for v in labs:
                    pos[v] += 1
            return {"pos_weight": [(n - pos[lab]) / pos[lab] if pos[lab] else 1.0 for lab in spec.labels]}
        return {"pos_weight": [float(weights.get(lab, 1.0)) for lab in spec.labels]}

    @classmethod
    def batch_labels(cls, spec: Any, labels: Sequence[Any], firsts: list[list[int]] | None, shape: tuple[int, ...]) -> torch.Tensor:
        """0/1 per label; a row of NaN for a text without labels for this task."""
        index = {lab: i for i, lab in enumerate(spec.labels)}
        out = torch.zeros(len(labels), len(spec.labels))
        for i, labs in enumerate(labels):
            if labs is None:
                out[i] = float("nan")
            else:
                out[i, [index[v] for v in labs]] = 1.0
        return out

    @classmethod
    def thresholds(cls, spec: Any) -> np.ndarray:
        """Each label's decision threshold (tuned on dev after training; 0.5 until then)."""
        values = (getattr(spec, "stats", None) or {}).get("thresholds")
        return np.asarray(values if values else [DEFAULT_THRESHOLD] * len(spec.labels), dtype=np.float32)

    @classmethod
    def activate(cls, spec: Any, output: np.ndarray) -> np.ndarray:
        return sigmoid(output)

    @classmethod
    def decode(cls, spec: Any, probs: np.ndarray, text: str, offsets: list) -> dict[str, Any]:
        """The labels whose probability reaches their threshold, and every label's probability."""
        chosen = probs >= cls.thresholds(spec)
        return {
            "labels": [lab for lab, on in zip(spec.labels, chosen) if on],
            "scores": {lab: float(p) for lab, p in zip(spec.labels, probs)},
        }

    @classmethod
    def guesses(cls, spec: Any, output: np.ndarray, firsts: list[list[int]] | None) -> list[Any]:
        chosen = sigmoid(output) >= cls.thresholds(spec)
        return [[lab for lab, on in zip(spec.labels, row) if on] for row in chosen]

    @classmethod
    def metrics(cls, gold: list, pred: list, spec: Any | None = None) -> dict[str, float]:
        labels = list(spec.labels) if spec is not None else sorted({v for row in gold + pred for v in row})
        return multilabel_metrics(gold, pred, labels)

    @classmethod
    def tune(cls, spec: Any, gold: list, outputs: list[np.ndarray]) -> dict[str, Any]:
        """Per label, the threshold from THRESHOLD_GRID with the best dev F1 (ties: nearest 0.5)."""
        if not gold:
            return {}
        probs = sigmoid(np.stack(outputs))
        index = {lab: i for i, lab in enumerate(spec.labels)}
        truth = np.zeros(probs.shape, dtype=bool)
        for i, labs in enumerate(gold):
            truth[i, [index[v] for v in labs]] = True
        grid = np.asarray(THRESHOLD_GRID, dtype=np.float32)
        chosen = []
        for j in range(probs.shape[1]):
            on = probs[:, j][None, :] >= grid[:, None]  # (grid, n)
            tp = (on & truth[:, j]).sum(1)
            denom = on.sum(1) + truth[:, j].sum()
            f1 = np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), 1.0)
            best = np.flatnonzero(f1 == f1.max())
            chosen.append(float(grid[best[np.argmin(np.abs(grid[best] - DEFAULT_THRESHOLD))]]))
        return {"thresholds": chosen}

    @classmethod
    def facts(cls, spec: Any) -> dict[str, Any]:
        return {"thresholds": {lab: float(t) for lab, t in zip(spec.labels, cls.thresholds(spec))}}

    @classmethod
    def describe_labels(cls, task: dict[str, Any]) -> str:
        return "any of " + (", ".join(str(x) for x in task.get("labels") or []) or "–")

    @classmethod
    def arrow_columns(cls, spec: Any) -> dict[str, Any]:
        import pyarrow as pa

        return {"labels": pa.list_(pa.string()), "scores": pa.struct([(lab, pa.float32()) for lab in spec.labels])}

    @classmethod
    def arrow_values(cls, spec: Any, preds: list[dict[str, Any]]) -> dict[str, list]:
        return {"labels": [p["labels"] for p in preds], "scores": [p["scores"] for p in preds]}

    @classmethod
    def distill_loss(cls, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor | None, lam: float) -> torch.Tensor:
        """Binary cross-entropy against lam * sigmoid(teacher) + (1 - lam) * gold."""
        target = torch.sigmoid(teacher.float())
        if labels is not None:
            target = lam * target + (1.0 - lam) * labels.float()
        return nn.functional.binary_cross_entropy_with_logits(student.float(), target)
