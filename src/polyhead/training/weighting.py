"""Loss-weighting strategies that turn per-task losses into the one scalar to backprop.

Each method is a small `LossWeighting` subclass registered in `WEIGHTINGS`, so adding a
method never touches the training loop. They are `nn.Module`s so learnable weights reach
the optimiser via `.parameters()` and all state (learnable or not) travels in `state_dict()`.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = [
    "LossWeighting",
    "EqualWeighting",
    "StaticWeighting",
    "UncertaintyWeighting",
    "DynamicWeightAverage",
    "WEIGHTINGS",
    "build_weighting",
]


class LossWeighting(nn.Module):
    """Base class: combine the losses of the tasks in a batch into one scalar."""

    name: str = "base"

    def __init__(self, tasks: list[str], **options: Any) -> None:
        """Validate the task list; subclasses pop their own options before calling this."""
        super().__init__()
        if options:
            raise ValueError(
                f"{self.name!r} weighting got unknown option(s): {sorted(options)}"
            )
        tasks = list(tasks)
        if not tasks:
            raise ValueError(f"{self.name!r} weighting needs at least one task")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"{self.name!r} weighting got duplicate task names: {tasks}")
        self.tasks: list[str] = tasks
        self._index: dict[str, int] = {t: i for i, t in enumerate(tasks)}

    def _check(self, losses: dict[str, torch.Tensor]) -> None:
        if not losses:
            raise ValueError("combine() got no losses")
        unknown = [t for t in losses if t not in self._index]
        if unknown:
            raise ValueError(f"combine() got unknown task(s) {unknown}; known: {self.tasks}")

    def task_weight(self, task: str) -> torch.Tensor | float:
        """The multiplier applied to `task`'s loss (subclasses override)."""
        return 1.0

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """Weighted sum of the given task losses (only the tasks present in this batch)."""
        self._check(losses)
        return sum(self.task_weight(t) * loss for t, loss in losses.items())  # type: ignore[return-value]

    def weights(self) -> dict[str, float]:
        """Current effective weight per task, for logging."""
        return {t: float(self.task_weight(t)) for t in self.tasks}

    def epoch_end(self, mean_losses: dict[str, float]) -> None:
        """Hook called once per epoch with each task's mean training loss (default: no-op)."""

    def extra_repr(self) -> str:
        """Show the tasks in print(module)."""
        return f"tasks={self.tasks}"


class EqualWeighting(LossWeighting):
    """Plain sum of task losses: weight 1 for every task."""

    name = "equal"


class StaticWeighting(LossWeighting):
    """Fixed user-given weight per task."""

    name = "static"

    def __init__(self, tasks: list[str], **options: Any) -> None:
        """Take `weights={task: float}` covering exactly the given tasks."""
        given = options.pop("weights", None)
        super().__init__(tasks, **options)
        if given is None:
            raise ValueError("'static' weighting needs a `weights` option: {task: weight}")
        missing = [t for t in self.tasks if t not in given]
        if missing:
            raise ValueError(f"'static' weighting has no weight for task(s): {missing}")
        # An unknown key is almost always a typo of a task name, which would silently
        # leave that task at whatever weight the typo'd name was meant to replace.
        extra = [t for t in given if t not in self._index]
        if extra:
            raise ValueError(
                f"'static' weighting got weights for unknown task(s) {extra}; tasks: {self.tasks}"
            )
        bad = {t: w for t, w in given.items() if not (math.isfinite(float(w)) and float(w) >= 0)}
        if bad:
            raise ValueError(f"'static' weights must be finite and >= 0, got {bad}")
        self._weights: dict[str, float] = {t: float(given[t]) for t in self.tasks}

    def task_weight(self, task: str) -> float:
        """The configured weight of `task`."""
        return self._weights[task]


