"""Experiment trackers (TensorBoard, MLflow, Weights & Biases, ...) through Accelerate's trackers.

`training.log_with: [tensorboard, mlflow]` makes the run's Accelerator log to them: the config at
the start (flattened to `training.lr`-style keys), every `training.log_every` optimiser steps each
task's loss and the learning rate (`train/loss/TASK`, `train/lr`), every dev evaluation
(`dev/TASK/METRIC`, `dev/score`, `embedding/rank_agreement`, ...), and the test scores at the end
(`test/TASK/METRIC`). The run's name is `training.run_name` (default: the output folder's name);
TensorBoard writes under OUTPUT/training/logs/RUN_NAME; MLflow follows MLFLOW_TRACKING_URI (its
default otherwise); `training.tracker_options` passes a tracker its own keyword arguments
(`{wandb: {entity: my-team}}`). Accelerate is used, not a tracker client of our own, because it
already knows each tracker's API, runs them on the main process only and closes them cleanly.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ..errors import PolyheadError
from .callbacks import Callback, Progress

# Accelerate's tracker name -> (modules any one of which it needs, the pip package to install).
TRACKERS: dict[str, tuple[tuple[str, ...], str]] = {
    "tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"),
    "mlflow": (("mlflow",), "mlflow"),
    "wandb": (("wandb",), "wandb"),
    "comet_ml": (("comet_ml",), "comet-ml"),
    "aim": (("aim",), "aim"),
    "clearml": (("clearml",), "clearml"),
    "dvclive": (("dvclive",), "dvclive"),
    "swanlab": (("swanlab",), "swanlab"),
    "trackio": (("trackio",), "trackio"),
}
# The extras of polyhead that install a tracker's package (pyproject.toml).
EXTRAS = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
LOG_DIR = Path("training") / "logs"


def check_installed(names: list[str]) -> None:
    """Before any work: every tracker named is known and its package importable (one line if not)."""
    for name in names:
        if name not in TRACKERS:
            raise PolyheadError(f"training.log_with: unknown tracker {name!r}; choose from {', '.join(TRACKERS)}")
        modules, package = TRACKERS[name]
        if not any(importlib.util.find_spec(m) is not None for m in modules):
            extra = f"pip install 'polyhead[{EXTRAS[name]}]'" if name in EXTRAS else f"pip install {package}"
            raise PolyheadError(f"training.log_with: {name} needs the {package} package, which is not installed: {extra}")


def run_name(cfg: Any, out: Path) -> str:
    """The name trackers show: training.run_name, else the output folder's name."""
    return cfg.training.run_name or out.resolve().name


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{training: {lr: 1e-4}} -> {"training.lr": 1e-4}; lists and None as text (TensorBoard's
    hyperparameters take numbers, strings and booleans only)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat_config(value, path + "."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
            for item in value:  # tasks and datasets, by name
                out.update(flat_config({k: v for k, v in item.items() if k != "name"}, f"{path}.{item['name']}."))
        elif isinstance(value, (bool, int, float, str)):
            out[path] = value
        else:
            out[path] = "null" if value is None else str(value)
    return out


class Trackers(Callback):
    """Logs the run to Accelerate's trackers (those the Accelerator was made with)."""

    def __init__(self, accelerator: Any, cfg: Any, out: Path) -> None:
        self.accelerator, self.cfg, self.out = accelerator, cfg, out
        self.log_every = cfg.training.log_every
        self.open = False

    def on_train_begin(self, progress: Progress) -> None:
        options = dict(self.cfg.training.tracker_options or {})
        self.accelerator.init_trackers(run_name(self.cfg, self.out), config=flat_config(progress.config), init_kwargs=options)
        self.open = True

    def on_step(self, progress: Progress) -> None:
        if progress.step % self.log_every and progress.step != 1:
            return
        values = {f"train/loss/{task}": loss for task, loss in progress.losses.items()}
        values["train/lr"] = progress.lr
        self.accelerator.log(values, step=progress.step)

    def on_evaluate(self, progress: Progress) -> None:
        values: dict[str, float] = {f"dev/{task}/{name}": v for task, m in progress.metrics.items() for name, v in m.items()
                                    if isinstance(v, (int, float))}
        if progress.score is not None:
            values["dev/score"] = progress.score
        for key in ("cosine", "rank_agreement", "neighbours"):
            if isinstance(progress.retention.get(key), (int, float)):
                values[f"embedding/{key}"] = progress.retention[key]
        self.accelerator.log(values, step=progress.step)

    def on_train_end(self, progress: Progress, result: Any) -> None:
        values = {f"test/{task}/{name}": v for task, m in (result.test or {}).items() for name, v in m.items()
                  if isinstance(v, (int, float))}
        if values:
            self.accelerator.log(values, step=progress.step)
        self.close()

    def close(self) -> None:
        """End the tracker runs (also when the run stops on an error or a signal)."""
        if self.open:
            self.open = False
            self.accelerator.end_training()
