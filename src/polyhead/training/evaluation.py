"""Scoring a model and reporting a run: per-task dev/test metrics, the headline number that picks
the best checkpoint, and the files under OUTPUT/training/ (metrics.json, curves.csv, curves.png)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..console import say
from ..errors import PolyheadError
from ..io import write_json_atomic, write_text_atomic
from ..modeling.card import write_card
from ..modeling.encoder import autocast_context
from ..kinds import kind_of
from ..modeling.model import MultiTaskModel
from ..modeling.tasks import TaskSpec
from .config import RunConfig
from .data import Source, collated_batches
from .metrics import headline_metric, task_metrics

__all__ = ["TRAINING_DIR", "to_device", "evaluate", "headline", "predictions", "selection_reference", "summarize", "tune_decisions",
           "write_training_files", "plot_curves"]

TRAINING_DIR = "training"


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """A collated batch with its tensors moved to `device`."""
    out = dict(batch)
    for key in ("inputs", "a", "b", "labels"):
        if key in out:
            out[key] = {k: v.to(device) for k, v in out[key].items()}
    return out


# -- evaluation ---------------------------------------------------------------------------------
@torch.inference_mode()
def evaluate(
    model: MultiTaskModel, sources: list[Source], split: str = "dev", batch_size: int = 64, max_length: int | None = None
) -> dict[str, dict[str, float]]:
    """Per-task metrics on a split: accuracy/macro-F1, entity P/R/F1, Spearman/Pearson.

    The encoder runs in its own precision (`load(..., precision="bf16")` scores under bf16
    autocast), so a saved model can be scored the way it will be served.
    """
    gold, pred = predictions(model, sources, split, batch_size, max_length)
    return {task: task_metrics(model.tasks[task].kind, y, pred[task], model.tasks[task]) for task, y in gold.items()}


def predictions(
    model: MultiTaskModel, sources: list[Source], split: str = "test", batch_size: int = 64, max_length: int | None = None,
    raw: bool = False,
) -> tuple[dict[str, list], dict[str, list]]:
    """Gold and predicted outputs per task on a split, example by example, in the data's order, in
    the form the gold labels take (each kind's `guesses`: a label per text, a tag list per sentence,
    a similarity per pair, a label list, a number). `raw`: each example's raw head output instead
    (per-text tasks; what decision tuning reads). What `evaluate` scores; paired comparisons of two
    models (benchmarks/paired.py) read it directly."""
    with autocast_context(model.encoder.precision, model.device):
        return _predictions(model, sources, split, batch_size, max_length, raw)


@torch.inference_mode()
def _predictions(
    model: MultiTaskModel, sources: list[Source], split: str, batch_size: int, max_length: int | None, raw: bool
) -> tuple[dict[str, list], dict[str, list]]:
    was_training = model.training
    model.eval()
    specs = model.tasks
    max_length = max_length or model.encoder.max_length
    rows: dict[str, list[tuple[tuple[int, int], Any, Any]]] = {}  # task -> ((source, example index), gold, pred)
    for s, src in enumerate(sources):
        for idx, chunk, batch in collated_batches(src, split, specs, model.encoder.tokenizer, max_length, batch_size):
            batch = to_device(batch, model.device)
            if batch["pairs"]:
                task = batch["task"]
                head = model.heads[task]
                out = head.pair_output(head(model.encoder(**batch["a"])), head(model.encoder(**batch["b"])))
                outputs = {task: out.float().cpu().numpy()}
            else:
                feats = model.encoder(**batch["inputs"])
                outputs = {task: model.heads[task](feats).float().cpu().numpy() for task in src.tasks}
            for task, out in outputs.items():
                spec = specs[task]
                guesses = list(out) if raw else kind_of(spec.kind).guesses(spec, out, batch.get("firsts") or None)
                rows.setdefault(task, []).extend(
                    ((s, idx[i]), e.labels[task], guesses[i]) for i, e in enumerate(chunk) if task in e.labels)
    model.train(was_training)
    # Batches run longest first (less padding); results go back to the data's order.
    ordered = {task: sorted(r, key=lambda row: row[0]) for task, r in rows.items()}
    return ({t: [g for _, g, _ in r] for t, r in ordered.items()}, {t: [p for _, _, p in r] for t, r in ordered.items()})


@torch.inference_mode()
def tune_decisions(model: MultiTaskModel, sources: list[Source], split: str = "dev", batch_size: int = 64,
                   max_length: int | None = None) -> dict[str, dict[str, Any]]:
    """Each task's decision settings fit on `split` by its kind (multi-label thresholds), stored in
    the task's spec (saved with the model); returns what changed, per task."""
    tunable = [t for t, spec in model.tasks.items() if kind_of(spec.kind).tunes]
    if not tunable or not any(src.splits.get(split) for src in sources):
        return {}
    gold, outputs = predictions(model, sources, split, batch_size, max_length, raw=True)
    changed = {}
    for task in tunable:
        if gold.get(task):
            spec = model.tasks[task]
            update = kind_of(spec.kind).tune(spec, gold[task], outputs[task])
            if update:
                spec.stats.update(update)
                changed[task] = update
    return changed


