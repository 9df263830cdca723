"""Building what a run trains from its config: the model (fresh or from a saved one), the loss
weighting, and the learning-rate schedule."""
from __future__ import annotations

import math
from typing import Any, Callable

from ..errors import PolyheadError
from ..modeling.encoder import Encoder
from ..modeling.model import MultiTaskModel, load
from ..modeling.tasks import TaskSpec
from .config import RunConfig
from .weighting import LossWeighting, build_weighting


def build_model(cfg: RunConfig, specs: dict[str, TaskSpec], device: Any, inherited: set[str] | None = None) -> MultiTaskModel:
    """Encoder from the config (or a saved model to start from) plus one head per task; the names
    of the heads taken from `training.init_from` are added to `inherited` when given."""
    init = load(cfg.resolve(cfg.training.init_from), device=device) if cfg.training.init_from else None
    encoder = Encoder(
        cfg.encoder.model,
        pooling=cfg.encoder.pooling,
        normalize=cfg.encoder.normalize,
        max_length=cfg.encoder.max_length,
        device=device,
    ) if init is None else init.encoder
    model = MultiTaskModel(encoder, list(specs.values()))
    if init is not None:
        for name, head in init.heads.items():
            if name in model.tasks and init.tasks[name].labels == model.tasks[name].labels:
                model.heads[name].load_state_dict(head.state_dict())
                if inherited is not None:
                    inherited.add(name)
    return model


def make_weighting(cfg: RunConfig, tasks: list[str]) -> LossWeighting:
    """The loss weighting of the config; `static` and `loss_scale` take each task's `weight`."""
    try:
        return build_weighting(cfg.training.weighting, tasks, **cfg.weighting_options())
    except ValueError as exc:
        raise PolyheadError(f"training.weighting: {exc}") from None


def lr_lambda(kind: str, warmup: int, total: int) -> Callable[[int], float]:
    """The lr multiplier per optimiser step: linear warm-up, then constant, linear or cosine decay."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        if kind == "constant":
            return 1.0
        done = min(1.0, (step - warmup) / max(1, total - warmup))
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * done))
        return max(0.0, 1.0 - done)

    return f
