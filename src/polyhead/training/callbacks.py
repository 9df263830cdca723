"""Callbacks: what a training run tells code that watches it, and how that code can stop it.

A callback is any object with some of the hooks below (subclass `Callback` to get the rest as
no-ops). Each hook receives the run's `Progress`; `progress.request_stop(reason)` ends the run
as early stopping does: the step in flight finishes, a checkpoint is written, the best model so
far is kept and scored on test, and the report says why it stopped.

    class StopAtLoss(polyhead.Callback):
        def on_step(self, progress):
            if progress.losses.get("topic", 1.0) < 0.05:
                progress.request_stop("topic loss below 0.05")

    polyhead.train(config, "runs/x", callbacks=[StopAtLoss()])

The loop uses the same protocol for its own early stopping (`EarlyStopping`, from
training.early_stopping_patience) and for experiment trackers (training/trackers.py).
Hooks run in every process; only the main process writes files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

HOOKS = ("on_train_begin", "on_step", "on_evaluate", "on_checkpoint", "on_train_end")


@dataclass
class Progress:
    """Where a run is, as the hooks see it (read it; change only through request_stop)."""

    output_dir: Path
    total_steps: int
    config: dict[str, Any]  # the run's config as saved next to the model
    step: int = 0  # optimiser steps so far
    epoch: int = 1  # the epoch in progress, from 1
    losses: dict[str, float] = field(default_factory=dict)  # this step's loss per task (on_step)
    lr: float = 0.0  # the encoder's learning rate at this step
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # the last dev evaluation: task -> metric -> value
    score: float | None = None  # its selection score (training.select_metric)
    best: float | None = None  # the best selection score so far, and its step
    best_step: int = 0
    is_best: bool = False  # whether the last evaluation is the best so far (its model was saved)
    evaluations_since_best: int = 0
    retention: dict[str, Any] = field(default_factory=dict)  # the embedding's retention at the last evaluation
    checkpoint: Path | None = None  # the last checkpoint folder (on_checkpoint)
    stop_reason: str | None = None

    def request_stop(self, reason: str = "a callback asked to stop") -> None:
        """Stop after the step in flight (the first reason given is the one reported)."""
        if self.stop_reason is None:
            self.stop_reason = reason


class Callback:
    """The hooks, each a no-op here: override those you need."""

    def on_train_begin(self, progress: Progress) -> None:
        """Once, before the first step (also when resuming: progress.step says where)."""

    def on_step(self, progress: Progress) -> None:
        """After every optimiser step: progress.losses and progress.lr are this step's."""

    def on_evaluate(self, progress: Progress) -> None:
        """After every dev evaluation: progress.metrics, score, is_best, retention."""

    def on_checkpoint(self, progress: Progress) -> None:
        """After a checkpoint is written: progress.checkpoint is its folder."""

    def on_train_end(self, progress: Progress, result: Any) -> None:
        """Once, after the model is saved and scored: `result` is the TrainResult (test scores)."""


class EarlyStopping(Callback):
    """Stop when the dev selection score has not improved for `patience` evaluations."""

    def __init__(self, patience: int) -> None:
        if patience < 1:
            raise ValueError("patience must be at least 1")
        self.patience = patience

    def on_evaluate(self, progress: Progress) -> None:
        if progress.evaluations_since_best >= self.patience:
            progress.request_stop(f"early stopping: no improvement in {self.patience} evaluations")


class Callbacks:
    """The run's callbacks, called in order; a hook an object lacks is skipped."""

    def __init__(self, callbacks: Sequence[Any]) -> None:
        from ..errors import PolyheadError

        for cb in callbacks:
            if not any(callable(getattr(cb, hook, None)) for hook in HOOKS):
                raise PolyheadError(f"callbacks: {type(cb).__name__} has none of the hooks {', '.join(HOOKS)}")
        self.callbacks = list(callbacks)

    def wants(self, hook: str) -> bool:
        """Whether any callback has this hook (so the loop can skip work no one reads)."""
        return any(callable(getattr(cb, hook, None)) and not _is_noop(cb, hook) for cb in self.callbacks)

    def fire(self, hook: str, progress: Progress, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if callable(fn):
                fn(progress, *args)


def _is_noop(cb: Any, hook: str) -> bool:
    """Whether cb's hook is Callback's own no-op (not overridden)."""
    return isinstance(cb, Callback) and getattr(type(cb), hook) is getattr(Callback, hook)
