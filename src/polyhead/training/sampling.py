"""Task samplers: decide which task each training step's batch comes from."""
from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

__all__ = ["STRATEGIES", "TaskSampler"]

STRATEGIES: tuple[str, ...] = ("round_robin", "proportional", "temperature")


def _is_int(x: object) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool)


class TaskSampler:
    """Per-epoch task schedule, a pure function of (seed, epoch) so resume needs only (epoch, step).

    Strategies:
      * ``round_robin``: cycle the tasks in the order of ``num_batches``; equal share each.
      * ``proportional``: each step draws a task with p ∝ num_batches.
      * ``temperature``: each step draws a task with p ∝ num_batches^(1/T)
        (T=1 is proportional, T→∞ uniform).
    """

    def __init__(
        self,
        num_batches: dict[str, int],
        strategy: str = "proportional",
        temperature: float = 2.0,
        seed: int = 0,
        steps_per_epoch: int | None = None,
    ) -> None:
        """Validate the configuration; epoch length defaults to sum(num_batches.values())."""
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown sampling strategy {strategy!r}; valid: {list(STRATEGIES)}")
        if not num_batches:
            raise ValueError("TaskSampler needs at least one task in num_batches")
        bad = {t: n for t, n in num_batches.items() if not _is_int(n) or n <= 0}
        if bad:
            raise ValueError(
                f"num_batches must be positive integers (a task with no data cannot be "
                f"sampled); got {bad}"
            )
        if (
            not isinstance(temperature, Real)
            or isinstance(temperature, bool)
            or not (math.isfinite(temperature) and temperature > 0)
        ):
            raise ValueError(f"sampling temperature must be a finite number > 0, got {temperature!r}")
        # numpy's SeedSequence only accepts non-negative integers.
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if steps_per_epoch is None:
            steps_per_epoch = int(sum(num_batches.values()))
        elif not _is_int(steps_per_epoch) or steps_per_epoch <= 0:
            raise ValueError(f"steps_per_epoch must be a positive integer, got {steps_per_epoch!r}")

        self.tasks: list[str] = list(num_batches)
        self.num_batches: dict[str, int] = {t: int(n) for t, n in num_batches.items()}
        self.strategy = strategy
        self.temperature = float(temperature)
        self.seed = int(seed)
        self.steps_per_epoch = int(steps_per_epoch)
        self._p = self._compute_probabilities()

    def _compute_probabilities(self) -> np.ndarray:
        k = len(self.tasks)
        if self.strategy == "round_robin":
            return np.full(k, 1.0 / k)
        counts = np.array([self.num_batches[t] for t in self.tasks], dtype=np.float64)
        exponent = 1.0 if self.strategy == "proportional" else 1.0 / self.temperature
        # Softmax in log space: n^(1/T) overflows for small T and large n.
        logits = exponent * np.log(counts)
        w = np.exp(logits - logits.max())
        return w / w.sum()

    def probabilities(self) -> dict[str, float]:
        """Target share of steps per task under this strategy."""
        return {t: float(p) for t, p in zip(self.tasks, self._p)}

    def epoch_schedule(self, epoch: int) -> list[str]:
        """The task of every step of `epoch`, deterministic in (seed, epoch)."""
        if not _is_int(epoch) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        k, n = len(self.tasks), self.steps_per_epoch
        if self.strategy == "round_robin":
            # Continue the cycle across epochs so shares stay equal even when n % k != 0.
            offset = (int(epoch) * n) % k
            return [self.tasks[(offset + i) % k] for i in range(n)]
        rng = np.random.default_rng([self.seed, int(epoch)])
        idx = rng.choice(k, size=n, p=self._p)
        return [self.tasks[i] for i in idx]

    def __repr__(self) -> str:
        """Compact summary for logs."""
        return (
            f"TaskSampler(strategy={self.strategy!r}, tasks={self.tasks}, "
            f"steps_per_epoch={self.steps_per_epoch}, temperature={self.temperature}, seed={self.seed})"
        )
