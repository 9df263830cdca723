"""`polyhead.train`: the joint training run from Python, as `polyhead train` runs it from a file.

    import polyhead
    report = polyhead.train("configs/example.yaml", "runs/example")            # a YAML file
    report = polyhead.train({"tasks": [...], "training": {...}}, "runs/x",     # a dict, data in memory
                            data={"topic": {"train": df_train, "dev": df_dev}})
    report.dev, report.test, report.best_step, report.model.predict([...])

The CLI is a thin layer over this function.
"""
from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import PolyheadError
from .config import RunConfig, apply_overrides, config_from_dict, load_config
from .state import TrainResult



def resolve_config(config: Any, overrides: Sequence[str] | None = None, data: dict[str, Any] | None = None) -> RunConfig:
    """A checked RunConfig from a YAML path, a mapping or a RunConfig (copied, never changed), with
    `section.key=value` overrides applied and `data` (training data given in Python) attached."""
    if data is not None and not isinstance(data, dict):
        raise PolyheadError(f"data: expected a mapping of task or dataset names to their splits, got {type(data).__name__}")
    if isinstance(config, (str, os.PathLike)):
        return load_config(config, list(overrides or []), in_memory=data)
    if isinstance(config, dict):
        return config_from_dict(apply_overrides(config, list(overrides or [])), base_dir=".", in_memory=data)
    if isinstance(config, RunConfig):
        given = {**config.data, **(data or {})}
        cfg = copy.deepcopy(dataclasses.replace(config, data={}))  # the caller's object stays as it was
        if overrides:
            merged = apply_overrides(cfg.to_dict(), list(overrides))
            cfg = config_from_dict(merged, base_dir=cfg.base_dir, in_memory=given)
        cfg.data = given
        cfg.validate()
        return cfg
    raise PolyheadError(f"config: expected a YAML file path, a mapping or a RunConfig, got {type(config).__name__}")


def train(
    config: Any,
    output_dir: str | os.PathLike[str],
    data: dict[str, Any] | None = None,
    *,
    overrides: Sequence[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    device: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    callbacks: Sequence[Any] | None = None,
) -> TrainResult:
    """Train every task of a config jointly and save the model (best on dev) to `output_dir`.

    config: a YAML file path, a mapping as the YAML would hold it, or a RunConfig.
    data: task or dataset name -> {"train": ..., "dev": ..., "test": ...}, each a file path, a list
        of dicts, a pandas DataFrame, a datasets.Dataset or a (texts, labels) pair; a name given
        here needs no file in the config (docs/training.md, "Training from Python").
    overrides: `section.key=value` strings, as `polyhead train --set` takes them.
    callbacks: objects with any of the hooks of `polyhead.training.callbacks.Callback`.

    Returns the report (dev and test scores, best step, retention, seconds) with the saved model
    as `.model`. Bad input raises PolyheadError with one line, before any training.
    """
    from .loop import train as run_loop

    cfg = resolve_config(config, overrides, data)
    return run_loop(cfg, Path(output_dir), resume=resume, device=device, progress=progress, log=log,
                    overwrite=overwrite, callbacks=list(callbacks or []))
