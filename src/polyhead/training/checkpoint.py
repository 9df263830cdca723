"""Checkpoints of a training run: what is saved, how it is read back, and when a folder may be used.

A checkpoint is a folder under OUTPUT/checkpoints/ (`step-0000123/`), written to a temporary
folder and renamed into place; `checkpoints/latest` names the newest one and is replaced
atomically, so a kill at any moment leaves the previous checkpoint whole. Everything is
safetensors + JSON (nested state goes through `save_tree`/`load_tree`); nothing is pickled.

    model/                      the model as `MultiTaskModel.save` writes it
    optimizer.*, weighting.*    optimiser and loss-weighting state (save_tree)
    scheduler.json              the lr scheduler's counters
    rng-<rank>.*                each process's RNG state (its dropout masks continue exactly)
    trainer_state.json          the loop's position and history (TrainState)
    config.yaml, run.json       the config it ran with, process count and data sizes
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from ..errors import PolyheadError
from ..io import read_json, write_atomic_dir, write_error_reason, write_failure, write_json_atomic, write_text_atomic
from ..modeling.model import MultiTaskModel, load

# write_atomic_dir / write_text_atomic lived here in 0.1; they stay importable from this module.
__all__ = [
    "CHECKPOINT_DIR", "SAFE_TO_CHANGE", "save_tree", "load_tree", "check_output_dir", "save_checkpoint",
    "load_checkpoint", "latest_checkpoint", "check_same_run", "config_differences", "rng_state", "set_rng_state",
    "remove_checkpoints",
    "write_atomic_dir", "write_text_atomic",
]

CHECKPOINT_DIR = "checkpoints"
LATEST = "latest"
MODEL_MARKER = "polyhead.json"

# Config keys a resumed run may change: none of them alters the model, the data, or the
# optimisation already done. `epochs`/`max_steps` let a run be lengthened or shortened (the lr
# schedule is recomputed for the new length from the current step on); the rest only say how
# often to log, evaluate and checkpoint, and when to give up. Anything else is refused on resume.
SAFE_TO_CHANGE: dict[str, str] = {
    "training.epochs": "train longer or shorter (the lr schedule is stretched to the new length)",
    "training.max_steps": "train longer or shorter (the lr schedule is stretched to the new length)",
    "training.log_every": "how often losses are logged",
    "training.eval_every": "how often dev is evaluated",
    "training.eval_batch_size": "evaluation batch size (no effect on training)",
    "training.checkpoint_every": "how often checkpoints are written",
    "training.checkpoint_every_minutes": "how often checkpoints are written",
    "training.keep_checkpoints": "whether checkpoints are kept after the run",
    "training.early_stopping_patience": "how many evaluations without improvement stop the run",
    "training.log_with": "which experiment trackers the run logs to",
    "training.run_name": "what experiment trackers call the run",
    "training.tracker_options": "experiment trackers' own settings",
    "search": "the search space, read by polyhead tune only",
}

FRESH_START = "start fresh with --overwrite (or choose another --output)"


# -- nested state as safetensors + JSON ------------------------------------------------------
def save_tree(tree: Any, folder: Path, name: str) -> None:
    """Write a nested structure: tensors to NAME.safetensors, the rest to NAME.json."""
    tensors: dict[str, torch.Tensor] = {}

    def encode(node: Any, path: str) -> Any:
        if isinstance(node, torch.Tensor):
            tensors[path] = node.detach().cpu().contiguous()
            return {"__tensor__": path}
        if isinstance(node, dict):
            # Pairs keep non-string keys (optimizer state is keyed by int).
            return {"__dict__": [[k, encode(v, f"{path}/{k}")] for k, v in node.items()]}
        if isinstance(node, (list, tuple)):
            return {"__list__": [encode(v, f"{path}/{i}") for i, v in enumerate(node)], "tuple": isinstance(node, tuple)}
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise PolyheadError(f"cannot checkpoint a value of type {type(node).__name__} at {path}")

    skeleton = encode(tree, "")
    save_file(tensors, str(folder / f"{name}.safetensors"))
    with open(folder / f"{name}.json", "w", encoding="utf-8") as fh:
        json.dump(skeleton, fh)


def load_tree(folder: Path, name: str) -> Any:
    """Read back what save_tree wrote; a damaged file is a one-line PolyheadError naming it."""
    with _reading(folder / f"{name}.safetensors"):
        tensors = load_file(str(folder / f"{name}.safetensors"))
    with _reading(folder / f"{name}.json"):
        with open(folder / f"{name}.json", encoding="utf-8") as fh:
            skeleton = json.load(fh)

        def decode(node: Any) -> Any:
            if isinstance(node, dict):
                if "__tensor__" in node:
                    return tensors[node["__tensor__"]]  # KeyError: the two files do not match
                if "__dict__" in node:
                    return {k: decode(v) for k, v in node["__dict__"]}
                if "__list__" in node:
                    items = [decode(v) for v in node["__list__"]]
                    return tuple(items) if node.get("tuple") else items
            return node

        return decode(skeleton)


class _reading:
    """Turn any failure to read or apply one checkpoint file into a one-line PolyheadError naming it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False  # KeyboardInterrupt and friends pass through
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        reason = "file is missing" if isinstance(exc, FileNotFoundError) else lines[0][:200]
        raise PolyheadError(
            f"checkpoint file {self.path} is damaged or unreadable ({reason}); the run cannot resume from it: {FRESH_START}"
        ) from exc


