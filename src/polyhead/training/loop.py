"""The multi-task training loop, on Accelerate: read it top to bottom in `train()`."""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml
from torch import nn

from .checkpoint import load_tree, save_tree, write_atomic_dir, write_text_atomic
from .config import RunConfig
from .data import Source, batch_indices, build_sources, collate, describe
from ..modeling.encoder import Encoder
from ..errors import PolyheadError
from .freezing import GradualUnfreezer, apply_freezing, param_groups
from .metrics import METRIC_FOR_KIND, classification_metrics, entity_metrics, similarity_metrics
from ..modeling.model import MultiTaskModel, load
from .sampling import TaskSampler
from ..modeling.tasks import TaskSpec
from .weighting import build_weighting

TRAINING_DIR = "training"
CHECKPOINT_DIR = "checkpoints"


@dataclass
class TrainResult:
    """What a run produced: where, how good, how long, how much trained."""

    output_dir: Path
    best_metric: float | None
    best_step: int
    global_step: int
    dev: dict[str, dict[str, float]] = field(default_factory=dict)
    test: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    trainable_params: int = 0


class Objective(nn.Module):
    """Model + loss weighting in one module, so one DDP wrapper syncs both."""

    def __init__(self, model: MultiTaskModel, weighting: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.weighting = weighting

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One encoder pass; each labelled task's loss; their weighted combination."""
        model = self.model
        if batch["kind"] == "pair":
            task = batch["task"]
            head = model.heads[task]
            a = head(model.encoder(**batch["a"]))
            b = head(model.encoder(**batch["b"]))
            losses = {task: head.loss(a, b, batch["scores"])}
        else:
            feats = model.encoder(**batch["inputs"])
            losses = {}
            for task, labels in batch["labels"].items():
                if (labels != -100).any():  # a batch may hold no label for one of its tasks
                    head = model.heads[task]
                    losses[task] = head.loss(head(feats), labels)
        return self.weighting.combine(losses), losses


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    out = dict(batch)
    for key in ("inputs", "a", "b", "labels"):
        if key in out:
            out[key] = {k: v.to(device) for k, v in out[key].items()}
    if "scores" in out:
        out["scores"] = out["scores"].to(device)
    return out


def _lr_lambda(kind: str, warmup: int, total: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return max(0.0, 1.0 - progress)

    return f


def build_model(cfg: RunConfig, specs: dict[str, TaskSpec], device: Any) -> MultiTaskModel:
    """Encoder from the config (or a saved model to start from) plus one head per task."""
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
    return model


# -- evaluation ---------------------------------------------------------------------------------
@torch.inference_mode()
def evaluate(
    model: MultiTaskModel, sources: list[Source], split: str = "dev", batch_size: int = 64, max_length: int | None = None
) -> dict[str, dict[str, float]]:
    """Per-task metrics on a split: accuracy/macro-F1, entity P/R/F1, Spearman/Pearson."""
    was_training = model.training
    model.eval()
    specs = model.tasks
    device = model.device
    max_length = max_length or model.encoder.max_length
    gold: dict[str, list] = {}
    pred: dict[str, list] = {}
    for src in sources:
        examples = src.splits.get(split) or []
        order = sorted(range(len(examples)), key=lambda i: -len(examples[i].text or examples[i].pair[0]))  # type: ignore[index]
        for start in range(0, len(order), batch_size):
            chunk = [examples[i] for i in order[start : start + batch_size]]
            batch = _to_device(collate(chunk, src, specs, model.encoder.tokenizer, max_length), device)
            if batch["kind"] == "pair":
                task = batch["task"]
                head = model.heads[task]
                sims = head.score(head(model.encoder(**batch["a"])), head(model.encoder(**batch["b"])))
                gold.setdefault(task, []).extend(e.score for e in chunk)
                pred.setdefault(task, []).extend(sims.float().cpu().tolist())
                continue
            feats = model.encoder(**batch["inputs"])
            for task in src.tasks:
                spec = specs[task]
                ids = model.heads[task](feats).argmax(-1).cpu()
                for i, e in enumerate(chunk):
                    if task not in e.labels:
                        continue
                    gold.setdefault(task, []).append(e.labels[task])
                    if spec.kind == "classification":
                        pred.setdefault(task, []).append(spec.labels[int(ids[i])])
                    else:
                        firsts = batch["firsts"][i]
                        pred.setdefault(task, []).append([spec.labels[int(ids[i, t])] if t >= 0 else "O" for t in firsts])
    results = {}
    for task, y in gold.items():
        kind = specs[task].kind
        fn = {"classification": classification_metrics, "token": entity_metrics, "similarity": similarity_metrics}[kind]
        results[task] = fn(y, pred[task])
    model.train(was_training)
    return results


def headline(metrics: dict[str, dict[str, float]], specs: dict[str, TaskSpec], select: str = "mean") -> float | None:
    """The number that picks the best checkpoint: one task's metric, or the mean of each task's headline."""
    if not metrics:
        return None
    if select != "mean":
        task, _, name = select.partition(".")
        if task not in metrics or name not in metrics[task]:
            raise PolyheadError(f"select_metric {select!r}: no such task.metric in {sorted(metrics)}")
        return float(metrics[task][name])
    return float(np.mean([m[METRIC_FOR_KIND[specs[t].kind]] for t, m in metrics.items()]))


# -- the loop -----------------------------------------------------------------------------------
def train(
    cfg: RunConfig,
    output_dir: str | Path,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train every task of a config jointly; save the best model (by dev metric) to output_dir."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    tr = cfg.training
    out = Path(output_dir)
    ckpt_root = out / CHECKPOINT_DIR
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        # Accelerate keeps one global state per process; a single-process caller may train
        # several times (benchmarks, notebooks) with different precision settings.
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
    accelerator = Accelerator(
        cpu=(device == "cpu" or not torch.cuda.is_available()),  # also makes CPU-only DDP (gloo) work
        mixed_precision=tr.mixed_precision,
        # Each step runs only its task's heads, so the other heads get no gradient that step.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    main = accelerator.is_main_process
    say = (log or (lambda m: print(f"polyhead: {m}", file=sys.stderr, flush=True))) if main else (lambda m: None)
    if resume and not (ckpt_root / "latest").is_file():
        raise PolyheadError(f"--resume: no checkpoint in {ckpt_root}")
    if not resume and (ckpt_root / "latest").is_file():
        raise PolyheadError(f"{out} holds an unfinished run; pass --resume to continue it, or choose another --output")
    set_seed(tr.seed)
    t0 = time.time()

    # Data first: bad files fail here, before any model is loaded.
    sources, specs = build_sources(cfg)
    for line in describe(sources):
        say(line)
    model = build_model(cfg, specs, accelerator.device)
    static_frozen = apply_freezing(model, cfg.freeze)
    task_names = list(specs)
    options = dict(tr.weighting_options)
    if tr.weighting == "static" and "weights" not in options:
        options["weights"] = {t.name: t.weight for t in cfg.tasks}
    try:
        weighting = build_weighting(tr.weighting, task_names, **options)
    except ValueError as exc:
        raise PolyheadError(f"training.weighting: {exc}") from None
    groups = param_groups(model, tr, extra=list(weighting.parameters()))
    trainable = sum(p.numel() for g in groups for p in g["params"])
    unfreezer = None
    if cfg.freeze.gradual_unfreezing:
        if accelerator.num_processes > 1:
            raise PolyheadError("gradual unfreezing is not supported with several processes (DDP fixes the trainable set)")
        unfreezer = GradualUnfreezer(model, cfg.freeze.gradual_unfreezing, static_frozen)
    say(f"{sum(p.numel() for p in model.parameters()):,} parameters, {trainable:,} trainable; device {accelerator.device}")

    world, rank = accelerator.num_processes, accelerator.process_index
    num_batches = {s.name: max(1, math.ceil(len(s.splits["train"]) / (s.batch_size * world))) for s in sources}
    try:
        sampler = TaskSampler(num_batches, tr.sampling, tr.temperature, tr.seed, tr.steps_per_epoch)
    except ValueError as exc:
        raise PolyheadError(f"training.sampling: {exc}") from None
    steps_per_epoch = len(sampler.epoch_schedule(0))
    total_steps = math.ceil(steps_per_epoch * tr.epochs / tr.grad_accum)
    if tr.max_steps:
        total_steps = min(total_steps, tr.max_steps)
    say(f"{tr.epochs} epoch(s) x {steps_per_epoch} batches; {total_steps} optimiser steps; sampling {tr.sampling} {sampler.probabilities()}")

    objective = Objective(model, weighting)
    optimizer = torch.optim.AdamW(groups, lr=tr.lr) if groups else None
    scheduler = (
        torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(tr.scheduler, int(tr.warmup_ratio * total_steps), total_steps))
        if optimizer
        else None
    )
    if optimizer is not None:
        objective, optimizer = accelerator.prepare(objective, optimizer)
    source_by_name = {s.name: s for s in sources}
    source_index = {s.name: i for i, s in enumerate(sources)}

    state: dict[str, Any] = {
        "epoch": 0, "step_in_epoch": 0, "global_step": 0, "micro_step": 0, "best": None, "best_step": 0,
        "bad_evals": 0, "history": [], "epoch_losses": {}, "stopped_early": False,
    }
    if resume:
        state = _load_checkpoint(ckpt_root, accelerator.unwrap_model(objective), optimizer, scheduler)
        say(f"resumed from step {state['global_step']} (epoch {state['epoch'] + 1}, batch {state['step_in_epoch']})")

    def save_checkpoint() -> None:
        if main:
            _save_checkpoint(ckpt_root, accelerator.unwrap_model(objective), optimizer, scheduler, state, cfg)
        accelerator.wait_for_everyone()

    def run_eval(epoch: int) -> bool:
        """Evaluate on dev; save the model when it is the best so far; True = stop early."""
        metrics = evaluate(model, sources, "dev", tr.eval_batch_size)
        if not metrics:
            return False
        score = headline(metrics, specs, tr.select_metric)
        for task, m in metrics.items():
            state["history"].append({"type": "eval", "step": state["global_step"], "epoch": epoch + 1, "task": task, **m})
        better = state["best"] is None or score > state["best"]
        summary = ", ".join(f"{t} {METRIC_FOR_KIND[specs[t].kind]}={m[METRIC_FOR_KIND[specs[t].kind]]:.4f}" for t, m in metrics.items())
        say(f"step {state['global_step']} dev: {summary}; {tr.select_metric}={score:.4f}{' (best)' if better else ''}")
        if better:
            state.update(best=score, best_step=state["global_step"], bad_evals=0, best_dev=metrics)
            if main:
                model.save(out)
        else:
            state["bad_evals"] += 1
        if main:
            _write_training_files(out, state, cfg, specs)
        accelerator.wait_for_everyone()
        patience = tr.early_stopping_patience
        return bool(patience and state["bad_evals"] >= patience)

    has_dev = any(s.splits.get("dev") for s in sources)
    crash_at = int(os.environ.get("POLYHEAD_TEST_CRASH_AT_STEP", "0"))  # tests: a hard kill mid-run
    perm_cache: dict[tuple[str, int, int], list[np.ndarray]] = {}

    def next_batch(name: str, epoch: int, k: int) -> dict[str, Any]:
        src = source_by_name[name]
        n = len(src.splits["train"])
        per_cycle = num_batches[name]
        key = (name, epoch, k // per_cycle)
        if key not in perm_cache:
            if len(perm_cache) > 64:  # bounded: only the current cycle of each source is needed
                perm_cache.clear()
            perm_cache[key] = batch_indices(n, src.batch_size * world, tr.seed, epoch, source_index[name], k // per_cycle)
        idx = perm_cache[key][k % per_cycle]
        if len(idx) < world:
            idx = np.resize(idx, world)
        examples = [src.splits["train"][i] for i in idx[rank::world]]
        return _to_device(collate(examples, src, specs, model.encoder.tokenizer, cfg.encoder.max_length), accelerator.device)

    frozen_backbone = cfg.freeze.encoder or cfg.freeze.all
    try:
        if optimizer is None:
            say("nothing to train (everything is frozen): evaluating and saving as is")
            if has_dev:
                run_eval(0)
        for epoch in range(state["epoch"], tr.epochs if optimizer is not None else 0):
            schedule = sampler.epoch_schedule(epoch)
            start = state["step_in_epoch"] if epoch == state["epoch"] else 0
            drawn: dict[str, int] = {}
            for name in schedule[:start]:  # replaying the schedule restores each source's position
                drawn[name] = drawn.get(name, 0) + 1
            if start == 0:
                state["epoch_losses"] = {}
            bar = _bar(len(schedule), start, f"epoch {epoch + 1}/{tr.epochs}", progress and main)
            objective.train()
            if frozen_backbone:
                model.encoder.backbone.eval()  # a frozen backbone is a fixed feature extractor: no dropout
            for step in range(start, len(schedule)):
                if state["global_step"] >= total_steps:
                    break
                if unfreezer is not None:
                    unit = epoch if cfg.freeze.gradual_unit == "epoch" else state["global_step"]
                    if unfreezer.update(unit):
                        say(f"gradual unfreezing: stage {unfreezer.stage} of {len(unfreezer.stages)}")
                name = schedule[step]
                batch = next_batch(name, epoch, drawn.get(name, 0))
                drawn[name] = drawn.get(name, 0) + 1
                sync = (state["micro_step"] + 1) % tr.grad_accum == 0 or step == len(schedule) - 1
                with contextlib.nullcontext() if sync else accelerator.no_sync(objective):
                    total, losses = objective(batch)
                    if total.requires_grad:  # e.g. a similarity batch with a frozen backbone trains nothing
                        accelerator.backward(total / tr.grad_accum)
                state["micro_step"] += 1
                for task, loss in losses.items():
                    s, c = state["epoch_losses"].get(task, (0.0, 0))
                    state["epoch_losses"][task] = (s + loss.item(), c + 1)
                if sync:
                    if tr.grad_clip:
                        accelerator.clip_grad_norm_([p for g in groups for p in g["params"]], tr.grad_clip)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    state["global_step"] += 1
                    gs = state["global_step"]
                    state["step_in_epoch"] = step + 1
                    state["epoch"] = epoch
                    if gs % tr.log_every == 0 or gs == 1:
                        weights = weighting.weights()
                        for task, loss in losses.items():
                            state["history"].append(
                                {"type": "train", "step": gs, "epoch": epoch + 1, "task": task, "loss": loss.item(),
                                 "weight": weights.get(task, 1.0), "lr": scheduler.get_last_lr()[0]}
                            )
                    if tr.eval_every and gs % tr.eval_every == 0 and has_dev and run_eval(epoch):
                        state["stopped_early"] = True
                    if tr.checkpoint_every and gs % tr.checkpoint_every == 0:
                        save_checkpoint()
                    if crash_at and gs == crash_at:
                        os._exit(137)
                bar.set_postfix({t: f"{s / max(c, 1):.3f}" for t, (s, c) in state["epoch_losses"].items()}, refresh=False)
                bar.update(1)
                if state["stopped_early"]:
                    break
            bar.close()
            weighting.epoch_end({t: s / max(c, 1) for t, (s, c) in state["epoch_losses"].items()})
            state["epoch"], state["step_in_epoch"] = epoch + 1, 0
            if not state["stopped_early"] and not tr.eval_every and has_dev and run_eval(epoch):
                state["stopped_early"] = True
            if not tr.checkpoint_every or state["stopped_early"]:
                save_checkpoint()
            if state["stopped_early"]:
                say(f"early stopping: no improvement in {tr.early_stopping_patience} evaluations")
                break
            if state["global_step"] >= total_steps:
                break
    except KeyboardInterrupt:
        if optimizer is not None and state["global_step"] > 0:
            save_checkpoint()
            say(f"interrupted: checkpoint at step {state['global_step']} saved; continue with --resume")
        raise

    # The kept model is the best on dev; without dev data, the last one.
    if main and (not has_dev or state["best"] is None):
        model.save(out)
    accelerator.wait_for_everyone()
    result = TrainResult(out, state["best"], state["best_step"], state["global_step"], state.get("best_dev", {}),
                         seconds=time.time() - t0, trainable_params=trainable)
    if any(s.splits.get("test") for s in sources):
        best = load(out, device=accelerator.device)
        result.test = evaluate(best, sources, "test", tr.eval_batch_size)
        state["test"] = result.test
        say("test: " + ", ".join(f"{t} {METRIC_FOR_KIND[specs[t].kind]}={m[METRIC_FOR_KIND[specs[t].kind]]:.4f}" for t, m in result.test.items()))
    state["seconds"] = result.seconds
    state["trainable_params"] = trainable
    if main:
        _write_training_files(out, state, cfg, specs)
        if not tr.keep_checkpoints:
            shutil.rmtree(ckpt_root, ignore_errors=True)
    say(f"done in {result.seconds:.0f}s; model saved to {out}")
    return result


def _bar(total: int, initial: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="batch", disable=not enabled, dynamic_ncols=True)


# -- checkpoints --------------------------------------------------------------------------------
def _save_checkpoint(root: Path, objective: Objective, optimizer: Any, scheduler: Any, state: dict, cfg: RunConfig) -> None:
    """Model + optimiser + scheduler + weighting + RNG + loop state, written atomically."""
    name = f"step-{state['global_step']:07d}"

    def fill(tmp: Path) -> None:
        objective.model.save(tmp / "model")
        save_tree(optimizer.state_dict(), tmp, "optimizer")
        save_tree(objective.weighting.state_dict(), tmp, "weighting")
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        save_tree(rng, tmp, "rng")
        sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
        (tmp / "scheduler.json").write_text(json.dumps(sched), encoding="utf-8")
        (tmp / "trainer_state.json").write_text(json.dumps(state, default=float), encoding="utf-8")
        (tmp / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")

    write_atomic_dir(root / name, fill)
    previous = (root / "latest").read_text().strip() if (root / "latest").is_file() else None
    write_text_atomic(root / "latest", name)
    if previous and previous != name:
        shutil.rmtree(root / previous, ignore_errors=True)


def _load_checkpoint(root: Path, objective: Objective, optimizer: Any, scheduler: Any) -> dict:
    """Restore everything _save_checkpoint wrote; return the loop state."""
    folder = root / (root / "latest").read_text().strip()
    if not (folder / "trainer_state.json").is_file():
        raise PolyheadError(f"checkpoint {folder} is incomplete")
    saved = load(folder / "model", device=objective.model.device)
    objective.model.load_state_dict(saved.state_dict())
    objective.weighting.load_state_dict(load_tree(folder, "weighting"))
    if optimizer is not None:
        optimizer.load_state_dict(load_tree(folder, "optimizer"))
        sched = json.loads((folder / "scheduler.json").read_text())
        scheduler.load_state_dict({**sched, "lr_lambdas": [None] * len(optimizer.param_groups)})
    rng = load_tree(folder, "rng")
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    state = json.loads((folder / "trainer_state.json").read_text())
    state["epoch_losses"] = {k: tuple(v) for k, v in state.get("epoch_losses", {}).items()}
    return state


# -- training outputs ---------------------------------------------------------------------------
def _write_training_files(out: Path, state: dict, cfg: RunConfig, specs: dict[str, TaskSpec]) -> None:
    """metrics.json, curves.csv, curves.png and the config, under OUTPUT/training/."""
    folder = out / TRAINING_DIR
    folder.mkdir(parents=True, exist_ok=True)
    metrics = {
        "best_step": state["best_step"], "best": state["best"], "dev": state.get("best_dev", {}),
        "test": state.get("test", {}), "global_step": state["global_step"], "stopped_early": state["stopped_early"],
        "seconds": state.get("seconds"), "trainable_params": state.get("trainable_params"),
        "headline_metrics": {t: METRIC_FOR_KIND[s.kind] for t, s in specs.items()},
    }
    write_text_atomic(folder / "metrics.json", json.dumps(metrics, indent=2, default=float))
    write_text_atomic(folder / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    rows = state["history"]
    keys = ["type", "step", "epoch", "task", "loss", "weight", "lr"]
    metric_keys = sorted({k for r in rows for k in r} - set(keys))
    lines = [",".join(keys + metric_keys)]
    for r in rows:
        lines.append(",".join("" if r.get(k) is None else str(r.get(k)) for k in keys + metric_keys))
    write_text_atomic(folder / "curves.csv", "\n".join(lines) + "\n")
    try:
        plot_curves(rows, specs, folder / "curves.png")
    except Exception as exc:  # a plot must never cost a training run
        print(f"polyhead: warning: could not draw curves ({exc})", file=sys.stderr)


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
        metric = METRIC_FOR_KIND[specs[task].kind]
        if eval_rows:
            ax2 = ax.twinx()
            ax2.plot([r["step"] for r in eval_rows], [r[metric] for r in eval_rows], "o-", color="tab:orange", label=f"dev {metric}")
            ax2.set_ylabel(f"dev {metric}", color="tab:orange")
            ax2.set_ylim(0, 1.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
