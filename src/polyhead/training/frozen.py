"""Heads on a frozen encoder, fit to convergence on cached features.

With the encoder frozen, each head is a small model of fixed features: a linear head is
multinomial logistic regression, a convex problem. Fitting it with minibatch AdamW at a
fine-tuning learning rate for a few epochs (what the loop does) stops far from its optimum; a
full-batch L-BFGS fit on the cached features reaches it in seconds. So:

- linear heads (no hidden layer): full-batch L-BFGS on mean cross-entropy + (l2 / 2) * ||W||^2,
  with l2 picked by dev cross-entropy from a grid (warm-started from the strongest penalty down), or
  `training.head_l2`; without dev data, l2 = 1 / n_train, scikit-learn's default C = 1;
- heads with a hidden layer: AdamW on the cached features (lr `training.head_lr`, default 1e-3),
  many cheap epochs, early stopping on dev, the best epoch kept.

Token heads fit on one row per word (its first sub-token state), which is exactly what the
loop's loss reads. Similarity heads have no parameters: with a frozen encoder there is nothing
to fit, and they are only evaluated. Evaluation reads the same cached features.
"""
from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..console import progress as progress_bar
from ..errors import PolyheadError
from ..modeling.encoder import resolve_precision
from ..kinds import TaskSpec, kind_of
from ..modeling.heads import head_class
from ..modeling.model import MultiTaskModel
from .build import build_model
from .config import RunConfig, load_config
from .data import Source, build_sources, describe
from .evaluation import evaluate, headline, summarize, write_training_files
from .features import FEATURES_DIR, FeatureCache, SplitFeatures
from .lists import sources_from_lists
from .pairfit import fit_pair_head
from .freezing import apply_freezing
from .metrics import headline_metric, task_metrics
from .state import TrainResult, TrainState

L2_GRID = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)  # strongest first: each fit warm-starts the next
LBFGS_MAX_ITER = 500
ADAMW_LR = 1e-3  # for hidden-layer heads on fixed features; training.head_lr overrides
ADAMW_MAX_EPOCHS = 200
ADAMW_PATIENCE = 10  # epochs without a better dev score
ADAMW_EPOCHS_WITHOUT_DEV = 30
ADAMW_BATCH = 128


Parts = list[tuple[Source, SplitFeatures]]  # a split of every dataset that labels a task, with its features


@dataclass
class HeadFit:
    """How one task's head was fit."""

    task: str
    solver: str  # lbfgs, adamw, none (nothing to fit: similarity)
    l2: float | None
    epochs: int | None
    dev: dict[str, float]
    seconds: float
    candidates: dict[str, float] = field(default_factory=dict)  # l2 (or epoch) -> dev headline


@dataclass
class FitReport:
    """What fitting heads on a frozen encoder did: per task, and the time spent encoding vs fitting."""

    tasks: dict[str, HeadFit]
    encode_seconds: float
    fit_seconds: float
    dev: dict[str, dict[str, float]]
    test: dict[str, dict[str, float]]
    cache_hits: int = 0
    cache_builds: int = 0


