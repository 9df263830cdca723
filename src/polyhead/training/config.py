"""Training configuration: one YAML file describes a whole run, and reproduces it."""
from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import PolyheadError


@dataclass
class EncoderConfig:
    """The shared encoder and the choices outside the backbone."""

    model: str | None = None  # None / "default": the bundled all-MiniLM-L6-v2
    pooling: str = "mean"
    normalize: bool = True
    max_length: int = 256


@dataclass
class TaskConfig:
    """One task (head) and, optionally, its own data files (shorthand for a one-task dataset)."""

    name: str
    kind: str
    labels: list[str] | None = None  # default: taken from the training data
    hidden_dim: int | None = None
    dropout: float = 0.1
    loss: str | None = None
    score_range: list[float] = field(default_factory=lambda: [0.0, 1.0])
    # Shorthand data options, used when the task has its own files.
    train: str | None = None
    dev: str | None = None
    test: str | None = None
    format: str | None = None
    text_column: str = "text"
    label_column: str | None = None  # default: "label" (classification), "tags" (token jsonl)
    tokens_column: str = "tokens"
    sentence1_column: str = "sentence1"
    sentence2_column: str = "sentence2"
    score_column: str = "score"
    tag_column: int = -1
    delimiter: str | None = None
    batch_size: int | None = None
    max_length: int | None = None
    max_examples: int | None = None
    weight: float = 1.0  # used by static loss weighting


@dataclass
class DatasetConfig:
    """A data source that may label several tasks; examples missing a label skip that task."""

    name: str
    train: str
    dev: str | None = None
    test: str | None = None
    format: str | None = None  # jsonl, csv, tsv, conll (default: from the file extension)
    text_column: str = "text"
    tokens_column: str = "tokens"
    # task name -> column (classification label, token tag list) holding that task's label
    labels: dict[str, str] = field(default_factory=dict)
    sentence1_column: str = "sentence1"
    sentence2_column: str = "sentence2"
    score_column: str = "score"
    tag_column: int = -1
    delimiter: str | None = None
    batch_size: int | None = None
    max_length: int | None = None
    max_examples: int | None = None


@dataclass
class FreezeConfig:
    """What does not learn: the whole network, the backbone, embeddings, lowest layers, heads."""

    all: bool = False
    encoder: bool = False
    embeddings: bool = False
    layers: int = 0
    heads: list[str] = field(default_factory=list)
    # ULMFiT-style: start with heads only, unfreeze one more layer group (top first) every N units.
    gradual_unfreezing: int | None = None
    gradual_unit: str = "epoch"  # epoch or step


@dataclass
class TrainingConfig:
    """The loop: optimiser, schedule, sampling, weighting, evaluation, checkpoints."""

    epochs: int = 3
    max_steps: int | None = None
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float | None = None  # default: lr
    layer_decay: float = 1.0  # lr x decay^(depth from the top layer)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    scheduler: str = "linear"  # linear, cosine, constant
    grad_clip: float | None = 1.0
    grad_accum: int = 1
    seed: int = 42
    sampling: str = "proportional"  # round_robin, proportional, temperature
    temperature: float = 2.0
    steps_per_epoch: int | None = None
    weighting: str = "equal"  # equal, static, uncertainty, dwa
    weighting_options: dict[str, Any] = field(default_factory=dict)
    mixed_precision: str = "no"  # no, bf16, fp16
    eval_every: int | None = None  # steps; default: once per epoch
    eval_batch_size: int = 64
    select_metric: str = "mean"  # mean, or TASK.METRIC (e.g. ner.entity_f1)
    early_stopping_patience: int | None = None
    checkpoint_every: int | None = None  # steps; default: once per epoch
    keep_checkpoints: bool = False  # keep checkpoints after a successful run
    log_every: int = 10
    init_from: str | None = None  # a saved polyhead model to start from (encoder + matching heads)


@dataclass
class RunConfig:
    """A whole training run."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    tasks: list[TaskConfig] = field(default_factory=list)
    datasets: list[DatasetConfig] = field(default_factory=list)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    base_dir: str = "."  # relative data paths are resolved against the config file's folder

    def resolve(self, path: str | None) -> Path | None:
        """A data path as given, or relative to the config's folder when that is where it exists.

        `{cache}` stands for the polyhead cache (where `polyhead datasets fetch` writes) and
        $VARS and ~ are expanded, so one config works on every machine.
        """
        if path is None:
            return None
        if "{cache}" in path:  # datasets fetched by `polyhead datasets fetch` live in the cache
            from ..bench.datasets import default_cache_dir

            path = path.replace("{cache}", str(default_cache_dir()))
        p = Path(os.path.expandvars(path)).expanduser()
        if p.is_absolute() or p.exists():
            return p
        candidate = Path(self.base_dir) / p
        return candidate if candidate.exists() else p

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for saving next to the model."""
        d = dataclasses.asdict(self)
        d.pop("base_dir")
        return d


