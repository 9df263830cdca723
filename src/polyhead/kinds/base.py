"""The interface every task kind implements, and the pieces kinds share.

A task kind is one `Kind` subclass (registered by name in registry.py) and its head module. The kind
owns every decision that differs between kinds: which options a task spec may carry, reading and
checking a label from a data file, the label set, turning a batch's labels into a tensor, the loss
(on the head), the activation at inference and the decoding into what a user sees, the gold/guess
pairs that metrics score, the metrics and the one that picks the best checkpoint, what the model
card and Ray Data columns say, distillation targets and the frozen-encoder fit. Code outside this
package asks the kind (`kind_of(spec.kind)`), it never compares kind names.

Kind methods take a task spec duck-typed (`spec.name`, `spec.labels`, `spec.stats`, ...), so this
module does not import spec.py.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import DataError, PolyheadError

IGNORE_INDEX = -100


class Head(nn.Module):
    """A task head: reads the encoder's features, returns its raw output (logits, scores)."""

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover - abstract
        """The head's output for a batch of encoder features."""
        raise NotImplementedError

    def labelled(self, labels: torch.Tensor) -> torch.Tensor:
        """Where a batch's label tensor holds a label, over the positions the head predicts at:
        integer labels (a text's, a token's) not IGNORE_INDEX; rows of numbers or of 0/1 flags
        (the last axis is one target) without NaN. `output[mask]` are the labelled predictions."""
        if labels.is_floating_point():
            return ~torch.isnan(labels).any(-1)
        return labels != IGNORE_INDEX


class MLP(nn.Module):
    """Optional hidden layer (Linear + GELU) then dropout + a linear output (`net[-1]`)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if hidden_dim:
            layers += [nn.Linear(in_dim, hidden_dim), nn.GELU()]
            in_dim = hidden_dim
        layers += [nn.Dropout(dropout), nn.Linear(in_dim, out_dim)]
        self.net = nn.Sequential(*layers)

    @property
    def output_layer(self) -> nn.Linear:
        """The last linear layer, the one a frozen-encoder fit solves for."""
        return self.net[-1]  # type: ignore[return-value]


class LabelHead(MLP, Head):
    """A head scored by cross-entropy over a label set (classification, token, pair classification):
    the task's class weights (spec.stats["class_weights"]) and label smoothing are its loss's."""

    def __init__(self, spec: Any, in_dim: int, out_dim: int | None = None) -> None:
        super().__init__(in_dim, len(spec.labels) if out_dim is None else out_dim, spec.hidden_dim, spec.dropout)
        self.label_smoothing = float(getattr(spec, "label_smoothing", 0.0) or 0.0)
        weights = (getattr(spec, "stats", None) or {}).get("class_weights")
        self.register_buffer("class_weights", torch.tensor(weights, dtype=torch.float32) if weights else None, persistent=False)

    def cross_entropy(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over rows (of any leading shape) whose label is not IGNORE_INDEX."""
        return nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX,
            weight=self.class_weights, label_smoothing=self.label_smoothing,
        )


def balanced_weights(counts: dict[str, int], labels: list[str]) -> list[float]:
    """scikit-learn's 'balanced' class weights, n / (k * count), for labels in order (unseen: 1)."""
    n, k = sum(counts.values()), len(labels)
    return [n / (k * counts[lab]) if counts.get(lab) else 1.0 for lab in labels]


