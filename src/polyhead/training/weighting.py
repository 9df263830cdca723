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
    "LossScaleWeighting",
    "FAMO",
    "WEIGHTINGS",
    "build_weighting",
    "TASK_WEIGHTED",
    "with_task_weights",
]

# Added to a loss before dividing by it or taking its log, so a loss of exactly 0 gives a large
# but finite weight instead of inf/NaN (the FAMO reference implementation uses the same 1e-8).
EPS = 1e-8


def _number(name: str, key: str, value: Any, low: float, high: float, low_open: bool = False,
            high_open: bool = False) -> float:
    """A float option checked against its range, or a one-line ValueError naming method and option."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name!r} weighting option {key} must be a number, got {value!r}") from None
    too_low = number <= low if low_open else number < low
    too_high = number >= high if high_open else number > high
    if not math.isfinite(number) or too_low or too_high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name!r} weighting option {key} must be in {interval}, got {value!r}")
    return number


# The methods that take a `weights` option; a config fills it from each task's `weight:`.
TASK_WEIGHTED = ("static", "loss_scale")


def with_task_weights(method: str, options: dict[str, Any], weights: dict[str, float]) -> dict[str, Any]:
    """`options` plus `weights` (each task's configured `weight:`) where `method` takes them and
    the options do not already give them."""
    if method in TASK_WEIGHTED and "weights" not in options:
        return {**options, "weights": dict(weights)}
    return dict(options)


def _task_weights(name: str, tasks: list[str], given: Any) -> dict[str, float]:
    """`weights={task: float}` checked: every task given, no unknown task, finite and >= 0."""
    if not isinstance(given, dict):
        raise ValueError(f"{name!r} weighting option weights must be a mapping {{task: weight}}, got {given!r}")
    missing = [t for t in tasks if t not in given]
    if missing:
        raise ValueError(f"{name!r} weighting has no weight for task(s): {missing}")
    # An unknown key is almost always a typo of a task name, which would silently
    # leave that task at whatever weight the typo'd name was meant to replace.
    extra = [t for t in given if t not in tasks]
    if extra:
        raise ValueError(f"{name!r} weighting got weights for unknown task(s) {extra}; tasks: {tasks}")
    weights = {t: _number(name, f"weights.{t}", given[t], 0.0, math.inf, high_open=True) for t in tasks}
    return weights


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
        self._weights = _task_weights(self.name, self.tasks, given)

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


class LossScaleWeighting(LossWeighting):
    """Each task's loss divided by a running mean of its own value: L_t / m_t.

    m_t is an exponential moving average of the task's (detached) loss, updated each time the
    task is in a batch: m_t <- beta * m_t + (1 - beta) * L_t, initialised to the first value
    seen. It is updated before it is used, so the very first step of a task already has weight
    1 / L_t. Because m_t carries no gradient, the gradient of L_t / m_t is grad(L_t) / m_t: every
    task contributes a gradient of the same scale whatever the units of its loss (a cross-entropy
    and a cosine-similarity MSE about 10x smaller count alike), and a task with a constant loss
    has weighted loss 1. Option `beta` (default 0.9, in [0, 1)): how much of the mean is kept per
    observation of the task, i.e. a horizon of about 1 / (1 - beta) of *that task's* batches;
    beta = 0 divides by the current loss (the gradient of log L_t). The means are buffers, so a
    checkpoint holds them and resume continues exactly; they are updated only in training mode
    and only from finite losses (an inf/NaN loss, e.g. an fp16 overflow step, is not remembered).
    Option `weights` ({task: w_t >= 0}, default 1 each; from the config, each task's `weight:`)
    multiplies the normalised losses, w_t * L_t / m_t: after the units are taken out, a task with
    w_t = 2 pulls the shared encoder twice as hard as one with 1.
    Weight reported: w_t / m_t (w_t for a task not seen yet).
    """

    name = "loss_scale"

    def __init__(self, tasks: list[str], **options: Any) -> None:
        """Take options `beta` (default 0.9, 0 <= beta < 1) and `weights` (default 1 per task)."""
        beta = options.pop("beta", 0.9)
        given = options.pop("weights", None)
        super().__init__(tasks, **options)
        self.beta = _number(self.name, "beta", beta, 0.0, 1.0, high_open=True)
        self.task_weights = {t: 1.0 for t in self.tasks} if given is None else _task_weights(self.name, self.tasks, given)
        # nan = the task has not been seen yet (float32 for the same reason as in DWA).
        self.register_buffer("running_mean", torch.full((len(self.tasks),), float("nan"), dtype=torch.float32))

    @torch.no_grad()
    def _observe(self, task: str, value: torch.Tensor) -> None:
        i = self._index[task]
        value = value.to(self.running_mean.device, torch.float32)
        old = self.running_mean[i]
        new = torch.where(torch.isnan(old), value, self.beta * old + (1.0 - self.beta) * value)
        self.running_mean[i] = torch.where(torch.isfinite(value), new, old)

    def _scale(self, task: str, loss: torch.Tensor) -> torch.Tensor:
        """|m_t| + EPS as a fresh tensor on the loss's device (the current loss if m_t is unknown)."""
        m = self.running_mean[self._index[task]].detach().to(loss.device)
        m = torch.where(torch.isnan(m), loss.detach().float(), m)  # only outside training mode
        return m.abs() + EPS

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """Σ w_t L_t / m_t over the tasks present, after updating each m_t with this batch's L_t."""
        self._check(losses)
        total: torch.Tensor | float = 0.0
        for task, loss in losses.items():
            if self.training:
                self._observe(task, loss.detach())
            total = total + self.task_weights[task] * loss / self._scale(task, loss)
        return total  # type: ignore[return-value]

    def weights(self) -> dict[str, float]:
        """w_t / m_t per task (w_t for a task not seen yet)."""
        m = self.running_mean.detach().float().cpu()
        return {t: self.task_weights[t] * (1.0 if math.isnan(float(v)) else 1.0 / (abs(float(v)) + EPS))
                for t, v in zip(self.tasks, m)}

    def extra_repr(self) -> str:
        """Show tasks, beta and any weight other than 1."""
        other = {t: w for t, w in self.task_weights.items() if w != 1.0}
        return f"tasks={self.tasks}, beta={self.beta}" + (f", weights={other}" if other else "")


class FAMO(LossWeighting):
    """FAMO, Fast Adaptive Multitask Optimization (Liu, Liu, Jin, Stone & Liu, NeurIPS 2023).

    Task logits ξ (one per task, start 0) give weights z = softmax(ξ). With D_t = L_t + EPS the
    objective is Σ_t (z_t / c) · log D_t, c = Σ_j z_j / D_j held constant (detached), so the model
    moves along Σ_t α_t ∇L_t with α_t = (z_t / D_t) / c: a convex combination of the task
    gradients in which each task's log-loss counts by z_t. ξ is then learned from how much each
    task's log-loss actually fell, δ_t = log D_t(before) - log D_t(after): its gradient is
    J_softmax(ξ)ᵀ δ, stepped by FAMO's own Adam (learning rate `logit_lr`, default 0.025, L2
    decay `gamma`, default 0.01: the reference implementation's defaults) so that a task whose
    loss falls less than the others gains weight. O(1) per step: no per-task gradients.

    Adaptation to this loop (the paper sees every task's loss on one batch, and recomputes the
    losses on that batch after the model step; here a batch usually carries one task):

    - δ_t comes from the task's own history: the log-loss remembered from the last batch of task
      t is compared with this batch's, i.e. the decrease over the interval since t was last seen
      (other tasks' steps included, a different batch). ξ is updated in `combine()` whenever a
      present task has such a remembered value, before this batch's weights are computed; δ is 0
      for the tasks not in the batch. As the ξ-gradient is linear in δ, the per-task updates
      over a round of tasks add up (for small steps) to the paper's update, and the decreases of
      one task telescope, so how often a task is sampled does not bias its total push.
    - c runs over every task seen so far, the absent ones with their remembered loss, not just
      the tasks present: otherwise a single task would always get α = 1 (plain summing, z
      unused). So a one-task step moves the model by that task's share α_t of the full FAMO
      direction, and a round of steps over all tasks adds up to it; when a batch carries every
      task, this is the paper's step exactly. Tasks never seen are left out of c (the first
      step of the first task has α = 1).
    - ξ and its Adam moments are buffers, not parameters: they never reach the model's AdamW,
      its gradient clipping or its learning-rate schedule, and they go into checkpoints with the
      remembered log-losses, so resume continues exactly. State changes only in training mode
      and only from finite losses. Under DDP the buffers follow rank 0 (DDP broadcasts them).

    Losses must be >= 0 with minimum 0 (all polyhead losses are): a negative loss is clamped to
    0 before the log. The returned scalar is FAMO's objective, which can be negative; only its
    gradient matters. Weights reported: z (sums to 1).
    """

    name = "famo"
    ADAM_BETAS = (0.9, 0.999)  # the reference's torch.optim.Adam defaults
    ADAM_EPS = 1e-8

    def __init__(self, tasks: list[str], **options: Any) -> None:
        """Take options `logit_lr` (default 0.025, > 0) and `gamma` (default 0.01, >= 0)."""
        logit_lr = options.pop("logit_lr", 0.025)
        gamma = options.pop("gamma", 0.01)
        super().__init__(tasks, **options)
        self.logit_lr = _number(self.name, "logit_lr", logit_lr, 0.0, math.inf, low_open=True, high_open=True)
        self.gamma = _number(self.name, "gamma", gamma, 0.0, math.inf, high_open=True)
        k = len(self.tasks)
        self.register_buffer("logits", torch.zeros(k, dtype=torch.float32))
        # log D_t of the task's last batch; nan = not seen yet.
        self.register_buffer("last_log_loss", torch.full((k,), float("nan"), dtype=torch.float32))
        self.register_buffer("adam_exp_avg", torch.zeros(k, dtype=torch.float32))
        self.register_buffer("adam_exp_avg_sq", torch.zeros(k, dtype=torch.float32))
        self.register_buffer("adam_steps", torch.zeros((), dtype=torch.long))

    @staticmethod
    def _log_loss(loss: torch.Tensor) -> torch.Tensor:
        # The clamp's value with the identity's gradient: a loss of exactly 0 still passes its
        # gradient (clamp_min's own gradient at the boundary is 1 up to torch 2.14 and 0 from 2.15).
        loss = loss.float()
        return torch.log(loss + (loss.clamp_min(0.0) - loss).detach() + EPS)

    @torch.no_grad()
    def _update_logits(self, idx: torch.Tensor, log_now: torch.Tensor) -> None:
        """One Adam step on ξ from δ = remembered - current log-loss of the present tasks."""
        last = self.last_log_loss[idx]
        known = torch.isfinite(last) & torch.isfinite(log_now)
        if not bool(known.any()):
            return
        delta = torch.zeros_like(self.logits)
        delta[idx] = torch.where(known, last - log_now, torch.zeros_like(log_now))
        z = torch.softmax(self.logits, dim=0)
        grad = z * (delta - (z * delta).sum())  # J_softmaxᵀ δ (J is symmetric)
        grad = grad + self.gamma * self.logits  # Adam's L2 weight decay, as torch.optim.Adam does it
        b1, b2 = self.ADAM_BETAS
        self.adam_steps += 1
        step = int(self.adam_steps)
        self.adam_exp_avg.mul_(b1).add_(grad, alpha=1 - b1)
        self.adam_exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.adam_exp_avg_sq / (1 - b2**step)).sqrt() + self.ADAM_EPS
        self.logits.sub_(self.logit_lr / (1 - b1**step) * self.adam_exp_avg / denom)

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """Σ (z_t / c) · log(L_t + EPS) over the tasks present; updates ξ first (training mode)."""
        self._check(losses)
        device = self.logits.device
        idx = torch.tensor([self._index[t] for t in losses], device=device)
        log_now = torch.stack([self._log_loss(loss.detach()).to(device) for loss in losses.values()])
        with torch.no_grad():
            if self.training:
                self._update_logits(idx, log_now)
            z = torch.softmax(self.logits, dim=0)
            log_d = self.last_log_loss.clone()
            log_d[idx] = log_now
            inv = z * torch.exp(-log_d)  # z_j / D_j: current loss if present, else remembered
            c = torch.where(torch.isfinite(inv), inv, torch.zeros_like(inv)).sum().clamp_min(torch.finfo(torch.float32).tiny)
            coef = z / c
            if self.training:
                keep = torch.isfinite(log_now)
                self.last_log_loss[idx] = torch.where(keep, log_now, self.last_log_loss[idx])
        total: torch.Tensor | float = 0.0
        for task, loss in losses.items():
            total = total + coef[self._index[task]].to(loss.device) * self._log_loss(loss)
        return total  # type: ignore[return-value]

    def weights(self) -> dict[str, float]:
        """z = softmax(ξ) per task."""
        return dict(zip(self.tasks, torch.softmax(self.logits.detach().float(), dim=0).cpu().tolist()))

    def extra_repr(self) -> str:
        """Show tasks and the logit optimiser's settings in print(module)."""
        return f"tasks={self.tasks}, logit_lr={self.logit_lr}, gamma={self.gamma}"


WEIGHTINGS: dict[str, type[LossWeighting]] = {
    cls.name: cls
    for cls in (EqualWeighting, StaticWeighting, UncertaintyWeighting, DynamicWeightAverage, LossScaleWeighting, FAMO)
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