class UncertaintyWeighting(LossWeighting):
    """Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla 2018).

    Learns s_t = log σ_t² per task; the batch loss is Σ exp(-s_t)·L_t + s_t, whose
    minimum over s_t is at s_t = log L_t, so noisy/large losses are down-weighted.
    """

    name = "uncertainty"

    def __init__(self, tasks: list[str], **options: Any) -> None:
        """Create one learnable log-variance per task, initialised to 0 (weight 1)."""
        super().__init__(tasks, **options)
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)))

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """Σ exp(-s_t)·L_t + s_t over the tasks present in this batch."""
        self._check(losses)
        total: torch.Tensor | float = 0.0
        for task, loss in losses.items():
            # .to() is differentiable, so this works even if the trainer forgot to move
            # the weighting module to the loss's device.
            s = self.log_vars[self._index[task]].to(loss.device)
            total = total + torch.exp(-s) * loss + s
        return total  # type: ignore[return-value]

    def weights(self) -> dict[str, float]:
        """exp(-s_t) per task."""
        w = torch.exp(-self.log_vars.detach().float()).cpu().tolist()
        return dict(zip(self.tasks, w))


class DynamicWeightAverage(LossWeighting):
    """Dynamic Weight Average (Liu, Johns & Davison 2019).

    w_t = K·softmax_t(r_t / T) with r_t = L_t(e-1) / L_t(e-2), the ratio of the task's
    last two per-epoch mean losses: a task whose loss falls slowly gets more weight.
    Weights are 1 until two epochs of losses have been seen.
    """

    name = "dwa"

    def __init__(self, tasks: list[str], **options: Any) -> None:
        """Take option `temperature` (default 2.0, > 0)."""
        temperature = float(options.pop("temperature", 2.0))
        super().__init__(tasks, **options)
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"'dwa' temperature must be > 0, got {temperature}")
        self.temperature = temperature
        k = len(self.tasks)
        # Buffers rather than Python attributes so that resume from a state_dict is exact;
        # float32 (not float64) so .to(device) works on backends without float64 (MPS).
        # Row 0 = mean losses of epoch e-2, row 1 = epoch e-1; nan = not seen yet.
        self.register_buffer("loss_history", torch.full((2, k), float("nan"), dtype=torch.float32))
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("current_weights", torch.ones(k, dtype=torch.float32))

    def epoch_end(self, mean_losses: dict[str, float]) -> None:
        """Record this epoch's mean losses and recompute the weights for the next epoch."""
        unknown = [t for t in mean_losses if t not in self._index]
        if unknown:
            raise ValueError(f"epoch_end() got unknown task(s) {unknown}; known: {self.tasks}")
        # A task that got no batches this epoch (possible with random task sampling) keeps
        # its previous loss, i.e. ratio 1 next time, instead of crashing or skewing weights.
        new = self.loss_history[1].clone()
        for task, value in mean_losses.items():
            new[self._index[task]] = float(value)
        self.loss_history[0] = self.loss_history[1]
        self.loss_history[1] = new
        self.epochs_seen += 1
        if int(self.epochs_seen) < 2:
            return
        prev, last = self.loss_history[0], self.loss_history[1]
        ratio = last / prev
        # Unknown or degenerate history (never seen, zero/negative loss) -> neutral ratio.
        ok = torch.isfinite(ratio) & (prev > 0) & (last >= 0)
        ratio = torch.where(ok, ratio, torch.ones_like(ratio))
        self.current_weights.copy_(len(self.tasks) * torch.softmax(ratio / self.temperature, dim=0))

    def task_weight(self, task: str) -> float:
        """The DWA weight of `task` for the current epoch."""
        return float(self.current_weights[self._index[task]])

    def extra_repr(self) -> str:
        """Show tasks and temperature in print(module)."""
        return f"tasks={self.tasks}, temperature={self.temperature}"


WEIGHTINGS: dict[str, type[LossWeighting]] = {
    cls.name: cls
    for cls in (EqualWeighting, StaticWeighting, UncertaintyWeighting, DynamicWeightAverage)
}


def build_weighting(name: str, tasks: list[str], **options: Any) -> LossWeighting:
    """Instantiate the weighting registered under `name` for `tasks`."""
    try:
        cls = WEIGHTINGS[name]
    except KeyError:
        raise ValueError(
            f"unknown loss weighting {name!r}; valid: {sorted(WEIGHTINGS)}"
        ) from None
    return cls(tasks, **options)
