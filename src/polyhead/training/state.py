"""What a training run is and what it produced: the loop's position (`TrainState`, which a
checkpoint saves) and the result (`TrainResult`). Shared by the loop and the frozen-encoder path."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TrainResult:
    """What a run produced: where, how good, how long, how much trained."""

    output_dir: Path
    best_metric: float | None
    best_step: int
    global_step: int
    dev: dict[str, dict[str, float]] = field(default_factory=dict)
    test: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    trainable_params: int = 0
    retention: dict[str, Any] = field(default_factory=dict)  # how far the embedding moved (training/retention.py)
    _model: Any = field(default=None, repr=False, compare=False)

    @property
    def model(self) -> Any:
        """The saved model (output_dir), loaded on first use: heads, label sets, encoder."""
        if self._model is None:
            from ..modeling.model import load

            self._model = load(self.output_dir)
        return self._model

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (what `polyhead train --json` would print)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}
        d["output_dir"] = str(self.output_dir)
        return d


@dataclass
class TrainState:
    """Where a run is: everything besides tensors that a checkpoint saves and resume restores."""

    epoch: int = 0  # the epoch in progress (0-based)
    step_in_epoch: int = 0  # batches of that epoch already trained on
    global_step: int = 0  # optimiser steps
    micro_step: int = 0  # batches (= optimiser steps x grad_accum)
    best: float | None = None  # best dev headline so far, and its step
    best_step: int = 0
    best_dev: dict[str, dict[str, float]] = field(default_factory=dict)
    bad_evals: int = 0  # evaluations since the best one (early stopping)
    stopped_early: bool = False
    epoch_losses: dict[str, list[float]] = field(default_factory=dict)  # task -> [sum, count] this epoch
    history: list[dict[str, Any]] = field(default_factory=list)  # rows of curves.csv
    test: dict[str, dict[str, float]] = field(default_factory=dict)
    refit: dict[str, str] = field(default_factory=dict)  # training.refit_heads: what happened per task
    retention: dict[str, Any] = field(default_factory=dict)  # the kept model's embedding retention
    seconds: float | None = None
    trainable_params: int | None = None
    # Seconds of training up to the last checkpoint, summed over every process that ran this run
    # (a resumed run reports the whole training time, not only the part after the resume).
    elapsed: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainState":
        """Read back to_dict's output (unknown keys from other versions are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
