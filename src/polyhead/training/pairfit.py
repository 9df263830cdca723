"""Pair-classification heads on a frozen encoder: both texts of every pair encoded once, the
classifier over (u, v, |u - v|, u * v) fit to convergence by full-batch L-BFGS (multinomial
logistic regression on those features), the L2 penalty picked by dev cross-entropy as for
per-text heads (frozen.py)."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..errors import PolyheadError
from ..kinds import TaskSpec, kind_of
from ..kinds.pair_classification import pair_features
from ..modeling.model import MultiTaskModel
from .data import Source

L2_GRID = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)


def pair_arrays(model: MultiTaskModel, spec: TaskSpec, src: Source, split: str, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(X, y) of one pair task on one split: (u, v, |u - v|, u * v) of the sentence embeddings, label ids."""
    examples = [e for e in src.splits.get(split) or [] if spec.name in e.labels]
    if not examples:
        return torch.zeros(0, 4 * model.encoder.dim), torch.zeros(0, dtype=torch.long)
    a = model.encode([e.pair[0] for e in examples], batch_size=batch_size)
    b = model.encode([e.pair[1] for e in examples], batch_size=batch_size)
    x = torch.from_numpy(np.ascontiguousarray(pair_features(a.astype(np.float32), b.astype(np.float32))))
    y = kind_of(spec.kind).batch_labels(spec, [e.labels[spec.name] for e in examples], None, (len(examples),))
    return x, y


def fit_pair_head(model: MultiTaskModel, spec: TaskSpec, src: Source, l2: float | None, fit_linear: Callable[..., Any],
                  say: Callable[[str], None]) -> tuple[float | None, dict[str, float]]:
    """Fit the task's linear pair head on frozen features; returns (the l2 kept, dev loss per candidate)."""
    head = model.heads[spec.name]
    layer = head.output_layer
    if spec.hidden_dim:
        raise PolyheadError(f"task {spec.name!r}: a pair head with a hidden layer cannot be fit on a frozen encoder yet; "
                            "drop hidden_dim or train the encoder too (freeze.encoder: false)")
    x, y = pair_arrays(model, spec, src, "train")
    if x.shape[0] == 0:
        raise PolyheadError(f"task {spec.name!r}: no labelled training pairs")
    dev = pair_arrays(model, spec, src, "dev")

    def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(out, target, weight=head.class_weights, label_smoothing=head.label_smoothing)

    grid = (l2,) if l2 is not None else (L2_GRID if dev[0].shape[0] else (1.0 / x.shape[0],))
    weight = torch.zeros(layer.out_features, x.shape[1])
    bias = torch.zeros(layer.out_features)
    best: tuple[float, float | None, torch.Tensor, torch.Tensor] | None = None
    candidates: dict[str, float] = {}
    for penalty in grid:
        weight, bias = fit_linear(x, y, penalty, weight, bias, loss=loss)
        dev_loss = loss(dev[0] @ weight.T + bias, dev[1]).item() if dev[0].shape[0] else math.nan
        candidates[f"{penalty:g}"] = dev_loss
        if best is None or dev_loss < best[0]:
            best = (dev_loss, penalty, weight.clone(), bias.clone())
    assert best is not None
    with torch.no_grad():
        layer.weight.copy_(best[2])
        layer.bias.copy_(best[3])
    return best[1], candidates
