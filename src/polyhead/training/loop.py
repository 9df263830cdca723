"""The multi-task training loop, on Accelerate: read `train()` top to bottom.

`train()` is the whole run in phases headed by comments (output folder, Accelerator, data and
model, resume, the loop, finish). The state a checkpoint must restore is one dataclass,
`TrainState`; what the run builds once is another, `Run`; every other piece is a top-level
function below `train()`, in the order the loop calls it. Checkpoint files live in
checkpoint.py; evaluation and the training reports in evaluation.py; the batch stream in
batches.py.
"""
from __future__ import annotations

import contextlib
import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..console import progress as progress_bar, say as console_say
from ..errors import PolyheadError
from ..kinds import kind_of
from ..modeling.card import retention_line
from ..modeling.model import MultiTaskModel, load
from ..modeling.tasks import TaskSpec
from . import checkpoint, distill, hooks, memory, retention, teachers, trackers
from .batches import BatchStream
from .callbacks import Callbacks, Progress
from .build import build_model, lr_lambda, make_weighting
from .checkpoint import CHECKPOINT_DIR
from .config import RunConfig
from .data import Source, build_sources, describe
from .devices import make_accelerator
from .distill import Distiller
from .evaluation import evaluate, headline, plot_curves, selection_reference, summarize, write_training_files
from .freezing import GradualUnfreezer, apply_freezing, param_groups
from .frozen import train_frozen, uses_feature_cache
from .refit import fit_heads_first, refit_heads, tune_decisions_on_dev
from .sampling import TaskSampler
from .signals import GracefulStop
from .state import TrainResult, TrainState
from .weighting import LossWeighting

# evaluate and plot_curves stay importable from here, where 0.1 code found them.
__all__ = ["TrainResult", "TrainState", "train", "evaluate", "build_model", "headline", "plot_curves"]


