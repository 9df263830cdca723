"""Task heads: each kind's head module lives with its kind (polyhead.kinds); the model asks the kind
through these helpers, which every backend shares."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..kinds import IGNORE_INDEX, Head, TaskSpec, kind_of
from ..kinds.classification import ClassificationHead
from ..kinds.multilabel import MultiLabelHead
from ..kinds.regression import RegressionHead
from ..kinds.similarity import ANGLE_WEIGHT, SimilarityHead, angle_similarity, ranking_loss
from ..kinds.token import TokenHead

__all__ = ["ANGLE_WEIGHT", "IGNORE_INDEX", "ClassificationHead", "Head", "MultiLabelHead", "RegressionHead", "SimilarityHead",
           "TokenHead", "activate", "angle_similarity", "build_head", "decode", "head_class", "per_text_tasks", "ranking_loss"]


def head_class(spec: TaskSpec) -> type[Head]:
    """The head module class for a task spec's kind."""
    return kind_of(spec.kind).head


def build_head(spec: TaskSpec, in_dim: int) -> Head:
    """The head module for a task spec."""
    return kind_of(spec.kind).build_head(spec, in_dim)


def activate(spec: TaskSpec, output: np.ndarray) -> np.ndarray:
    """A head's raw output for a batch as its kind reads it (softmax, sigmoid, units), in NumPy."""
    return kind_of(spec.kind).activate(spec, output)


def decode(spec: TaskSpec, probs: np.ndarray, text: str, offsets: list) -> dict[str, Any]:
    """One text's prediction for one task, from its activated output: the same for every backend."""
    return kind_of(spec.kind).decode(spec, probs, text, offsets)


def per_text_tasks(specs: dict[str, TaskSpec], names: list[str]) -> list[str]:
    """Those of `names` whose heads predict per text (pair tasks need pairs)."""
    return [n for n in names if kind_of(specs[n].kind).per_text]
