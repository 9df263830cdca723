"""The optional second stage of joint training (training.refit_heads): after the loop, each
per-text head is refit on the trained encoder, now frozen, with the frozen-head solvers on cached
features (frozen.py), and kept only where it scores better on dev than the jointly trained head.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..modeling.heads import head_class
from ..modeling.model import MultiTaskModel
from .config import RunConfig
from .data import Source
from .evaluation import evaluate
from .frozen import fit_frozen_heads
from .metrics import METRIC_FOR_KIND


def refit_heads(model: MultiTaskModel, sources: list[Source], cfg: RunConfig, say: Callable[[str], None]) -> dict[str, str]:
    """The optional second stage of joint training: refit each per-text head on the trained, now
    frozen encoder (cached features, the frozen-head solvers) and keep the refit head only where its
    dev score beats the jointly trained one. The encoder does not change. Returns a line per task."""
    tr = cfg.training
    if cfg.freeze.all:
        return {}  # nothing may learn
    # A head the config freezes (freeze.heads) stays as it is: the refit is training too.
    names = [t for t in model.tasks if head_class(model.tasks[t]).per_text and t not in cfg.freeze.heads]
    if not names:
        return {}
    with torch.no_grad():
        before = evaluate(model, sources, "dev", tr.eval_batch_size)
        old = {t: {k: v.clone() for k, v in model.heads[t].state_dict().items()} for t in names}
    report = fit_frozen_heads(model, sources, names, solver="auto", l2=tr.head_l2, head_lr=tr.head_lr,
                              weight_decay=tr.weight_decay, seed=tr.seed, progress=False, say=say)
    lines = {}
    for t in names:
        metric = METRIC_FOR_KIND[model.tasks[t].kind]
        was, now = (before.get(t) or {}).get(metric), (report.dev.get(t) or {}).get(metric)
        if was is None or now is None or now <= was:
            model.heads[t].load_state_dict(old[t])
            lines[t] = f"{t}: kept the jointly trained head (dev {metric} {was} -> refit {now})"
        else:
            lines[t] = f"{t}: refit head kept (dev {metric} {was:.4f} -> {now:.4f})"
        say(lines[t])
    return lines