class Objective(nn.Module):
    """Model + loss weighting in one module, so one DDP wrapper syncs both."""

    def __init__(self, model: MultiTaskModel, weighting: LossWeighting, distiller: Distiller | None = None) -> None:
        super().__init__()
        self.model = model
        self.weighting = weighting
        self.distiller = distiller  # cached teacher/anchor targets (distill.py); not a module, never saved

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One encoder pass (two for a pair batch); each labelled task's loss; their weighted sum
        (plus, with training.anchor_weight, the anchor term, which no weighting sees)."""
        model, distiller = self.model, self.distiller
        if batch["pairs"]:
            task = batch["task"]
            head = model.heads[task]
            features = [model.encoder(**batch["a"]), model.encoder(**batch["b"])]
            a, b = head(features[0]), head(features[1])
            losses = {task: distiller.pair_loss(batch, head, a, b) if distiller else head.loss(a, b, batch["labels"][task])}
        else:
            features = [model.encoder(**batch["inputs"])]
            losses = {}
            for task, labels in batch["labels"].items():
                head = model.heads[task]
                if head.labelled(labels).any():  # a batch may hold no label for one of its tasks
                    out = head(features[0])
                    losses[task] = distiller.text_loss(batch, task, head, out, labels) if distiller else head.loss(out, labels)
        total = self.weighting.combine(losses)
        if distiller is None:
            return total, losses
        for extra in (distiller.anchor_loss(batch, [f["pooled"] for f in features]),
                      distiller.other_texts_loss(batch, model.heads, features)):
            if extra is not None:
                total = total + extra
        return total, losses


@dataclass
class Run:
    """What train() builds once and every phase uses."""

    cfg: RunConfig
    out: Path
    accelerator: Any
    say: Callable[[str], None]
    sources: list[Source]
    specs: dict[str, TaskSpec]
    model: MultiTaskModel
    weighting: LossWeighting
    objective: nn.Module  # Objective, wrapped by Accelerate (DDP, autocast)
    optimizer: Any | None  # None: nothing trainable
    scheduler: Any | None
    groups: list[dict]
    batches: BatchStream
    sampler: TaskSampler
    unfreezer: GradualUnfreezer | None
    total_steps: int
    trainable: int
    distiller: Distiller | None = None  # training.distill_teachers / anchor_weight
    probe: retention.RetentionProbe | None = None  # the starting encoder's vectors for the retention metric
    started: float = 0.0  # when this process started the run (time.time()); checkpoints and finish add it to state.elapsed
    saved_step: int = -1  # the global step of the last checkpoint this process wrote
    saved_at: float = 0.0  # when (time.monotonic()), for training.checkpoint_every_minutes
    callbacks: Callbacks = field(default_factory=lambda: Callbacks([]))  # the user's, early stopping, trackers
    progress: Progress | None = None  # what the hooks see (callbacks.py)
    trackers: trackers.Trackers | None = None  # training.log_with

    @property
    def main(self) -> bool:
        """Whether this is the process that writes files."""
        return bool(self.accelerator.is_main_process)

    @property
    def has_dev(self) -> bool:
        """Whether any source has dev data (else the last model is kept)."""
        return any(s.splits.get("dev") for s in self.sources)

    @functools.cached_property
    def run_info(self) -> dict[str, Any]:
        """What besides the config must match on resume: process count, training-set sizes, teachers."""
        info: dict[str, Any] = {"processes": self.accelerator.num_processes,
                                "train_examples": {s.name: len(s.splits["train"]) for s in self.sources},
                                # the content, not only the size: a changed file or DataFrame of the same length
                                "train_data": {s.name: memory.fingerprint(s.splits["train"]) for s in self.sources}}
        if self.distiller is not None and self.distiller.fingerprints:
            info["teachers"] = self.distiller.fingerprints  # a teacher retrained since would change the targets
        return info


# -- the loop -----------------------------------------------------------------------------------
def train(
    cfg: RunConfig,
    output_dir: str | Path,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    overwrite: bool = False,
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """Train every task of a config jointly; save the best model (by dev metric) to output_dir.

    output_dir must be missing or empty, or hold an unfinished run and `resume` be set, or
    `overwrite` be set: a finished model or other files are never replaced silently. The public
    entry point (a YAML path, a mapping, data in Python, callbacks) is `polyhead.train` (api.py).
    """
    from accelerate.utils import set_seed  # Accelerate loads only when a run starts

    tr = cfg.training
    out = Path(output_dir)
    t0 = time.time()

    # -- 1. Refuse, before any work, what would lose someone's files ----------------------------
    # A run stopped while its own teachers trained (distill_teachers.TASK: auto) has no checkpoint
    # yet: --resume continues the teachers (teachers.py), then starts the joint run.
    teachers_only = teachers.stopped_while_teaching(cfg, out, resume)
    if not teachers_only:
        checkpoint.check_output_dir(out, resume, overwrite)
    distill.check_config(cfg)  # teachers and anchor need the per-batch loop (not a frozen encoder)
    trackers.check_installed(tr.log_with)  # a tracker that is not installed: one line, before any work
    callbacks_given = Callbacks(list(callbacks or []))  # a callback with no hook at all: one line
    if teachers.auto_teachers(cfg):
        cfg = teachers.prepare(cfg, out, resume, overwrite, lambda c, folder, **kw: train(c, folder, device=device, progress=progress, **kw),
                               log or console_say)
        distill.check_config(cfg)  # the teachers are model folders now
        resume = resume and not teachers_only

    # -- 2. Devices, precision, processes --------------------------------------------------------
    accelerator = make_accelerator(tr.accelerate_precision(device), device, tr.log_with, out / trackers.LOG_DIR)
    say = (log or console_say) if accelerator.is_main_process else (lambda message: None)
    if overwrite and accelerator.is_main_process:
        checkpoint.remove_checkpoints(out)  # a stale unfinished run must not be resumed later
    accelerator.wait_for_everyone()
    set_seed(tr.seed)

    # -- 3. A frozen encoder: encode each split once, fit the heads on the cached features --------
    if uses_feature_cache(cfg, accelerator.num_processes):  # hooks: begin, one evaluate (dev), end
        return hooks.frozen(accelerator, cfg, out, callbacks_given, lambda: train_frozen(cfg, out, accelerator.device, say, progress))

    # -- 3. Data (bad files fail here, before a model loads), model, optimiser -------------------
    run = build_run(cfg, out, accelerator, say, resume)
    run.started = t0
    state = TrainState()
    if accelerator.num_processes > 1:
        # The model was built from one seed on every process; from here each process draws its
        # own dropout masks (seed + rank), which is also why checkpoints keep one RNG per process.
        set_seed(tr.seed, device_specific=True)

    # -- 4. Resume: the same run, continued from its last checkpoint -----------------------------
    if resume:
        state = resume_from_checkpoint(run)
        say(f"resumed from step {state.global_step} (epoch {state.epoch + 1}, batch {state.step_in_epoch})")

    # -- 5. Epochs of batches, one task's batch at a time; an optimiser step every grad_accum ----
    # SIGTERM / SIGINT: finish the step, checkpoint, stop (signals.py); a second one stops at once.
    run.saved_at = time.monotonic()
    with GracefulStop(say) as stop, hooks.running(run, state, callbacks_given):  # on_train_begin; trackers closed at any exit
        try:
            if run.optimizer is None:
                say("nothing to train (everything is frozen): evaluating and saving as is")
                if run.has_dev:
                    evaluate_and_keep_best(run, state, epoch=0)
            for epoch in range(state.epoch, tr.epochs if run.optimizer is not None else 0):
                stop_if_requested(run, state, stop)
                schedule = run.sampler.epoch_schedule(epoch)
                start = state.step_in_epoch if epoch == state.epoch else 0
                run.batches.start_epoch(epoch, already_drawn=schedule[:start])
                if start == 0:
                    state.epoch_losses = {}
                set_train_mode(run)
                bar = progress_bar(len(schedule), progress and run.main, f"epoch {epoch + 1}/{tr.epochs}", unit="batch", initial=start)
                for step in range(start, len(schedule)):
                    if state.global_step >= run.total_steps:
                        break
                    maybe_unfreeze(run, state, epoch)
                    batch = run.batches.next(schedule[step])
                    sync = (state.micro_step + 1) % tr.grad_accum == 0 or step == len(schedule) - 1
                    losses = forward_backward(run, state, batch, sync)
                    if sync:
                        optimizer_step(run, state, epoch, step)
                        log_losses(run, state, epoch, losses)
                        hooks.after_step(run, state, epoch, losses)
                        if tr.eval_every and state.global_step % tr.eval_every == 0 and run.has_dev:
                            state.stopped_early = evaluate_and_keep_best(run, state, epoch) or state.stopped_early
                        if tr.checkpoint_every and state.global_step % tr.checkpoint_every == 0:
                            save_checkpoint(run, state)
                        elif tr.checkpoint_every_minutes and time.monotonic() - run.saved_at >= 60 * tr.checkpoint_every_minutes:
                            save_checkpoint(run, state)
                        stop_if_requested(run, state, stop)
                    bar.set_postfix_str(
                        " ".join(f"{t}={s / max(c, 1):.3f}" for t, (s, c) in state.epoch_losses.items()), refresh=False
                    )
                    bar.update(1)
                    if state.stopped_early:
                        break
                bar.close()
                end_epoch(run, state, epoch)
                if state.stopped_early:
                    say(run.progress.stop_reason or "stopped early")
                    break
                if state.global_step >= run.total_steps:
                    break
        except KeyboardInterrupt:  # where no handler could be installed (not the main thread)
            if run.optimizer is not None and state.global_step > 0:
                save_checkpoint(run, state)
                say(f"interrupted: checkpoint at step {state.global_step} saved; continue with --resume")
            raise

        # -- 6. Keep the model, score test, write the training files -----------------------------
        result = finish(run, state)
        run.callbacks.fire("on_train_end", run.progress, result)
    return result


# -- 3. building ----------------------------------------------------------------------------------
def build_run(cfg: RunConfig, out: Path, accelerator: Any, say: Callable[[str], None], resume: bool = False) -> Run:
    """Read the data, build model, loss weighting, optimiser, schedule and task sampler."""
    tr = cfg.training
    sources, specs = build_sources(cfg)
    for line in describe(sources):
        say(line)
    model = build_model(cfg, specs, accelerator.device, inherited := set())
    static_frozen = apply_freezing(model, cfg.freeze)
    fit_heads_first(model, sources, cfg, inherited, say, resume)  # training.init_heads: fit
    weighting = make_weighting(cfg, list(specs))
    groups = param_groups(model, tr, extra=list(weighting.parameters()))
    trainable = sum(p.numel() for g in groups for p in g["params"])
    unfreezer = None
    if cfg.freeze.gradual_unfreezing:
        if accelerator.num_processes > 1:
            raise PolyheadError("gradual unfreezing is not supported with several processes (DDP fixes the trainable set)")
        unfreezer = GradualUnfreezer(model, cfg.freeze.gradual_unfreezing, static_frozen)
    say(f"{sum(p.numel() for p in model.parameters()):,} parameters, {trainable:,} trainable; device {accelerator.device}")

    batches = BatchStream(sources, specs, model.encoder.tokenizer, model.encoder.max_length, tr.seed, accelerator)
    try:
        sampler = TaskSampler(batches.num_batches, tr.sampling, tr.temperature, tr.seed, tr.steps_per_epoch)
    except ValueError as exc:
        raise PolyheadError(f"training.sampling: {exc}") from None
    steps_per_epoch = len(sampler.epoch_schedule(0))
    total_steps = math.ceil(steps_per_epoch * tr.epochs / tr.grad_accum)
    if tr.max_steps:
        total_steps = min(total_steps, tr.max_steps)
    say(f"{tr.epochs} epoch(s) x {steps_per_epoch} batches; {total_steps} optimiser steps; sampling {tr.sampling} {sampler.probabilities()}")

    # Teacher and anchor targets, from the model as built: before any update or restored checkpoint.
    distiller = distill.build_distiller(cfg, sources, specs, model, total_steps, say)
    # How far the served embedding moves: the starting encoder's vectors for a sample of dev texts.
    probe = retention.build_probe(model, sources, tr.eval_batch_size, seed=tr.seed) if retention.encoder_trains(cfg) else None
    objective: nn.Module = Objective(model, weighting, distiller)
    optimizer = torch.optim.AdamW(groups, lr=tr.lr) if groups else None
    scheduler = None
    if optimizer is not None:
        warmup = int(tr.warmup_ratio * total_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(tr.scheduler, warmup, total_steps))
        objective, optimizer = accelerator.prepare(objective, optimizer)
    return Run(cfg, out, accelerator, say, sources, specs, model, weighting, objective, optimizer, scheduler, groups,
               batches, sampler, unfreezer, total_steps, trainable, distiller, probe)


# -- 4. resume ----------------------------------------------------------------------------------
def resume_from_checkpoint(run: Run) -> TrainState:
    """Check the checkpoint belongs to this run (same config and data), then restore it."""
    folder = checkpoint.latest_checkpoint(run.out / CHECKPOINT_DIR)
    checkpoint.check_same_run(folder, run.cfg.to_dict(), run.run_info)
    objective = run.accelerator.unwrap_model(run.objective)
    saved = checkpoint.load_checkpoint(folder, objective.model, objective.weighting, run.optimizer, run.scheduler,
                                       rank=run.accelerator.process_index)
    return TrainState.from_dict(saved)


# -- 5. one step --------------------------------------------------------------------------------
def set_train_mode(run: Run) -> None:
    """Dropout on, except in a frozen backbone, which is a fixed feature extractor."""
    run.objective.train()
    if run.cfg.freeze.encoder or run.cfg.freeze.all:
        run.model.encoder.backbone.eval()


def maybe_unfreeze(run: Run, state: TrainState, epoch: int) -> None:
    """Gradual unfreezing: one more layer group every N epochs or steps."""
    if run.unfreezer is None:
        return
    unit = epoch if run.cfg.freeze.gradual_unit == "epoch" else state.global_step
    if run.unfreezer.update(unit):
        run.say(f"gradual unfreezing: stage {run.unfreezer.stage} of {len(run.unfreezer.stages)}")


def forward_backward(run: Run, state: TrainState, batch: dict[str, Any], sync: bool) -> dict[str, torch.Tensor]:
    """Losses of one batch and their gradient (gradients sync across processes only when `sync`)."""
    if run.distiller is not None:
        run.distiller.step = state.global_step  # the teacher's share anneals with the optimiser step
    with contextlib.nullcontext() if sync else run.accelerator.no_sync(run.objective):
        total, losses = run.objective(batch)
        if total.requires_grad:  # e.g. a similarity batch with a frozen backbone trains nothing
            run.accelerator.backward(total / run.cfg.training.grad_accum)
    state.micro_step += 1
    for task, loss in losses.items():
        s, c = state.epoch_losses.get(task, (0.0, 0))
        state.epoch_losses[task] = [s + loss.item(), c + 1]
    return losses


def optimizer_step(run: Run, state: TrainState, epoch: int, step: int) -> None:
    """Clip, step optimiser and schedule, clear gradients; advance the loop position."""
    if run.cfg.training.grad_clip:
        run.accelerator.clip_grad_norm_([p for g in run.groups for p in g["params"]], run.cfg.training.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    state.global_step += 1
    state.epoch, state.step_in_epoch = epoch, step + 1


def log_losses(run: Run, state: TrainState, epoch: int, losses: dict[str, torch.Tensor]) -> None:
    """A curves.csv row per task every log_every steps (and at the first)."""
    step = state.global_step
    if step % run.cfg.training.log_every and step != 1:
        return
    weights = run.weighting.weights()
    lr = run.scheduler.get_last_lr()[0]
    for task, loss in losses.items():
        state.history.append({"type": "train", "step": step, "epoch": epoch + 1, "task": task, "loss": loss.item(),
                              "weight": weights.get(task, 1.0), "lr": lr})
    if run.distiller is not None and run.distiller.last_anchor is not None:  # the anchor's distance, unweighted
        state.history.append({"type": "anchor", "step": step, "epoch": epoch + 1, "task": "", "loss": run.distiller.last_anchor.item(),
                              "weight": run.distiller.anchor_weight, "lr": lr})
    if run.distiller is not None and run.distiller.last_other is not None:  # the teachers' term on other texts, unweighted
        state.history.append({"type": "distill-other", "step": step, "epoch": epoch + 1, "task": "", "loss": run.distiller.last_other.item(),
                              "weight": run.distiller.other_weight, "lr": lr})


def evaluate_and_keep_best(run: Run, state: TrainState, epoch: int) -> bool:
    """Evaluate on dev; save the model when it is the best so far; then the on_evaluate hooks
    (early stopping among them). True = a hook asked to stop."""
    metrics = evaluate(run.model, run.sources, "dev", run.cfg.training.eval_batch_size)
    if not metrics:
        return False
    tr = run.cfg.training
    for task, m in metrics.items():
        state.history.append({"type": "eval", "step": state.global_step, "epoch": epoch + 1, "task": task, **m})
    reference = selection_reference(state.history, run.specs, tr.select_reference) if tr.select_metric == "min-relative" else None
    score = headline(metrics, run.specs, tr.select_metric, reference)
    if reference is not None and state.best_dev:  # the references move as tasks reach new peaks: re-score the kept one too
        state.best = headline(state.best_dev, run.specs, tr.select_metric, reference)
    if tr.eval_test and any(s.splits.get("test") for s in run.sources):  # diagnostics: never selects
        for task, m in evaluate(run.model, run.sources, "test", tr.eval_batch_size).items():
            state.history.append({"type": "eval-test", "step": state.global_step, "epoch": epoch + 1, "task": task, **m})
    better = state.best is None or score > state.best
    moved = measure_retention(run, state, epoch, metrics)
    kept = f"; embedding rank agreement {moved['rank_agreement']:.3f}" if moved else ""
    run.say(f"step {state.global_step} dev: {summarize(metrics, run.specs)}; {tr.select_metric}={score:.4f}{' (best)' if better else ''}{kept}")
    if better:
        state.best, state.best_step, state.bad_evals, state.best_dev = score, state.global_step, 0, metrics
        state.retention = moved or {}
        if run.main:
            run.model.save(run.out)
    else:
        state.bad_evals += 1
    if run.main:
        write_training_files(run.out, state, run.cfg, run.specs)
    run.accelerator.wait_for_everyone()
    return hooks.after_evaluate(run, state, epoch, metrics, score, better, moved or {})


def measure_retention(run: Run, state: TrainState, epoch: int, metrics: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """The embedding's retention now (retention.py), as a curves.csv row; {} when the encoder is frozen."""
    if run.probe is None:
        return {}
    moved = retention.with_similarity(retention.measure(run.model, run.probe, run.cfg.training.eval_batch_size), run.probe, metrics or {})
    state.history.append({"type": "retention", "step": state.global_step, "epoch": epoch + 1, "task": "",
                          **{k: moved[k] for k in ("cosine", "rank_agreement", "neighbours")}})
    return moved