def headline(
    metrics: dict[str, dict[str, float]], specs: dict[str, TaskSpec], select: str = "mean",
    reference: dict[str, float] | None = None,
) -> float | None:
    """The number that picks the best checkpoint: one task's metric, the mean of each task's headline,
    or (min-relative) the worst task's headline divided by its `reference` score.

    min-relative keeps a checkpoint that trades one task for another from winning on the mean: a
    checkpoint is as good as its task furthest below its reference (selection_reference()).
    """
    if not metrics:
        return None
    if select == "min-relative":
        ratios = []
        for t, m in metrics.items():
            value = m[headline_metric(specs[t])]
            ref = (reference or {}).get(t)
            ratios.append(value / ref if ref and ref > 0 else 1.0)
        return float(min(ratios))
    if select != "mean":
        task, _, name = select.partition(".")
        if task not in metrics or name not in metrics[task]:
            raise PolyheadError(f"select_metric {select!r}: no such task.metric in {sorted(metrics)}")
        return float(metrics[task][name])
    return float(np.mean([m[headline_metric(specs[t])] for t, m in metrics.items()]))


def selection_reference(
    history: list[dict[str, Any]], specs: dict[str, TaskSpec], given: dict[str, float] | None = None
) -> dict[str, float]:
    """Per task, the score min-relative divides by: the configured one (e.g. the single-task model's
    dev score), else the best dev score this run has reached so far (its eval rows in `history`)."""
    ref: dict[str, float] = {}
    for row in history:
        if row.get("type") == "eval" and row.get("task") in specs:
            value = row.get(headline_metric(specs[row["task"]]))
            if value is not None:
                ref[row["task"]] = max(ref.get(row["task"], float("-inf")), float(value))
    ref.update({t: float(v) for t, v in (given or {}).items()})
    return ref


def summarize(metrics: dict[str, dict[str, float]], specs: dict[str, TaskSpec]) -> str:
    """`topic accuracy=0.9000, ner entity_f1=...`: each task's headline metric."""
    return ", ".join(f"{t} {headline_metric(specs[t])}={m[headline_metric(specs[t])]:.4f}" for t, m in metrics.items())


# -- training outputs ---------------------------------------------------------------------------
def write_training_files(out: Path, state: Any, cfg: RunConfig, specs: dict[str, TaskSpec]) -> None:
    """metrics.json, curves.csv, curves.png and the config, under OUTPUT/training/ (state: a TrainState),
    then the model card (OUTPUT/README.md) again, so that it shows these scores."""
    folder = out / TRAINING_DIR
    folder.mkdir(parents=True, exist_ok=True)
    metrics = {
        "best_step": state.best_step, "best": state.best, "dev": state.best_dev, "test": state.test,
        "global_step": state.global_step, "stopped_early": state.stopped_early, "seconds": state.seconds,
        "trainable_params": state.trainable_params, "headline_metrics": {t: headline_metric(s) for t, s in specs.items()},
    }
    if getattr(state, "refit", None):
        metrics["refit"] = state.refit
    if getattr(state, "retention", None):
        metrics["retention"] = state.retention
    write_json_atomic(folder / "metrics.json", metrics)
    write_text_atomic(folder / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    rows = state.history
    keys = ["type", "step", "epoch", "task", "loss", "weight", "lr"]
    metric_keys = sorted({k for r in rows for k in r} - set(keys))
    lines = [",".join(keys + metric_keys)]
    for r in rows:
        lines.append(",".join("" if r.get(k) is None else str(r.get(k)) for k in keys + metric_keys))
    write_text_atomic(folder / "curves.csv", "\n".join(lines) + "\n")
    try:
        plot_curves(rows, specs, folder / "curves.png")
    except Exception as exc:  # a plot must never cost a training run
        say(f"warning: could not draw curves ({exc})")
    if (out / "polyhead.json").is_file():
        write_card(out)


def plot_curves(rows: list[dict], specs: dict[str, TaskSpec], path: Path) -> None:
    """One panel per task: training loss against steps, dev metric on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(specs)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        train_rows = [r for r in rows if r["type"] == "train" and r["task"] == task]
        eval_rows = [r for r in rows if r["type"] == "eval" and r["task"] == task]
        if train_rows:
            ax.plot([r["step"] for r in train_rows], [r["loss"] for r in train_rows], color="tab:blue", lw=1, label="train loss")
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("train loss", color="tab:blue")
        ax.set_title(f"{task} ({specs[task].kind})")
        metric = headline_metric(specs[task])
        if eval_rows:
            ax2 = ax.twinx()
            ax2.plot([r["step"] for r in eval_rows], [r[metric] for r in eval_rows], "o-", color="tab:orange", label=f"dev {metric}")
            ax2.set_ylabel(f"dev {metric}", color="tab:orange")
            ax2.set_ylim(0, 1.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
