"""Evaluation metrics per task: each kind's metrics live with the kind (polyhead.kinds); these are
the names training, benchmarks and older code import."""
from __future__ import annotations

from typing import Any

from ..kinds import KINDS, kind_of
from ..kinds.metrics import classification_metrics, entity_metrics, multilabel_metrics, regression_metrics, similarity_metrics

__all__ = [
    "METRIC_FOR_KIND",
    "classification_metrics",
    "entity_metrics",
    "headline_metric",
    "multilabel_metrics",
    "regression_metrics",
    "similarity_metrics",
    "task_metrics",
]

# The headline metric of each task kind: what model selection and summaries look at.
METRIC_FOR_KIND: dict[str, str] = {name: kind.metric for name, kind in KINDS.items()}


def headline_metric(spec: Any) -> str:
    """The metric that picks the best checkpoint for a task spec (its kind's)."""
    return kind_of(spec.kind).metric


def task_metrics(kind: str, gold: list, pred: list, spec: Any | None = None) -> dict[str, float]:
    """The metrics of one task of `kind` from its gold labels and predictions."""
    return kind_of(kind).metrics(gold, pred, spec)
