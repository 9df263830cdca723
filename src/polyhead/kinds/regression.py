"""Regression (a rating, an urgency score, sentiment intensity): one number, or a fixed vector of
numbers, per text. Targets are standardised with the training set's mean and standard deviation,
which are saved with the head, so predictions come back in the user's units."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import DataError, PolyheadError
from .base import MLP, Head, Kind, finite_number
from .metrics import regression_metrics

HUBER_DELTA = 1.0  # in standard deviations of the target


class RegressionHead(MLP, Head):
    """One output per target from the pooled sentence vector, in standardised units."""

    kind = "regression"
    reads = "pooled"

    def __init__(self, spec: Any, in_dim: int) -> None:
        super().__init__(in_dim, Regression.num_outputs(spec), spec.hidden_dim, spec.dropout)
        self.loss_name = spec.loss

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Standardised predictions of shape (batch, outputs)."""
        return self.net(features["pooled"])

    def loss(self, output: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """MSE (or Huber) against standardised targets, over rows that carry one (the others are NaN)."""
        keep = self.labelled(labels)
        if not bool(keep.any()):
            return output.sum() * 0.0
        pred, gold = output[keep].float(), labels[keep].float()
        if self.loss_name == "huber":
            return nn.functional.huber_loss(pred, gold, delta=HUBER_DELTA)
        return nn.functional.mse_loss(pred, gold)


class Regression(Kind):
    name = "regression"
    description = "one number (or a fixed vector of numbers) per text, in the data's units"
    head = RegressionHead
    losses = ("mse", "huber")
    label_column = "score"
    has_labels = False  # `labels` name the outputs of a vector target; none for one number
    activation = "output * target_std + target_mean"
    metric = "pearson"
    summary_metrics = ("pearson", "spearman", "mae", "rmse")
    hub_task = "text-classification"  # the Hub files regression heads under text classification
    frozen_fit = True

    @classmethod
    def check_spec(cls, spec: Any) -> None:
        if len(spec.labels) == 1:
            raise PolyheadError(f"task {spec.name!r}: a regression task names its outputs only for a vector target (2 or more)")

    @classmethod
    def num_outputs(cls, spec: Any) -> int:
        return max(1, len(spec.labels))

    @classmethod
    def read_label(cls, value: Any, where: str, task: str, fmt: str) -> Any | None:
        """A finite number, or a list of them for a vector target."""
        if value is None or value == "":
            return None
        if isinstance(value, list):
            if not value:
                raise DataError(f"{where}: target [] for task {task!r} is empty; give a number or a list of numbers")
            return [finite_number(v, where, f"target of task {task!r}") for v in value]
        return finite_number(value, where, f"target of task {task!r}")

    @classmethod
    def label_values(cls, label: Any) -> list[str]:
        return []

    @classmethod
    def label_set(cls, configured: list[str] | None, train_labels: Sequence[Any]) -> list[str]:
        """Output names: as configured; else none for numbers, "0".."k-1" for vectors of k."""
        if configured:
            return list(configured)
        first = next((lab for lab in train_labels if lab is not None), None)
        return [str(i) for i in range(len(first))] if isinstance(first, list) else []

    @classmethod
    def check_label(cls, spec: Any, label: Any, where: str, configured: bool) -> None:
        k = cls.num_outputs(spec)
        got = len(label) if isinstance(label, list) else 1
        if got != k or (k > 1 and not isinstance(label, list)):
            raise DataError(f"{where}: task {spec.name!r} has {k} output(s) ({', '.join(spec.labels) or 'one number'}), "
                            f"this target has {got}")

    @classmethod
    def fit_stats(cls, spec: Any, train_labels: Sequence[Any]) -> dict[str, Any]:
        """The training targets' mean and standard deviation per output (std 1 for a constant)."""
        values = np.asarray([lab for lab in train_labels if lab is not None], dtype=np.float64).reshape(-1, cls.num_outputs(spec))
        if values.shape[0] == 0:
            return {}
        std = values.std(0)
        return {"mean": values.mean(0).tolist(), "std": np.where(std > 1e-12, std, 1.0).tolist()}

    @classmethod
    def _affine(cls, spec: Any) -> tuple[np.ndarray, np.ndarray]:
        stats = getattr(spec, "stats", None) or {}
        k = cls.num_outputs(spec)
        mean = np.asarray(stats.get("mean", [0.0] * k), dtype=np.float64)
        std = np.asarray(stats.get("std", [1.0] * k), dtype=np.float64)
        return mean, std

    @classmethod
    def batch_labels(cls, spec: Any, labels: Sequence[Any], firsts: list[list[int]] | None, shape: tuple[int, ...]) -> torch.Tensor:
        """Standardised targets (batch, outputs); a row of NaN for a text without one."""
        mean, std = cls._affine(spec)
        k = cls.num_outputs(spec)
        rows = [np.full(k, np.nan) if lab is None else (np.asarray(lab, dtype=np.float64).reshape(k) - mean) / std for lab in labels]
        return torch.tensor(np.stack(rows) if rows else np.zeros((0, k)), dtype=torch.float32)

    @classmethod
    def activate(cls, spec: Any, output: np.ndarray) -> np.ndarray:
        """Back in the data's units: output * std + mean."""
        mean, std = cls._affine(spec)
        return (np.asarray(output, dtype=np.float64) * std + mean).astype(np.float32)

    @classmethod
    def decode(cls, spec: Any, probs: np.ndarray, text: str, offsets: list) -> dict[str, Any]:
        """{"score": x} for one number; {"scores": {output: x}} for a vector."""
        if not spec.labels:
            return {"score": float(probs[0])}
        return {"scores": {lab: float(v) for lab, v in zip(spec.labels, probs)}}

    @classmethod
    def guesses(cls, spec: Any, output: np.ndarray, firsts: list[list[int]] | None) -> list[Any]:
        values = cls.activate(spec, output)
        return [float(row[0]) if not spec.labels else [float(v) for v in row] for row in values]

    @classmethod
    def metrics(cls, gold: list, pred: list, spec: Any | None = None) -> dict[str, float]:
        return regression_metrics(gold, pred)

    @classmethod
    def facts(cls, spec: Any) -> dict[str, Any]:
        mean, std = cls._affine(spec)
        return {"target_mean": mean.tolist(), "target_std": std.tolist()}

    @classmethod
    def describe_labels(cls, task: dict[str, Any]) -> str:
        labels = task.get("labels") or []
        return f"numbers: {', '.join(map(str, labels))}" if labels else "a number"

    @classmethod
    def arrow_columns(cls, spec: Any) -> dict[str, Any]:
        import pyarrow as pa

        if not spec.labels:
            return {"score": pa.float32()}
        return {"scores": pa.struct([(lab, pa.float32()) for lab in spec.labels])}

    @classmethod
    def arrow_values(cls, spec: Any, preds: list[dict[str, Any]]) -> dict[str, list]:
        key = "scores" if spec.labels else "score"
        return {key: [p[key] for p in preds]}

    @classmethod
    def distill_loss(cls, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor | None, lam: float) -> torch.Tensor:
        """MSE against lam * teacher + (1 - lam) * gold, in standardised units."""
        target = teacher.float()
        if labels is not None:
            target = lam * target + (1.0 - lam) * labels.float()
        return nn.functional.mse_loss(student.float(), target)