def stop_if_requested(run: Run, state: TrainState, stop: GracefulStop) -> None:
    """After a stop signal: make sure the last optimiser step is in a checkpoint, then stop."""
    stop.stop_here(run.accelerator, state.global_step, run.saved_step, lambda: save_checkpoint(run, state), run.out / CHECKPOINT_DIR)


def save_checkpoint(run: Run, state: TrainState) -> None:
    """Every process's RNG state goes to the main process, which writes the checkpoint."""
    from accelerate.utils import gather_object

    rng = checkpoint.rng_state()
    rngs = gather_object([rng]) if run.accelerator.num_processes > 1 else [rng]
    folder = None
    if run.main:
        objective = run.accelerator.unwrap_model(run.objective)
        saved = {**state.to_dict(), "elapsed": state.elapsed + time.time() - run.started}
        folder: Path | None = checkpoint.save_checkpoint(run.out / CHECKPOINT_DIR, objective.model, objective.weighting, run.optimizer,
                                            run.scheduler, saved, run.cfg.to_dict(), run.run_info, rngs)
    run.accelerator.wait_for_everyone()
    run.saved_step, run.saved_at = state.global_step, time.monotonic()
    hooks.after_checkpoint(run, state, folder)


def end_epoch(run: Run, state: TrainState, epoch: int) -> None:
    """Epoch-level loss weighting; evaluate (unless per step) and checkpoint (unless per step)."""
    tr = run.cfg.training
    run.weighting.epoch_end({t: s / max(c, 1) for t, (s, c) in state.epoch_losses.items()})
    state.epoch, state.step_in_epoch = epoch + 1, 0
    if not state.stopped_early and not tr.eval_every and run.has_dev:
        state.stopped_early = evaluate_and_keep_best(run, state, epoch)
    if not tr.checkpoint_every or state.stopped_early:
        save_checkpoint(run, state)