# -- the output folder ------------------------------------------------------------------------
def check_output_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse, before any work, to train into a folder that holds something to lose.

    Allowed: a missing or empty folder; `resume` when an unfinished run is there; anything when
    `overwrite` is set. A finished model or any other non-empty folder needs --overwrite.
    """
    latest = out / CHECKPOINT_DIR / LATEST
    if resume and overwrite:
        raise PolyheadError("pass --resume (continue the run in --output) or --overwrite (start over), not both")
    if resume:
        if not latest.is_file():
            raise PolyheadError(f"--resume: no unfinished run in {out} (no {CHECKPOINT_DIR}/{LATEST}); start without --resume")
        return
    if overwrite or not out.exists():
        return
    if not out.is_dir():
        raise PolyheadError(f"{out} exists and is not a folder; choose another --output")
    if latest.is_file():
        raise PolyheadError(f"{out} holds an unfinished run; pass --resume to continue it, or --overwrite to start over")
    if not any(out.iterdir()):
        return
    what = "a trained model" if (out / MODEL_MARKER).is_file() else "files"
    raise PolyheadError(f"{out} already holds {what}; pass --overwrite to replace it, or choose another --output")


# -- writing ----------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """This process's torch (and CUDA) RNG state: what dropout draws from."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what rng_state() returned."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def save_checkpoint(
    root: Path,
    model: MultiTaskModel,
    weighting: torch.nn.Module,
    optimizer: Any,
    scheduler: Any,
    state: dict[str, Any],
    config: dict[str, Any],
    run_info: dict[str, Any],
    rng_states: list[dict[str, Any]],
) -> Path:
    """Write one checkpoint atomically (rng_states: one per process, by rank); drop the previous one."""
    name = f"step-{state['global_step']:07d}"

    def fill(tmp: Path) -> None:
        model.save(tmp / "model")
        save_tree(optimizer.state_dict(), tmp, "optimizer")
        save_tree(weighting.state_dict(), tmp, "weighting")
        for rank, rng in enumerate(rng_states):
            save_tree(rng, tmp, f"rng-{rank}")
        sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
        write_json_atomic(tmp / "scheduler.json", sched)
        write_text_atomic(tmp / "trainer_state.json", json.dumps(state, default=float))
        write_text_atomic(tmp / "config.yaml", yaml.safe_dump(config, sort_keys=False))
        write_json_atomic(tmp / "run.json", run_info)

    previous = (root / LATEST).read_text(encoding="utf-8").strip() if (root / LATEST).is_file() else None
    try:
        folder = write_atomic_dir(root / name, fill)  # a failure leaves no part of it behind
        write_text_atomic(root / LATEST, name)
    except Exception as exc:
        if write_error_reason(exc) is None:
            raise
        if previous:
            kept, todo = f"the last complete checkpoint ({previous}) is kept", "free space (or fix the folder), then continue with --resume"
        else:
            kept, todo = "no earlier checkpoint exists", "free space (or fix the folder), then start the run again"
        if name != previous:  # written, but `latest` could not name it: it would only hold space
            shutil.rmtree(root / name, ignore_errors=True)
        raise write_failure(exc, f"checkpoint {root / name}", kept, todo) from exc
    if previous and previous != name:
        shutil.rmtree(root / previous, ignore_errors=True)
    return folder


