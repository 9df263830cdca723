"""The Accelerator a training run uses (CPU or GPU, mixed precision, DDP over the processes
`accelerate launch` started), and the reset that lets one process train more than once."""
from __future__ import annotations

from typing import Any

import torch


def make_accelerator(mixed_precision: str, device: str | None, log_with: list[str] | None = None,
                     project_dir: Any = None) -> Any:
    """An Accelerator for this run: CPU or GPU, mixed precision, DDP over however many processes,
    and the experiment trackers of training.log_with (training/trackers.py)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    fresh_accelerate_state()
    return Accelerator(
        cpu=(device == "cpu" or not torch.cuda.is_available()),  # also makes CPU-only DDP (gloo) work
        mixed_precision=mixed_precision,
        # Each step runs only its task's heads, so the other heads get no gradient that step.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        log_with=list(log_with) if log_with else None,
        project_dir=str(project_dir) if project_dir is not None else None,
    )


def fresh_accelerate_state() -> None:
    """Forget Accelerate's process-wide state when this process trains more than once.

    Accelerate keeps one `AcceleratorState` per process and refuses a second Accelerator with
    another `mixed_precision` or `cpu` ("AcceleratorState has already been initialized and cannot
    be changed"); benchmarks, notebooks and tests train several configs in one process. It has
    no public reset (its own tests call this private one), so the call is isolated here. Under
    `accelerate launch` (WORLD_SIZE > 1) the state holds the process group and is left alone.
    """
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return
    from accelerate.state import AcceleratorState

    reset = getattr(AcceleratorState, "_reset_state", None)
    if reset is not None:
        reset(reset_partial_state=True)