def _build(cls: type, data: Any, where: str) -> Any:
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise PolyheadError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise PolyheadError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    data = dict(data)
    for f in dataclasses.fields(cls):
        # PyYAML reads 1e-4 (no dot) as a string; accept it as the number people meant.
        if isinstance(data.get(f.name), str) and str(f.type).startswith("float"):
            try:
                data[f.name] = float(data[f.name])
            except ValueError:
                raise PolyheadError(f"{where}.{f.name}: {data[f.name]!r} is not a number") from None
    try:
        return cls(**data)
    except TypeError as exc:
        raise PolyheadError(f"{where}: {exc}") from None


def config_from_dict(data: dict[str, Any], base_dir: str | Path = ".") -> RunConfig:
    """Validate a config mapping and build a RunConfig."""
    if not isinstance(data, dict):
        raise PolyheadError("the config must be a mapping at the top level")
    allowed = {"encoder", "tasks", "datasets", "training", "freeze"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise PolyheadError(f"config: unknown section(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")
    tasks = data.get("tasks") or []
    if not isinstance(tasks, list) or not tasks:
        raise PolyheadError("config: 'tasks' must be a non-empty list")
    datasets = data.get("datasets") or []
    if not isinstance(datasets, list):
        raise PolyheadError("config: 'datasets' must be a list")
    cfg = RunConfig(
        encoder=_build(EncoderConfig, data.get("encoder"), "encoder"),
        tasks=[_build(TaskConfig, t, f"tasks[{i}]") for i, t in enumerate(tasks)],
        datasets=[_build(DatasetConfig, d, f"datasets[{i}]") for i, d in enumerate(datasets)],
        training=_build(TrainingConfig, data.get("training"), "training"),
        freeze=_build(FreezeConfig, data.get("freeze"), "freeze"),
        base_dir=str(base_dir),
    )
    _validate(cfg)
    return cfg


def _validate(cfg: RunConfig) -> None:
    names = [t.name for t in cfg.tasks]
    if len(set(names)) != len(names):
        raise PolyheadError(f"config: duplicate task names in {names}")
    labelled: set[str] = set()
    for ds in cfg.datasets:
        for task in ds.labels:
            if task not in names:
                raise PolyheadError(f"dataset {ds.name!r} labels unknown task {task!r}; tasks are {', '.join(names)}")
            labelled.add(task)
    for t in cfg.tasks:
        if t.train is None and t.name not in labelled:
            raise PolyheadError(f"task {t.name!r} has no training data: give it 'train:' or list it in a dataset's labels")
        if t.train is not None and t.name in labelled:
            raise PolyheadError(f"task {t.name!r} has its own 'train:' and is also labelled by a dataset; pick one")
    tr = cfg.training
    checks = [
        (tr.epochs >= 1, "training.epochs must be at least 1"),
        (tr.max_steps is None or tr.max_steps >= 1, "training.max_steps must be at least 1"),
        (tr.lr > 0, "training.lr must be positive"),
        (0 < tr.layer_decay <= 1, "training.layer_decay must be in (0, 1]"),
        (0 <= tr.warmup_ratio < 1, "training.warmup_ratio must be in [0, 1)"),
        (tr.scheduler in ("linear", "cosine", "constant"), "training.scheduler must be linear, cosine or constant"),
        (tr.grad_accum >= 1, "training.grad_accum must be at least 1"),
        (tr.mixed_precision in ("no", "bf16", "fp16"), "training.mixed_precision must be no, bf16 or fp16"),
        (tr.batch_size >= 1, "training.batch_size must be at least 1"),
        (cfg.freeze.gradual_unit in ("epoch", "step"), "freeze.gradual_unit must be epoch or step"),
        (cfg.freeze.layers >= 0, "freeze.layers must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise PolyheadError(f"config: {message}")
    for h in cfg.freeze.heads:
        if h not in names:
            raise PolyheadError(f"config: freeze.heads names unknown task {h!r}")


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config file, apply KEY=VALUE overrides (e.g. training.epochs=1), validate."""
    path = Path(path)
    if not path.is_file():
        raise PolyheadError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise PolyheadError(f"{path} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise PolyheadError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    data = apply_overrides(data or {}, overrides or [])
    return config_from_dict(data, base_dir=path.parent)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys from KEY=VALUE strings; VALUE is parsed as YAML (numbers, lists, null)."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise PolyheadError(f"override {item!r} must look like section.key=value")
        value = yaml.safe_load(raw)
        node: Any = data
        parts = key.split(".")
        for part in parts[:-1]:
            if isinstance(node, list):
                node = _list_item(node, part, item)
            else:
                node = node.setdefault(part, {})
        last = parts[-1]
        if isinstance(node, list):
            idx = _index_of(node, last, item)
            node[idx] = value
        else:
            node[last] = value
    return data


def _index_of(node: list, part: str, item: str) -> int:
    if part.isdigit():
        return int(part)
    for i, entry in enumerate(node):
        if isinstance(entry, dict) and entry.get("name") == part:
            return i
    raise PolyheadError(f"override {item!r}: no entry named {part!r}")


def _list_item(node: list, part: str, item: str) -> Any:
    return node[_index_of(node, part, item)]