# -- 6. finish ----------------------------------------------------------------------------------
def finish(run: Run, state: TrainState) -> TrainResult:
    """Keep the model (best on dev, else the last), score test with it, write the training files."""
    if run.main and (not run.has_dev or state.best is None):
        run.model.save(run.out)
    run.accelerator.wait_for_everyone()
    tr = run.cfg.training
    kept = None  # the saved model, once loaded
    if run.has_dev and (tr.refit_heads or any(kind_of(s.kind).tunes for s in run.specs.values())):
        if run.main:  # the second stage: heads refit on the kept model's encoder, frozen; decisions tuned on dev
            kept = load(run.out, device=run.accelerator.device)
            state.refit = refit_heads(kept, run.sources, run.cfg, run.say) if tr.refit_heads else {}
            tune_decisions_on_dev(kept, run.sources, run.cfg, run.say)
            kept.save(run.out)
            # metrics.json's dev scores are the saved model's: with any refit head kept, they changed.
            state.best_dev = evaluate(kept, run.sources, "dev", tr.eval_batch_size)
        run.accelerator.wait_for_everyone()
    # A resumed run adds the seconds its earlier processes trained until their last checkpoint.
    result = TrainResult(run.out, state.best, state.best_step, state.global_step, state.best_dev,
                         seconds=state.elapsed + time.time() - run.started, trainable_params=run.trainable)
    if any(s.splits.get("test") for s in run.sources):
        best = kept if kept is not None else load(run.out, device=run.accelerator.device)
        result.test = state.test = evaluate(best, run.sources, "test", tr.eval_batch_size)
        run.say(f"test: {summarize(result.test, run.specs)}")
    state.seconds, state.trainable_params = result.seconds, run.trainable
    if run.probe is None:
        state.retention = {"encoder_frozen": True}
    else:
        if not state.retention:  # no dev evaluation kept a model: the kept model is the last one
            state.retention = measure_retention(run, state, state.epoch)
        state.retention["anchor_weight"] = run.cfg.anchor_weight  # what held it (the default when not given)
    result.retention = state.retention
    run.say(f"embedding retention: {retention_line(state.retention)}")
    warning = retention.retention_warning(state.retention, run.cfg.anchor_weight)
    if warning:
        run.say(warning)
    if run.main:
        write_training_files(run.out, state, run.cfg, run.specs)
        if not tr.keep_checkpoints:
            checkpoint.remove_checkpoints(run.out)
    run.say(f"done in {result.seconds:.0f}s; model saved to {run.out}")
    return result