class Kind:
    """One task kind. Class attributes describe it; class methods do its work. Subclass per kind."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()  # friendly names people write in configs
    description: ClassVar[str] = ""  # one line for docs and `polyhead info`
    head: ClassVar[type[Head]]
    losses: ClassVar[tuple[str, ...]]  # the first is the default
    label_column: ClassVar[str] = "label"  # where a data file holds the task's label, by default
    has_labels: ClassVar[bool] = True  # predicts from a label set (classification, tagging, ...)
    min_labels: ClassVar[int] = 2
    pairs: ClassVar[bool] = False  # its data are pairs of texts, encoded one text at a time
    cosine: ClassVar[bool] = False  # it scores a pair by the cosine of the two embeddings (from_cosine)
    per_text: ClassVar[bool] = True  # predicted for a single text by predict() and /predict
    token_level: ClassVar[bool] = False  # outputs (batch, sequence, n) and needs token offsets
    words: ClassVar[bool] = False  # its examples are word lists (CoNLL files, "tokens" columns)
    activation: ClassVar[str] = "softmax"  # what activate() applies to the raw output (exported graphs say it)
    metric: ClassVar[str]  # the dev metric that picks the best checkpoint
    summary_metrics: ClassVar[tuple[str, ...]]  # what a model card's score table shows
    hub_task: ClassVar[str]  # the Hugging Face Hub pipeline tag
    frozen_fit: ClassVar[bool] = False  # a linear head can be fit on cached encoder features
    tunes: ClassVar[bool] = False  # fits decision settings on dev after training (tune)
    weighted: ClassVar[bool] = False  # takes class_weights and label_smoothing

    # -- the spec ---------------------------------------------------------------------------
    @classmethod
    def check_spec(cls, spec: Any) -> None:
        """Refuse options that do not fit this kind (one line naming the task)."""
        if cls.has_labels and spec.labels and len(spec.labels) < cls.min_labels:
            raise PolyheadError(f"task {spec.name!r}: a {cls.name} task needs at least {cls.min_labels} labels")

    @classmethod
    def num_outputs(cls, spec: Any) -> int:
        """The head's output width."""
        return len(spec.labels)

    @classmethod
    def build_head(cls, spec: Any, in_dim: int) -> Head:
        """The head module for a spec."""
        return cls.head(spec, in_dim)  # type: ignore[call-arg]

    # -- data -------------------------------------------------------------------------------
    @classmethod
    def read_label(cls, value: Any, where: str, task: str, fmt: str) -> Any | None:
        """One example's label as read from a record's column (None: this example has none).
        Raises DataError naming `where` (file:line) and the field."""
        if value is None or value == "":
            return None
        if isinstance(value, (list, dict)):
            raise DataError(f"{where}: label {value!r} for task {task!r} must be a string or a number")
        return str(value)

    @classmethod
    def label_values(cls, label: Any) -> list[str]:
        """The label-set members one example's label uses (checked against the label set)."""
        return [label]

    @classmethod
    def label_set(cls, configured: list[str] | None, train_labels: Sequence[Any]) -> list[str]:
        """The task's labels: as configured, else every value seen in the training labels, sorted."""
        if configured:
            return list(configured)
        return sorted({v for lab in train_labels for v in cls.label_values(lab)})

    @classmethod
    def check_label(cls, spec: Any, label: Any, where: str, configured: bool) -> None:
        """Refuse a label outside the task's label set (dev/test data, or data against configured labels)."""
        allowed = set(spec.labels)
        for v in cls.label_values(label):
            if v not in allowed:
                what = "the configured labels" if configured else "training data"
                raise DataError(
                    f"{where}: unknown label {v!r} for task {spec.name!r} (not in {what}: {', '.join(sorted(allowed)[:12])})"
                )

    @classmethod
    def fit_stats(cls, spec: Any, train_labels: Sequence[Any]) -> dict[str, Any]:
        """What the kind learns from the training labels before training (saved with the head):
        by default the class weights a task asks for (`balanced`: from the labels' counts)."""
        weights = getattr(spec, "class_weights", None)
        if weights is None:
            return {}
        if weights == "balanced":
            counts: dict[str, int] = {}
            for lab in train_labels:
                for v in cls.label_values(lab):
                    counts[v] = counts.get(v, 0) + 1
            return {"class_weights": balanced_weights(counts, spec.labels)}
        return {"class_weights": [float(weights.get(lab, 1.0)) for lab in spec.labels]}

    @classmethod
    def batch_labels(cls, spec: Any, labels: Sequence[Any], firsts: list[list[int]] | None, shape: tuple[int, ...]) -> torch.Tensor:
        """The label tensor of a batch of text examples (`labels[i]` None: example i has none)."""
        index = {lab: i for i, lab in enumerate(spec.labels)}
        return torch.tensor([index[lab] if lab is not None else IGNORE_INDEX for lab in labels])

    # -- inference --------------------------------------------------------------------------
    @classmethod
    def activate(cls, spec: Any, output: np.ndarray) -> np.ndarray:
        """The head's raw output (logits) as what decode() reads, in NumPy: every backend shares it."""
        return softmax(output)

    @classmethod
    def decode(cls, spec: Any, probs: np.ndarray, text: str, offsets: list) -> dict[str, Any]:
        """One text's prediction from its row of activated outputs (and token offsets)."""
        raise NotImplementedError(f"{cls.name} heads do not predict per text")

    @classmethod
    def guesses(cls, spec: Any, output: np.ndarray, firsts: list[list[int]] | None) -> list[Any]:
        """Per example, the prediction in the form gold labels take (what metrics compare)."""
        ids = output.argmax(-1)
        return [spec.labels[int(i)] for i in ids]

    # -- evaluation -------------------------------------------------------------------------
    @classmethod
    def metrics(cls, gold: list, pred: list, spec: Any | None = None) -> dict[str, float]:  # pragma: no cover - abstract
        """Metrics of a task from its gold labels and predictions (`guesses`)."""
        raise NotImplementedError

    @classmethod
    def tune(cls, spec: Any, gold: list, outputs: list[np.ndarray]) -> dict[str, Any]:
        """Decision settings fit on dev outputs after training (saved in spec.stats); none by default."""
        return {}

    # -- reporting --------------------------------------------------------------------------
    @classmethod
    def decode_pairs(cls, spec: Any, state: dict[str, np.ndarray] | None, a: np.ndarray, b: np.ndarray) -> list[dict[str, Any]]:
        """A pair kind's prediction for each pair from the two sides' sentence embeddings (NumPy,
        shared by every backend); `state`: the head's weights as NumPy arrays."""
        raise NotImplementedError(f"{cls.name} tasks do not predict pairs")

    @classmethod
    def from_cosine(cls, task: dict[str, Any], cos: np.ndarray) -> list[float]:
        """A cosine kind's scores on its own scale from the pairs' cosines (`task`: /info's entry)."""
        raise NotImplementedError(f"{cls.name} tasks do not score pairs by cosine")

    @classmethod
    def facts(cls, spec: Any) -> dict[str, Any]:
        """What /info and `polyhead info` show about a task besides its name, kind and labels."""
        return {}

    @classmethod
    def describe_labels(cls, task: dict[str, Any]) -> str:
        """What a model card says the task predicts (`task`: the saved spec as a dict)."""
        return ", ".join(str(x) for x in task.get("labels") or []) or "–"

    @classmethod
    def arrow_columns(cls, spec: Any) -> dict[str, Any]:
        """Ray Data output columns for a per-text task: name suffix -> pyarrow type."""
        raise PolyheadError(f"task {spec.name!r} is a {cls.name} head, which has no Ray Data columns")

    @classmethod
    def arrow_values(cls, spec: Any, preds: list[dict[str, Any]]) -> dict[str, list]:
        """The Ray Data column values (same suffixes as arrow_columns) for decoded predictions."""
        raise PolyheadError(f"task {spec.name!r} is a {cls.name} head, which has no Ray Data columns")

    # -- distillation -----------------------------------------------------------------------
    @classmethod
    def distill_loss(cls, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor | None, lam: float) -> torch.Tensor:
        """The student's loss on labelled rows against lam x the teacher's output + (1 - lam) x the
        gold labels (labels None: the teacher's output alone, on texts without gold labels)."""
        raise PolyheadError(f"{cls.name} tasks cannot be distilled from a teacher yet")


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float32."""
    x = np.asarray(x, dtype=np.float32)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, in float32, without overflow warnings."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x)))).astype(np.float32)


def finite_number(value: Any, where: str, what: str) -> float:
    """`value` as a finite float, or a DataError naming where and what (bools are refused)."""
    if isinstance(value, bool) or isinstance(value, (list, dict)):
        raise DataError(f"{where}: {what} {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{where}: {what} {value!r} is not a number") from None
    if not math.isfinite(number):  # NaN or infinity would turn the loss into NaN
        raise DataError(f"{where}: {what} {value!r} is not a finite number")
    return number
