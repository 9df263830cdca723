"""Teachers a run trains itself: `training.distill_teachers.TASK: auto`.

`polyhead train` first trains a single-task model of TASK from the same config (its data alone, the
single-task reference recipe: no teachers, no anchor, no refit stage) into OUTPUT/teachers/TASK,
then the joint run distils from it (distill.py). --resume reuses a finished teacher and continues
an unfinished one; --overwrite trains it again.
"""
from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from ..modeling.model import CONFIG_FILE
from .checkpoint import CHECKPOINT_DIR, LATEST
from .config import RunConfig
from .distill import AUTO_TEACHER

# A teacher `polyhead train` makes itself: a single-task model of that task, trained first into
# OUTPUT/teachers/TASK from the same config (reused by --resume). In `polyhead benchmark` it is
# the benchmark's single-task model of the task and seed, as {single} is.
TEACHERS_DIR = "teachers"


def auto_teachers(cfg: RunConfig) -> list[str]:
    """The tasks whose teacher the run trains itself (training.distill_teachers.TASK: auto)."""
    return [t for t, folder in cfg.training.distill_teachers.items() if folder == AUTO_TEACHER]


def teacher_config(cfg: RunConfig, task: str) -> RunConfig:
    """`cfg` reduced to one task: its data (each dataset's other labels dropped), the same encoder and
    loop, no teachers, no anchor and no refit stage: the single-task recipe of configs/single/ that the
    benchmark's teachers follow (a teacher is judged on its task; its embedding is never served)."""
    one = copy.deepcopy(cfg)
    one.tasks = [t for t in one.tasks if t.name == task]
    one.datasets = [d for d in one.datasets if task in d.labels]
    for d in one.datasets:
        d.labels = {task: d.labels[task]}
    tr = one.training
    tr.distill_teachers, tr.distill_other_texts, tr.anchor_weight, tr.refit_heads = {}, 0.0, 0.0, False  # as configs/single/
    tr.weighting, tr.weighting_options, tr.select_metric, tr.select_reference = "equal", {}, "mean", {}
    one.freeze.heads = [h for h in one.freeze.heads if h == task]
    return one


def train_auto_teachers(cfg: RunConfig, out: Path, resume: bool, train_one: Callable[..., Any],
                        say: Callable[[str], None]) -> RunConfig:
    """Train every `auto` teacher into out/teachers/TASK (with `resume`: reuse a finished one, continue
    an unfinished one) and return a copy of `cfg` whose teachers are those folders."""
    auto = auto_teachers(cfg)
    if not auto:
        return cfg
    resolved = copy.deepcopy(cfg)
    for task in auto:
        folder = out / TEACHERS_DIR / task
        unfinished = (folder / CHECKPOINT_DIR / LATEST).is_file()
        if resume and (folder / CONFIG_FILE).is_file() and not unfinished:
            say(f"teacher for {task}: the single-task model already trained in {folder}")
        else:
            say(f"teacher for {task}: training a single-task {task} model first, into {folder}"
                + (" (continuing it)" if resume and unfinished else ""))
            train_one(teacher_config(cfg, task), folder, resume=resume and unfinished, overwrite=not (resume and unfinished))
        resolved.training.distill_teachers[task] = str(folder.resolve())
    return resolved


def teacher_log(task: str, say: Callable[[str], None]) -> Callable[[str], None]:
    """An auto teacher's training lines, prefixed with its task; without the embedding warning (a
    teacher is trained without the anchor on purpose: only its head is used, its embedding is never served)."""
    def log(message: str) -> None:
        if not message.startswith("warning: the sentence embedding moved"):
            say(f"[teacher {task}] {message}")

    return log


def prepare(cfg: RunConfig, out: Path, resume: bool, overwrite: bool, train_one: Callable[..., Any],
            say: Callable[[str], None]) -> RunConfig:
    """Before the joint run: train (or reuse) every auto teacher; return the config with their folders."""
    if not auto_teachers(cfg):
        return cfg
    if overwrite and int(os.environ.get("RANK", "0")) == 0:
        shutil.rmtree(out / TEACHERS_DIR, ignore_errors=True)  # a replaced run's teachers are stale
    return train_auto_teachers(cfg, out, resume, lambda c, folder, **kw: train_one(c, folder, log=teacher_log(folder.name, say), **kw), say)


def stopped_while_teaching(cfg: RunConfig, out: Path, resume: bool) -> bool:
    """--resume of a run stopped while its own teachers trained: no joint checkpoint yet, teachers/ there."""
    return (resume and bool(auto_teachers(cfg)) and not (out / CHECKPOINT_DIR / LATEST).is_file()
            and (out / TEACHERS_DIR).is_dir())

