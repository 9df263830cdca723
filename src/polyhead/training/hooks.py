"""The loop's side of the callbacks (callbacks.py): which hooks a run has, and when they fire."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from .callbacks import Callbacks, EarlyStopping, Progress
from .state import TrainState
from .trackers import Trackers


def attach(run: Any, state: TrainState, given: Callbacks) -> None:
    """The run's hooks: the caller's callbacks, then early stopping, then the trackers."""
    tr = run.cfg.training
    own: list[Any] = []
    if tr.early_stopping_patience:
        own.append(EarlyStopping(tr.early_stopping_patience))
    if tr.log_with:
        run.trackers = Trackers(run.accelerator, run.cfg, run.out)
        own.append(run.trackers)
    run.callbacks = Callbacks(given.callbacks + own)
    run.progress = Progress(run.out, run.total_steps, run.cfg.to_dict(), step=state.global_step, epoch=state.epoch + 1,
                            best=state.best, best_step=state.best_step, evaluations_since_best=state.bad_evals)


@contextlib.contextmanager
def running(run: Any, state: TrainState, given: Callbacks) -> Iterator[None]:
    """Attach the hooks and call on_train_begin; the trackers are closed however the run ends."""
    attach(run, state, given)
    try:
        run.callbacks.fire("on_train_begin", run.progress)
        yield
    finally:
        if run.trackers is not None:
            run.trackers.close()


def frozen(accelerator: Any, cfg: Any, out: Path, given: Callbacks, fit: Callable[[], Any]) -> Any:
    """The frozen-encoder path (heads fit on cached features, no steps): on_train_begin, then
    on_evaluate with the fitted heads' dev scores and on_train_end; trackers log both."""
    own = Trackers(accelerator, cfg, out) if cfg.training.log_with else None
    callbacks = Callbacks(given.callbacks + ([own] if own else []))
    progress = Progress(out, 0, cfg.to_dict())
    try:
        callbacks.fire("on_train_begin", progress)
        result = fit()
        progress.metrics, progress.score, progress.best, progress.is_best = result.dev, result.best_metric, result.best_metric, True
        progress.retention = result.retention
        callbacks.fire("on_evaluate", progress)
        callbacks.fire("on_train_end", progress, result)
        return result
    finally:
        if own is not None:
            own.close()


def stop_requested(run: Any) -> bool:
    """Whether a hook asked to stop, agreed across processes (a hook may see only its process's losses)."""
    wanted = run.progress is not None and run.progress.stop_reason is not None
    if run.accelerator.num_processes > 1:
        flag = torch.tensor([1.0 if wanted else 0.0], device=run.accelerator.device)
        wanted = bool(run.accelerator.reduce(flag, reduction="sum").item() > 0)
        if wanted and run.progress is not None and run.progress.stop_reason is None:
            run.progress.stop_reason = "a callback in another process asked to stop"
    return wanted


def after_step(run: Any, state: TrainState, epoch: int, losses: dict[str, torch.Tensor]) -> None:
    """The on_step hooks, with this step's losses and learning rate; a stop they ask for ends the epoch."""
    p = run.progress
    if p is None or not run.callbacks.wants("on_step"):
        return
    p.step, p.epoch = state.global_step, epoch + 1
    p.losses = {task: float(loss.item()) for task, loss in losses.items()}
    p.lr = float(run.scheduler.get_last_lr()[0]) if run.scheduler is not None else 0.0
    run.callbacks.fire("on_step", p)
    if stop_requested(run):
        state.stopped_early = True


def after_evaluate(run: Any, state: TrainState, epoch: int, metrics: dict[str, dict[str, float]], score: float,
                   better: bool, moved: dict[str, Any]) -> bool:
    """The on_evaluate hooks (early stopping among them); True = one asked to stop."""
    p = run.progress
    if p is None:
        return False
    p.step, p.epoch, p.metrics, p.score, p.is_best = state.global_step, epoch + 1, metrics, score, better
    p.best, p.best_step, p.evaluations_since_best, p.retention = state.best, state.best_step, state.bad_evals, moved
    run.callbacks.fire("on_evaluate", p)
    return stop_requested(run)


def after_checkpoint(run: Any, state: TrainState, folder: Path | None) -> None:
    """The on_checkpoint hooks (folder: the checkpoint, None outside the main process)."""
    if run.progress is not None:
        run.progress.step, run.progress.checkpoint = state.global_step, folder
        run.callbacks.fire("on_checkpoint", run.progress)