# -- the public API ------------------------------------------------------------------------------
def fit_heads(
    model: MultiTaskModel,
    data: str | os.PathLike | RunConfig | dict[str, dict[str, Any]],
    tasks: Sequence[str] | None = None,
    *,
    solver: str = "auto",
    l2: float | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    say: Callable[[str], None] | None = None,
) -> FitReport:
    """Fit task heads on a frozen encoder from a config (path or RunConfig) or in-memory lists.

    `data` in memory: ``{"topic": {"train": (texts, labels), "dev": (texts, labels)},
    "ner": {"kind": "token", "train": (word_lists, tag_lists)}}`` (kind defaults to
    classification). Tasks the model lacks are added, with labels from their training data;
    the encoder and every head not in `tasks` (default: every task the data labels) are left
    exactly as they were.
    """
    options: dict[str, Any] = {}
    if isinstance(data, dict):
        sources, specs = sources_from_lists(data)
    else:
        cfg = data if isinstance(data, RunConfig) else load_config(data)
        sources, specs = build_sources(cfg)
        tr = cfg.training  # the config's own head settings, unless given here
        options = {"head_lr": tr.head_lr, "weight_decay": tr.weight_decay, "seed": tr.seed}
        solver = solver if solver != "auto" else (tr.head_solver if tr.head_solver != "loop" else "auto")
        l2 = l2 if l2 is not None else tr.head_l2
    names = list(tasks) if tasks is not None else list(specs)
    unknown = [t for t in names if t not in specs]
    if unknown:
        raise PolyheadError(f"no data for task(s) {', '.join(unknown)}; the data labels {', '.join(specs) or 'none'}")
    for name in names:
        if name in model.tasks:
            if model.tasks[name].kind != specs[name].kind or list(model.tasks[name].labels) != list(specs[name].labels):
                raise PolyheadError(
                    f"task {name!r} exists in the model with other labels or kind; give the new task another name"
                )
        else:
            model.add_head(specs[name])
    cache = FeatureCache(model.encoder, Path(cache_dir) if cache_dir else None, model.encoder.precision)
    return fit_frozen_heads(model, sources, names, solver=solver, l2=l2, cache=cache, progress=progress, say=say, **options)


# -- fitting -------------------------------------------------------------------------------------
def fit_frozen_heads(
    model: MultiTaskModel,
    sources: list[Source],
    tasks: Sequence[str] | None = None,
    *,
    solver: str = "auto",
    l2: float | None = None,
    head_lr: float | None = None,
    weight_decay: float = 0.01,
    seed: int = 42,
    cache: FeatureCache | None = None,
    progress: bool = True,
    say: Callable[[str], None] | None = None,
    score_test: bool = True,
) -> FitReport:
    """Encode each split once (frozen encoder), fit the heads of `tasks` on the cached features,
    and score every task of `sources` on dev and test (test only with `score_test`, which is also
    the only split not encoded without it). Only the heads of `tasks` change."""
    say = say or (lambda message: None)
    splits = ("train", "dev", "test") if score_test else ("train", "dev")
    cache = cache or FeatureCache(model.encoder, None, model.encoder.precision)
    names = list(tasks) if tasks is not None else [t for s in sources for t in s.tasks]
    text_sources = [s for s in sources if not s.pairs]
    total = sum(len(s.splits.get(split) or []) for s in text_sources for split in splits)
    with progress_bar(total, progress, "encoding (frozen, once)") as bar:
        feats = {(s.name, split): cache.get(s, split, model.tasks, bar.update)
                 for s in text_sources for split in splits if s.splits.get(split)}
    if cache.builds or cache.hits:
        say(f"features: {cache.builds} split(s) encoded in {cache.encode_seconds:.1f}s, {cache.hits} read from the cache")
    fits: dict[str, HeadFit] = {}
    fit_started = time.perf_counter()
    for name in names:
        spec = model.tasks[name]
        started = time.perf_counter()
        kind = kind_of(spec.kind)
        if not kind.frozen_fit:
            fits[name] = HeadFit(name, "none", None, None, {}, 0.0)
            continue
        if kind.pairs:  # both texts encoded here (pairs are not in the feature cache), then L-BFGS
            src = next(s for s in sources if name in s.tasks)
            torch.manual_seed(seed)
            chosen_l2, _ = fit_pair_head(model, spec, src, l2, fit_linear, say)
            dev = evaluate(model, [src], "dev").get(name, {}) if src.splits.get("dev") else {}
            fits[name] = HeadFit(name, "lbfgs", chosen_l2, None, dev, time.perf_counter() - started)
            metric = headline_metric(spec)
            say(f"{name}: lbfgs (l2={chosen_l2:g}) in {fits[name].seconds:.1f}s" + (f"; dev {metric}={dev[metric]:.4f}" if dev else ""))
            continue
        # Every dataset that labels the task (a token task may have its own CoNLL file beside a
        # dataset that labels several tasks): train on all of them, pick and score on all dev splits.
        srcs = [s for s in text_sources if name in s.tasks]
        train = _concat([_task_arrays(spec, s, feats[(s.name, "train")], "train") for s in srcs if (s.name, "train") in feats])
        dev_parts = [(s, feats[(s.name, "dev")]) for s in srcs if (s.name, "dev") in feats]
        dev = _concat([_task_arrays(spec, s, f, "dev") for s, f in dev_parts]) if dev_parts else None
        if train[0].shape[0] == 0:
            raise PolyheadError(f"task {name!r}: no labelled training examples")
        head = model.heads[name]
        chosen = _solver_for(head, spec, solver)
        torch.manual_seed(seed)
        if chosen == "lbfgs":
            fit = _fit_lbfgs(head, spec, train, dev, dev_parts, l2)
        else:
            fit = _fit_adamw(head, spec, train, dev, dev_parts, head_lr or ADAMW_LR, weight_decay, seed)
        tuned = _tune(head, spec, dev_parts)
        if tuned:  # the decision settings changed: the dev scores are re-read with them
            fit.dev = _score_head(head, spec, dev_parts, "dev")
        fit.seconds = time.perf_counter() - started
        fits[name] = fit
        detail = f"l2={fit.l2:g}" if fit.l2 is not None else f"{fit.epochs} epochs"
        dev_text = f"; dev {headline_metric(spec)}={fit.dev[headline_metric(spec)]:.4f}" if fit.dev else ""
        say(f"{name}: {chosen} ({detail}) in {fit.seconds:.1f}s{dev_text}")
    model.eval()
    report = FitReport(fits, cache.encode_seconds, time.perf_counter() - fit_started, {}, {}, cache.hits, cache.builds)
    scored = [t for s in sources for t in s.tasks if t in model.tasks]  # fitted or not (similarity, frozen heads)
    report.dev = evaluate_cached(model, sources, feats, "dev", scored)
    report.test = evaluate_cached(model, sources, feats, "test", scored) if score_test else {}
    return report