# -- reading ----------------------------------------------------------------------------------
def latest_checkpoint(root: Path) -> Path:
    """The folder `latest` names, checked to exist."""
    with _reading(root / LATEST):
        name = (root / LATEST).read_text(encoding="utf-8").strip()
    folder = root / name
    if not name or not (folder / "trainer_state.json").is_file():
        raise PolyheadError(f"checkpoint {folder} (named by {root / LATEST}) is missing or incomplete; {FRESH_START}")
    return folder


def check_same_run(folder: Path, config: dict[str, Any], run_info: dict[str, Any]) -> None:
    """Refuse to resume when the config (beyond SAFE_TO_CHANGE), process count or data size changed."""
    with _reading(folder / "config.yaml"):
        saved = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
        if not isinstance(saved, dict):
            raise ValueError("not a mapping")
    # Compare like with like: the current config as it would read back from YAML.
    current = yaml.safe_load(yaml.safe_dump(config, sort_keys=False))
    diffs = [d for d in config_differences(saved, current) if d.split(":")[0].split(" ")[0] not in SAFE_TO_CHANGE]
    saved_info: dict[str, Any] = {}
    if (folder / "run.json").is_file():
        with _reading(folder / "run.json"):
            saved_info = read_json(folder / "run.json")
    if "train_data" not in saved_info:  # a checkpoint from before content fingerprints: sizes only
        run_info = {k: v for k, v in run_info.items() if k != "train_data"}
    diffs += config_differences(saved_info, run_info, prefix="run") if saved_info else []
    if diffs:
        raise PolyheadError(
            f"--resume: this run differs from the checkpoint's ({'; '.join(diffs)}); resume with the config "
            f"saved in {folder / 'config.yaml'}, or {FRESH_START}. Safe to change on resume: {', '.join(SAFE_TO_CHANGE)}"
        )


def config_differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Every differing key path (`training.lr: 0.001 -> 0.01`, `tasks.ner: removed`), in --set syntax."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in list(saved) + [k for k in current if k not in saved]:
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in current:
                out.append(f"{path}: removed")
            elif key not in saved:
                out.append(f"{path}: added")
            else:
                out += config_differences(saved[key], current[key], path)
        return out
    if _named_list(saved) and _named_list(current):
        # Tasks and datasets are lists of named entries: compare them by name, as --set names them.
        return config_differences({e["name"]: e for e in saved}, {e["name"]: e for e in current}, prefix)
    return [] if saved == current else [f"{prefix}: {saved!r} -> {current!r}"]


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(e, dict) and "name" in e for e in value)


def load_checkpoint(
    folder: Path, model: MultiTaskModel, weighting: torch.nn.Module, optimizer: Any, scheduler: Any, rank: int
) -> dict[str, Any]:
    """Restore model, weighting, optimiser, scheduler and this rank's RNG; return the loop state."""
    state = _read_state(folder)
    with _reading(folder / "model"):
        saved = load(folder / "model", device=model.device)
        model.load_state_dict(saved.state_dict())
    weights = load_tree(folder, "weighting")
    with _reading(folder / "weighting.json"):
        weighting.load_state_dict(weights)
    if optimizer is not None:
        opt = load_tree(folder, "optimizer")
        with _reading(folder / "optimizer.json"):
            optimizer.load_state_dict(opt)
        with _reading(folder / "scheduler.json"):
            sched = read_json(folder / "scheduler.json")
            scheduler.load_state_dict({**sched, "lr_lambdas": [None] * len(optimizer.param_groups)})
    # Each process restores its own RNG; checkpoints from polyhead 0.1 hold one state (`rng`).
    name = f"rng-{rank}" if (folder / f"rng-{rank}.json").is_file() or not (folder / "rng.json").is_file() else "rng"
    rng = load_tree(folder, name)
    with _reading(folder / f"{name}.safetensors"):
        set_rng_state(rng)
    return state


def _read_state(folder: Path) -> dict[str, Any]:
    with _reading(folder / "trainer_state.json"):
        return read_json(folder / "trainer_state.json")


def remove_checkpoints(out: Path) -> None:
    """Delete OUTPUT/checkpoints (after a successful run, or before an --overwrite run)."""
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)

