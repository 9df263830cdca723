"""Heads fit on a frozen encoder around joint training, with the frozen-head solvers on cached
features (frozen.py): before the loop, on the starting encoder (training.init_heads: fit), and the
optional second stage after it (training.refit_heads), where each per-text head is refit on the
trained encoder and kept only where it scores better on dev than the jointly trained head.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..kinds import kind_of
from ..modeling.model import MultiTaskModel
from .config import RunConfig
from .data import Source
from .evaluation import evaluate, tune_decisions
from .frozen import fit_frozen_heads
from .metrics import headline_metric


def refit_heads(model: MultiTaskModel, sources: list[Source], cfg: RunConfig, say: Callable[[str], None]) -> dict[str, str]:
    """The optional second stage of joint training: refit each per-text head on the trained, now
    frozen encoder (cached features, the frozen-head solvers) and keep the refit head only where its
    dev score beats the jointly trained one. The encoder does not change. Returns a line per task."""
    tr = cfg.training
    if cfg.freeze.all:
        return {}  # nothing may learn
    # A head the config freezes (freeze.heads) stays as it is: the refit is training too.
    names = [t for t in model.tasks if kind_of(model.tasks[t].kind).frozen_fit and t not in cfg.freeze.heads]
    if not names:
        return {}
    with torch.no_grad():
        before = evaluate(model, sources, "dev", tr.eval_batch_size)
        old = {t: {k: v.clone() for k, v in model.heads[t].state_dict().items()} for t in names}
    report = fit_frozen_heads(model, sources, names, solver="auto", l2=tr.head_l2, head_lr=tr.head_lr,
                              weight_decay=tr.weight_decay, seed=tr.seed, progress=False, say=say)
    lines = {}
    for t in names:
        metric = headline_metric(model.tasks[t])
        was, now = (before.get(t) or {}).get(metric), (report.dev.get(t) or {}).get(metric)
        if was is None or now is None or now <= was:
            model.heads[t].load_state_dict(old[t])
            shown = ["none" if v is None else f"{v:.4f}" for v in (was, now)]
            lines[t] = f"{t}: kept the jointly trained head (dev {metric} {shown[0]} -> refit {shown[1]})"
        else:
            lines[t] = f"{t}: refit head kept (dev {metric} {was:.4f} -> {now:.4f})"
        say(lines[t])
    return lines


def fit_heads_first(model: MultiTaskModel, sources: list[Source], cfg: RunConfig, inherited: set[str],
                    say: Callable[[str], None], resume: bool = False) -> None:
    """training.init_heads: fit: each fresh head that can be fit on cached features (frozen_fit) is
    first fit on the starting encoder, frozen, with the frozen-head solvers (train split; l2 picked
    on dev), then trained jointly as usual. Heads from init_from and heads the config freezes keep
    their weights. Every process fits the same heads from the same data and seed (several
    processes: DDP then copies rank 0's weights to the others when the model is wrapped)."""
    tr = cfg.training
    if tr.init_heads != "fit" or resume or cfg.freeze.all:  # a resumed run restores its heads from the checkpoint
        return
    names = [t for t, spec in model.tasks.items()
             if kind_of(spec.kind).frozen_fit and t not in inherited and t not in cfg.freeze.heads]
    if not names:
        return
    say(f"fitting {', '.join(names)} on the starting encoder first (training.init_heads: fit)")
    fit_frozen_heads(model, sources, names, solver=tr.head_solver, l2=tr.head_l2, head_lr=tr.head_lr,
                     weight_decay=tr.weight_decay, seed=tr.seed, progress=False, say=say, score_test=False)


def tune_decisions_on_dev(model: MultiTaskModel, sources: list[Source], cfg: RunConfig, say: Callable[[str], None]) -> None:
    """The kept model's decision settings (multi-label thresholds) fit on dev, one line per task."""
    for task, update in tune_decisions(model, sources, "dev", cfg.training.eval_batch_size).items():
        shown = ", ".join(f"{k}: {_short(v)}" for k, v in update.items())
        say(f"{task}: tuned on dev ({shown})")


def _short(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value[:8]) + (", ..." if len(value) > 8 else "") + "]"
    return str(value)