def _solver_for(head: nn.Module, spec: TaskSpec, solver: str) -> str:
    linear = spec.hidden_dim is None
    if solver == "auto":
        return "lbfgs" if linear else "adamw"
    if solver == "lbfgs" and not linear:
        raise PolyheadError(f"task {spec.name!r}: L-BFGS fits linear heads only; this head has a hidden layer (head_solver: adamw)")
    if solver not in ("lbfgs", "adamw"):
        raise PolyheadError(f"unknown head solver {solver!r}; choose auto, lbfgs or adamw")
    return solver


def _task_arrays(spec: TaskSpec, src: Source, feats: SplitFeatures, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(X, y) for one task on one split: a row per labelled text (y as the kind's batch labels), or
    per kept word of labelled texts (token tasks: label ids)."""
    kind = kind_of(spec.kind)
    examples = src.splits[split]
    if not kind.token_level:
        rows = [i for i, e in enumerate(examples) if spec.name in e.labels]
        x = feats.pooled[rows] if rows else np.zeros((0, feats.pooled.shape[1]), np.float32)  # type: ignore[index,union-attr]
        y = kind.batch_labels(spec, [examples[i].labels[spec.name] for i in rows], None, (len(rows),))
        return torch.from_numpy(np.ascontiguousarray(x)), y
    index = {lab: i for i, lab in enumerate(spec.labels)}
    xs, ys = [], []
    for i, e in enumerate(examples):
        if spec.name not in e.labels:
            continue
        rows = feats.text_words(i)
        keep = feats.kept[rows]  # type: ignore[index]
        xs.append(feats.words[rows][keep])  # type: ignore[index]
        ys.append(np.array([index[t] for t in e.labels[spec.name]], dtype=np.int64)[keep])
    dim = feats.words.shape[1]  # type: ignore[union-attr]
    x = np.concatenate(xs) if xs else np.zeros((0, dim), np.float32)
    y = np.concatenate(ys) if ys else np.zeros(0, np.int64)
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)


def _linear(head: nn.Module) -> nn.Linear:
    layer = head.output_layer  # the output layer after dropout (kinds.base.MLP)
    assert isinstance(layer, nn.Linear)
    return layer


def _fit_lbfgs(head: nn.Module, spec: TaskSpec, train: tuple, dev: tuple | None,
               dev_parts: Parts, l2: float | None) -> HeadFit:
    """The head's own loss (cross-entropy: multinomial logistic regression; binary cross-entropy per
    label; squared error: ridge regression) by full-batch L-BFGS; l2 picked on dev unless given."""
    x, y = train
    layer = _linear(head)
    classes = layer.out_features
    if l2 is not None:
        grid: tuple[float, ...] = (l2,)
    elif dev is None or dev[0].shape[0] == 0:
        grid = (1.0 / x.shape[0],)  # scikit-learn's default C = 1 for this loss
    else:
        grid = L2_GRID
    weight = torch.zeros(classes, x.shape[1], dtype=torch.float32)
    bias = torch.zeros(classes, dtype=torch.float32)
    best: tuple[float, float, torch.Tensor, torch.Tensor, dict[str, float] | None] | None = None
    candidates: dict[str, float] = {}
    metric = headline_metric(spec)
    for penalty in grid:
        weight, bias = fit_linear(x, y, penalty, weight, bias, loss=head.loss)
        if len(grid) == 1:
            best = (math.nan, penalty, weight, bias, None)
            break
        with torch.no_grad():
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
            # Picked by the dev loss (cross-entropy: a proper scoring rule): on a few hundred dev
            # texts accuracy moves in coarse steps and its argmax is noisy (docs/training.md).
            dev_loss = head.loss(dev[0] @ weight.T + bias, dev[1]).item()  # type: ignore[index]
        scores = _score_head(head, spec, dev_parts, "dev")
        candidates[f"{penalty:g}"] = scores[metric]
        if best is None or dev_loss < best[0]:  # ties keep the stronger penalty (earlier in the grid)
            best = (dev_loss, penalty, weight.clone(), bias.clone(), scores)
    assert best is not None
    with torch.no_grad():
        layer.weight.copy_(best[2])
        layer.bias.copy_(best[3])
    dev_metrics = best[4]  # scored during the search; a single penalty is scored here
    if dev_metrics is None:
        dev_metrics = _score_head(head, spec, dev_parts, "dev") if dev_parts and dev is not None and dev[0].shape[0] else {}
    return HeadFit(spec.name, "lbfgs", best[1], None, dev_metrics, 0.0, candidates)


def fit_softmax_regression(x: torch.Tensor, y: torch.Tensor, l2: float, weight: torch.Tensor | None = None,
                           bias: torch.Tensor | None = None, max_iter: int = LBFGS_MAX_ITER) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression by full-batch L-BFGS: minimises mean cross-entropy of
    `x @ weight.T + bias` against `y` plus `0.5 * l2 * ||weight||^2` (bias not penalised). Starts from
    `weight`/`bias` (warm start; zeros when not given); returns the fitted (weight, bias), detached.
    The benchmarks' linear probes (benchmarks/pooling.py, layer_probe.py) use it."""
    return fit_linear(x, y, l2, weight, bias, max_iter)


def fit_linear(x: torch.Tensor, y: torch.Tensor, l2: float, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
               max_iter: int = LBFGS_MAX_ITER, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """A linear model `x @ weight.T + bias` fit by full-batch L-BFGS to mean `loss(outputs, y)` (default
    cross-entropy against label ids) plus `0.5 * l2 * ||weight||^2` (bias not penalised), from
    `weight`/`bias` (warm start; zeros when not given). Returns the fitted (weight, bias), detached."""
    loss = loss or nn.functional.cross_entropy
    classes = int(y.max()) + 1 if weight is None else weight.shape[0]
    weight = torch.zeros(classes, x.shape[1], dtype=x.dtype) if weight is None else weight.detach().clone()
    bias = torch.zeros(classes, dtype=x.dtype) if bias is None else bias.detach().clone()
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20,
                                  tolerance_grad=1e-6, tolerance_change=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = loss(x @ weight.T + bias, y) + 0.5 * l2 * (weight * weight).sum()
        value.backward()
        return value

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()


def _fit_adamw(head: nn.Module, spec: TaskSpec, train: tuple, dev: tuple | None,
               dev_parts: Parts, lr: float, weight_decay: float, seed: int) -> HeadFit:
    """Minibatch AdamW on the cached features; the best dev epoch is kept (early stopping)."""
    x, y = train
    params = [p for p in head.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    has_dev = dev is not None and dev[0].shape[0] > 0
    max_epochs = ADAMW_MAX_EPOCHS if has_dev else ADAMW_EPOCHS_WITHOUT_DEV
    reads = head_class(spec).reads
    generator = torch.Generator().manual_seed(seed)
    metric = headline_metric(spec)
    best_score, best_state, best_epoch, bad = -math.inf, None, 0, 0
    candidates: dict[str, float] = {}
    epoch = 0
    for epoch in range(1, max_epochs + 1):
        head.train()
        for idx in torch.randperm(x.shape[0], generator=generator).split(ADAMW_BATCH):
            logits = head({reads: x[idx]})
            loss = head.loss(logits, y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if not has_dev:
            continue
        head.eval()
        score = _score_head(head, spec, dev_parts, "dev")[metric]
        candidates[str(epoch)] = score
        if score > best_score:
            best_score, best_state, best_epoch, bad = score, copy.deepcopy(head.state_dict()), epoch, 0
        else:
            bad += 1
            if bad >= ADAMW_PATIENCE:
                break
    if best_state is not None:
        head.load_state_dict(best_state)
    head.eval()
    dev_metrics = _score_head(head, spec, dev_parts, "dev") if has_dev else {}
    return HeadFit(spec.name, "adamw", None, best_epoch if has_dev else epoch, dev_metrics, 0.0, candidates)


# -- scoring on cached features -------------------------------------------------------------------
@torch.no_grad()
def _score_head(head: nn.Module, spec: TaskSpec, parts: Parts, split: str) -> dict[str, float]:
    """One task's metrics on a split, from cached features (the same decisions as `evaluate`), over
    every dataset that labels it (`parts`: each with its features), pooled as `evaluate` pools them."""
    gold, pred = [], []
    for src, feats in parts:
        g, p = _predict_cached(head, spec, src, feats, split)
        gold += g
        pred += p
    return task_metrics(spec.kind, gold, pred, spec) if gold else {}


def _concat(arrays: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(X, y) of several datasets, one after another."""
    if len(arrays) == 1:
        return arrays[0]
    return torch.cat([x for x, _ in arrays]), torch.cat([y for _, y in arrays])


def _predict_cached(head: nn.Module, spec: TaskSpec, src: Source, feats: SplitFeatures | None, split: str,
                    raw: bool = False) -> tuple[list, list]:
    """Gold labels and predictions (each kind's `guesses`; `raw`: output rows) from cached features."""
    examples = src.splits.get(split) or []
    if feats is None or not examples:
        return [], []
    kind = kind_of(spec.kind)
    was_training = head.training
    head.eval()
    gold: list = []
    pred: list = []
    if not kind.token_level:
        out = head({"pooled": torch.from_numpy(np.ascontiguousarray(feats.pooled))}).float().numpy()  # type: ignore[arg-type]
        guesses = list(out) if raw else kind.guesses(spec, out, None)
        for i, e in enumerate(examples):
            if spec.name in e.labels:
                gold.append(e.labels[spec.name])
                pred.append(guesses[i])
    else:
        labels = spec.labels
        ids = head({"token_embeddings": torch.from_numpy(np.ascontiguousarray(feats.words))}).argmax(-1).numpy()  # type: ignore[arg-type]
        for i, e in enumerate(examples):
            if spec.name not in e.labels:
                continue
            rows = feats.text_words(i)
            tags = [labels[int(t)] if k else "O" for t, k in zip(ids[rows], feats.kept[rows])]  # type: ignore[index]
            gold.append(e.labels[spec.name])
            pred.append(tags)
    head.train(was_training)
    return gold, pred


@torch.no_grad()
def _tune(head: nn.Module, spec: TaskSpec, parts: Parts) -> dict[str, Any]:
    """The kind's decision settings (multi-label thresholds) fit on dev outputs, stored in the spec."""
    kind = kind_of(spec.kind)
    if not kind.tunes or not parts:
        return {}
    gold, outputs = [], []
    for src, feats in parts:
        g, o = _predict_cached(head, spec, src, feats, "dev", raw=True)
        gold += g
        outputs += o
    update = kind.tune(spec, gold, outputs) if gold else {}
    spec.stats.update(update)
    return update


def evaluate_cached(model: MultiTaskModel, sources: list[Source], feats: dict, split: str, tasks: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per-task metrics on a split: heads from cached features; similarity through the encoder."""
    out: dict[str, dict[str, float]] = {}
    for src in sources:
        if src.pairs and src.splits.get(split) and any(t in tasks for t in src.tasks):
            out.update(evaluate(model, [src], split))  # scored by running the encoder on the pairs
    for task in dict.fromkeys(t for src in sources if not src.pairs for t in src.tasks if t in tasks):
        parts = [(src, feats[(src.name, split)]) for src in sources
                 if not src.pairs and task in src.tasks and src.splits.get(split) and (src.name, split) in feats]
        metrics = _score_head(model.heads[task], model.tasks[task], parts, split)
        if metrics:
            out[task] = metrics
    return out


def feature_cache_dir(out: Path) -> Path:
    """Where a run keeps its cached features: OUTPUT/training/features."""
    return out / "training" / FEATURES_DIR


def uses_feature_cache(cfg: RunConfig, processes: int) -> bool:
    """Whether a run can train its heads on cached features: nothing below the heads trains."""
    frozen_below = cfg.freeze.encoder or cfg.freeze.all
    return frozen_below and cfg.training.head_solver != "loop" and not cfg.freeze.gradual_unfreezing and processes == 1


def train_frozen(cfg: RunConfig, out: Path, device: Any, say: Callable[[str], None], progress: bool) -> TrainResult:
    """`train()` when the encoder is frozen: encode once, fit the trainable heads, save the model.

    Writes what the loop writes (the model folder, training/metrics.json, curves.csv, the config);
    curves.csv holds each head's dev score per candidate (l2, or epoch for AdamW).
    """
    started = time.time()
    sources, specs = build_sources(cfg)
    for line in describe(sources):
        say(line)
    model = build_model(cfg, specs, device)
    apply_freezing(model, cfg.freeze)
    trainable = [t for t in specs if any(p.requires_grad for p in model.heads[t].parameters())]
    n_trainable = sum(p.numel() for t in trainable for p in model.heads[t].parameters())
    say(f"encoder frozen: each split is encoded once and {len(trainable)} head(s) fit on the cached features "
        f"({n_trainable:,} trainable parameters; head_solver {cfg.training.head_solver})")
    tr = cfg.training
    folder = feature_cache_dir(out) if tr.feature_cache == "disk" else None
    cache = FeatureCache(model.encoder, folder, resolve_precision(tr.precision, torch.device(device)), tr.eval_batch_size)
    report = fit_frozen_heads(model, sources, trainable, solver=tr.head_solver, l2=tr.head_l2, head_lr=tr.head_lr,
                              weight_decay=tr.weight_decay, seed=tr.seed, cache=cache, progress=progress, say=say)
    model.save(out)
    state = TrainState(best=headline(report.dev, specs, tr.select_metric) if report.dev else None,
                       best_dev=report.dev, test=report.test, trainable_params=n_trainable,
                       retention={"encoder_frozen": True})  # the embedding is the starting encoder's
    for task, fit in report.tasks.items():  # one curves.csv row per candidate l2 (or AdamW epoch)
        for i, (candidate, score) in enumerate(fit.candidates.items(), 1):
            state.history.append({"type": "eval", "step": i, "epoch": 1, "task": task,
                                  headline_metric(specs[task]): score, "candidate": candidate, "solver": fit.solver})
    state.seconds = time.time() - started
    write_training_files(out, state, cfg, specs)
    if report.test:
        say(f"test: {summarize(report.test, specs)}")
    say(f"done in {state.seconds:.0f}s (encoding {report.encode_seconds:.0f}s, fitting {report.fit_seconds:.1f}s); model saved to {out}")
    return TrainResult(out, state.best, 0, 0, report.dev, report.test, state.seconds, n_trainable, state.retention)
