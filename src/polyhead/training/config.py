"""Training configuration: one YAML file describes a whole run, and reproduces it.

Every field is declared once, with its type and its allowed values in the field's metadata
(`opt(default, ge=1)`, `opt("linear", choices=...)`); `_build` checks each value against that
declaration when the config is built, so a wrong value fails at load time with its key path
("training.epochs: expected a positive integer, got 'abc'"), never later as a traceback.
Why this module is long: the declarations and the one checker that reads them belong together
(over 500 lines on purpose; splitting them would separate a field from the rule that checks it).
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import math
import operator
import os
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from ..errors import PolyheadError
from ..io import read_text
from ..modeling.encoder import POOLING_MODES, PRECISIONS
from ..kinds import ALIASES as KIND_ALIASES
from ..kinds import KINDS, TaskSpec
from .sampling import STRATEGIES

SCHEDULERS = ("linear", "cosine", "constant")
# How heads on a frozen encoder are fitted (training/frozen.py): auto = L-BFGS for linear heads,
# AdamW with early stopping for heads with a hidden layer; loop = the per-batch loop through the
# encoder (the only way when something below the heads trains).
HEAD_SOLVERS = ("auto", "lbfgs", "adamw", "loop")
FEATURE_CACHES = ("disk", "memory")
HEAD_LR_RATIO = 30  # training.head_lr, when not given, is this many times training.lr
# training.anchor_weight when not given and the encoder trains: the weight that kept the served
# embedding at or above the starting encoder's STS-B on both measured task sets, heads within
# noise (benchmarks/results/retention-*.json; docs/training.md, "Keeping the sentence embedding").
DEFAULT_ANCHOR_WEIGHT = 1.0
ANCHOR_TARGETS = ("vectors", "similarities")
ANCHOR_SHARED = ("once", "per_source")
HEAD_INITS = ("random", "fit")
GRADUAL_UNITS = ("epoch", "step")
# The deprecated training.mixed_precision (Accelerate's names) -> precision (inference's names).
MIXED_PRECISION_ALIASES = {"no": "fp32", "bf16": "bf16", "fp16": "fp16"}
_SEED_MAX = 2**32 - 1  # numpy's legacy seeding (used by accelerate.set_seed) refuses more


def _weightings() -> tuple[str, ...]:
    # Imported late: weighting.py pulls in torch.nn, and the names come from its registry.
    from .weighting import WEIGHTINGS

    return tuple(sorted(WEIGHTINGS))


def opt(
    default: Any = dataclasses.MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None,
    length: int | None = None,
    single_char: bool = False,
) -> Any:
    """A dataclass field whose metadata says which values are allowed (checked by `_build`)."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "length": length, "single_char": single_char}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


class Checked:
    """A config section that checks its own fields when it is made: `TrainingConfig(epochs=-1)` in
    Python fails as the same value in a YAML file does ("training.epochs: expected a positive
    integer, got -1"). `SECTION` is the key path its messages start with."""

    SECTION: typing.ClassVar[str] = ""

    def section_path(self) -> str:
        """The key path of this section in messages."""
        return self.SECTION

    def __post_init__(self) -> None:
        check_fields(self, self.section_path())


@dataclass
class EncoderConfig(Checked):
    """The shared encoder and the choices outside the backbone."""

    SECTION: typing.ClassVar[str] = "encoder"

    model: str | None = None  # a model folder or Hub name; None / "default": the bundled all-MiniLM-L6-v2
    # How the token vectors become one sentence vector. None (here and for normalize, max_length):
    # the model's sentence-transformers config (its Pooling, Normalize, max_seq_length), and
    # for a plain Hugging Face model polyhead's defaults: mean pooling, normalised, 256 tokens.
    pooling: str | None = opt(None, choices=POOLING_MODES)
    normalize: bool | None = None  # L2-normalise the sentence embedding; None: the model's config, else true
    max_length: int | None = opt(None, ge=1)  # longer texts are truncated to this many tokens; None: the model's, else 256


@dataclass(kw_only=True)
class DataOptions:
    """How to read a data source: files besides train, format, columns, limits. Shared by a
    dataset and by a task with its own files (the one-task shorthand)."""

    dev: str | None = None  # dev split file: scored at every evaluation, it picks the model that is kept
    test: str | None = None  # test split file: scored once, on the kept model, at the end of the run
    format: str | None = opt(None, choices=("jsonl", "csv", "tsv", "conll"))  # default: from the extension
    text_column: str = "text"  # the column (JSON key, CSV/TSV header) holding each text
    tokens_column: str = "tokens"  # token tasks: the column holding each sentence's list of words
    sentence1_column: str = "sentence1"  # pair tasks: the column holding the first text of each pair
    sentence2_column: str = "sentence2"  # pair tasks: the column holding the second text of each pair
    score_column: str = "score"  # a similarity task's own files: the gold score's column (unless label_column)
    tag_column: int = -1  # CoNLL files: the whitespace-separated column holding the tag (-1: the last)
    delimiter: str | None = opt(None, single_char=True)  # CSV/TSV field separator; default: "," for csv, tab for tsv
    batch_size: int | None = opt(None, ge=1)  # examples per batch from this data; default: training.batch_size
    max_length: int | None = opt(None, ge=1)  # longer texts of this data are truncated; default: the encoder's max_length
    max_examples: int | None = opt(None, ge=1)  # train on a seeded random subset of this size (file order kept)


def data_options(config: DataOptions) -> dict[str, Any]:
    """The DataOptions fields of a task or dataset config, as keyword arguments."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(DataOptions)}


def _own_fields_first(data: dict[str, Any]) -> dict[str, Any]:
    """A task or dataset as saved: its own keys (name, kind, ...) before the shared data options."""
    shared = {f.name for f in dataclasses.fields(DataOptions)}
    return {**{k: v for k, v in data.items() if k not in shared}, **{k: v for k, v in data.items() if k in shared}}


@dataclass
class TaskConfig(DataOptions, Checked):
    """One task (head) and, optionally, its own data files (shorthand for a one-task dataset)."""

    def section_path(self) -> str:
        return f"tasks[{_name(self.name)}]"

    name: str  # the head's name in predictions and metrics: letters, digits, _ - . (at most 64)
    kind: str = opt(choices=tuple(KINDS) + tuple(KIND_ALIASES))  # what the head predicts (docs/training.md, "Task kinds")
    labels: list[str] | None = None  # default: taken from the training data
    hidden_dim: int | None = opt(None, ge=1)  # a hidden layer (Linear + GELU) of this size in the head; None: linear
    dropout: float = opt(0.1, ge=0.0, lt=1.0)  # dropout before the head's output layer
    loss: str | None = None  # checked against the kind by TaskSpec; default: the kind's first loss
    # similarity: the gold scores' [low, high], mapped linearly onto [0, 1] (e.g. [0, 5] for STS-B)
    score_range: list[float] = opt(factory=lambda: [0.0, 1.0], length=2)
    contrastive_scale: float = opt(20.0, gt=0.0)  # similarity: scale of the contrastive/cosent/angle losses
    # classification, multilabel, token: "balanced" or {label: weight} (checked by TaskSpec)
    class_weights: Any = None
    label_smoothing: float = opt(0.0, ge=0.0, lt=1.0)  # classification, multilabel, token: label smoothing of the loss
    # Text put before every input of this task (both texts of a pair) in training, evaluation and
    # prediction, e.g. "query: " for an e5 encoder (docs/encoders.md, "Prompts"). Tasks that read
    # one dataset share their prompt; token tasks take none.
    prompt: str | None = None
    # The task's own training file: a one-task dataset, read with the data options (the shorthand for
    # a datasets[] entry that labels only this task).
    train: str | None = None
    label_column: str | None = None  # default: the kind's (label, tags, labels, score)
    weight: float = opt(1.0, ge=0.0)  # used by the static and loss_scale weightings


@dataclass
class DatasetConfig(DataOptions, Checked):
    """A data source that may label several tasks; examples missing a label skip that task."""

    def section_path(self) -> str:
        return f"datasets[{_name(self.name)}]"

    name: str  # the dataset's name in messages, and the key of its data given in Python
    train: str | None = None  # required unless the data is given in Python (polyhead.train(data=...))
    # task name -> column (classification label, token tag list) holding that task's label
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class FreezeConfig(Checked):
    """What does not learn: the whole network, the backbone, embeddings, lowest layers, heads."""

    SECTION: typing.ClassVar[str] = "freeze"

    all: bool = False  # nothing trains, heads included: the model is evaluated and saved as it starts
    encoder: bool = False  # the whole encoder is frozen (a fixed feature extractor, no dropout); the heads train
    embeddings: bool = False  # freeze the backbone's embedding layer
    layers: int = opt(0, ge=0)  # freeze the lowest N transformer layers
    heads: list[str] = field(default_factory=list)  # freeze these tasks' heads (their losses still train the encoder)
    # ULMFiT-style: start with heads only, unfreeze one more layer group (top first) every N units.
    gradual_unfreezing: int | None = opt(None, ge=1)
    gradual_unit: str = opt("epoch", choices=GRADUAL_UNITS)  # what gradual_unfreezing counts: epochs or optimiser steps


@dataclass
class TrainingConfig(Checked):
    """The loop: optimiser, schedule, sampling, weighting, evaluation, checkpoints."""

    SECTION: typing.ClassVar[str] = "training"

    epochs: int = opt(3, ge=1)  # passes over the training data (an epoch is steps_per_epoch batches)
    max_steps: int | None = opt(None, ge=1)  # stop after this many optimiser steps if the epochs would take more
    batch_size: int = opt(32, ge=1)  # examples per batch (a batch comes from one dataset; its batch_size wins)
    lr: float = opt(5e-5, gt=0.0)  # the encoder's peak learning rate (AdamW), reached after warmup
    # Fresh heads start from random weights; the pretrained encoder should move slowly. Default:
    # HEAD_LR_RATIO x lr (benchmarks/results/head-lr.json; docs/training.md, "Learning rates").
    head_lr: float | None = opt(None, gt=0.0)
    layer_decay: float = opt(1.0, gt=0.0, le=1.0)  # lr x decay^(depth from the top layer)
    weight_decay: float = opt(0.01, ge=0.0)  # AdamW's weight decay (none on biases and norms)
    warmup_ratio: float = opt(0.1, ge=0.0, lt=1.0)  # share of the optimiser steps with a linear warmup from 0
    scheduler: str = opt("linear", choices=SCHEDULERS)  # after warmup: linear or cosine decay to 0, or constant
    grad_clip: float | None = opt(1.0, gt=0.0)  # null: no clipping
    grad_accum: int = opt(1, ge=1)  # batches whose gradients add up to one optimiser step
    seed: int = opt(42, ge=0, le=_SEED_MAX)  # seeds the heads' initial weights, dropout, sampling, max_examples subsets
    # Which dataset each batch comes from: round_robin (equal shares), proportional (to its number of
    # batches) or temperature (proportional to batches^(1/temperature)).
    sampling: str = opt("proportional", choices=STRATEGIES)
    temperature: float = opt(2.0, gt=0.0)  # sampling: temperature's T (1: proportional; larger: closer to equal)
    steps_per_epoch: int | None = opt(None, ge=1)  # batches per epoch; default: the number of batches in the training data
    # How the tasks' losses combine into one (docs/training.md, "The loop"); static and loss_scale use
    # each task's weight.
    weighting: str = opt("equal", choices=_weightings)
    # The weighting method's own options, e.g. {weights: {task: weight}} for static (default: each
    # task's weight).
    weighting_options: dict[str, Any] = field(default_factory=dict)
    # Training's precision, with the same names as inference: fp32, bf16, fp16, or auto (bf16 where
    # the hardware has it).
    precision: str = opt("fp32", choices=PRECISIONS)
    eval_every: int | None = opt(None, ge=1)  # steps; default: once per epoch
    eval_batch_size: int = opt(64, ge=1)  # texts per batch when scoring (no effect on training)
    # Diagnostics only: also score the test split at every evaluation (curves.csv rows of type
    # eval-test). Test scores never pick a checkpoint; leave off for real model selection work.
    eval_test: bool = False
    # The dev score that picks the kept model: mean (of each task's main metric); min-relative (the
    # worst task's dev score over its reference: select_reference, else the best that task reached so
    # far in this run); or TASK.METRIC (e.g. ner.entity_f1)
    select_metric: str = "mean"
    select_reference: dict[str, float] = field(default_factory=dict)  # task -> dev score, e.g. single-task's
    # Second stage: refit the per-text heads on the trained encoder, frozen (cached features), keeping
    # each refit head only where it scores better on dev (docs/training.md, "Checkpoint selection, the
    # test curve, and refitting heads"). On by default: with the anchor holding the encoder, it gave
    # the heads back what the anchor cost them (benchmarks/results/retention-*.json).
    refit_heads: bool = True
    # How the fresh heads start: random, or fit first on the starting encoder's features with the
    # frozen-head solvers, then trained jointly with the encoder (linear probing, then fine-tuning:
    # the encoder's first updates follow a fitted head, not a random one). Heads taken from
    # init_from or frozen by freeze.heads keep their weights.
    init_heads: str = opt("random", choices=HEAD_INITS)
    early_stopping_patience: int | None = opt(None, ge=1)  # stop after this many evaluations without a better dev score
    checkpoint_every: int | None = opt(None, ge=1)  # steps; default: once per epoch
    # Also a checkpoint whenever this many minutes passed since the last one: bounds the work a
    # hard kill (out of memory, a preemption without warning) can cost. SIGTERM/SIGINT always
    # write one (docs/training.md, "Stopping and resuming").
    checkpoint_every_minutes: float | None = opt(None, gt=0)
    keep_checkpoints: bool = False  # keep checkpoints after a successful run
    log_every: int = opt(10, ge=1)  # optimiser steps between loss rows in curves.csv (and tracker logs)
    # Experiment trackers, through Accelerate (training/trackers.py): tensorboard, mlflow, wandb, ...
    log_with: list[str] = field(default_factory=list)
    run_name: str | None = None  # what trackers call the run; default: the output folder's name
    tracker_options: dict[str, Any] = field(default_factory=dict)  # tracker -> its init keyword arguments
    init_from: str | None = None  # a saved polyhead model to start from (encoder + matching heads)
    # Distillation (docs/training.md, "Distillation"): task -> a saved model trained on that task
    # alone, whose logits (classification, token) or embeddings (similarity) become soft targets.
    distill_teachers: dict[str, str] = field(default_factory=dict)
    distill_lambda: float = opt(1.0, ge=0.0, le=1.0)  # the teacher's share of the target at the start
    distill_anneal: bool = True  # teacher annealing (BAM): that share falls linearly to 0 over the run
    distill_weight: float = opt(1.0, ge=0.0)  # similarity teachers: weight of the embedding MSE term
    # Classification/token teachers also label the OTHER tasks' training texts (no gold there): the
    # student's head follows the teacher's softmax on them with this constant weight; 0 = off.
    distill_other_texts: float = opt(0.0, ge=0.0)
    # Hold the sentence embedding near the starting encoder's (docs/training.md, "Keeping the sentence
    # embedding"). None: DEFAULT_ANCHOR_WEIGHT whenever the encoder trains, 0 when it is frozen; 0 = off.
    anchor_weight: float | None = opt(None, ge=0.0)
    # What the anchor holds: vectors (each text's embedding stays near where it started) or
    # similarities (only the cosines between a batch's texts do: the space may rotate and move as
    # long as its neighbourhoods stay).
    anchor_target: str = opt("vectors", choices=ANCHOR_TARGETS)
    # A text that several training sources share (the same sentences labelled for two tasks in two
    # files, e.g. entity types derived from an NER file): once = its anchor term is divided by the
    # number of sources that have it, so it is held as much as a text one source has (as one file
    # labelling both tasks would hold it); per_source = each source holds its own copy.
    anchor_shared_texts: str = opt("once", choices=ANCHOR_SHARED)
    # Frozen encoder (freeze.encoder): each split is encoded once and the heads fit on the cached
    # features (docs/training.md, "Frozen encoder"). auto: L-BFGS for linear heads, AdamW with early
    # stopping for heads with a hidden layer; loop: the per-batch loop through the encoder.
    head_solver: str = opt("auto", choices=HEAD_SOLVERS)
    head_l2: float | None = opt(None, ge=0.0)  # L-BFGS's L2 penalty; None: picked on dev
    feature_cache: str = opt("disk", choices=FEATURE_CACHES)  # disk: OUTPUT/training/features (fp16)

    @property
    def effective_head_lr(self) -> float:
        """The heads' learning rate: head_lr, or HEAD_LR_RATIO x lr when it is not given."""
        return self.head_lr if self.head_lr is not None else HEAD_LR_RATIO * self.lr

    def accelerate_precision(self, device: str | None = None) -> str:
        """Accelerate's mixed_precision value (no, bf16, fp16) for `precision` on this device."""
        from ..modeling.encoder import pick_device, resolve_precision

        concrete = resolve_precision(self.precision, pick_device(device))
        return {"fp32": "no"}.get(concrete, concrete)

    @property
    def mixed_precision(self) -> str:
        """Deprecated spelling, kept readable: Accelerate's value for `precision` on the default device."""
        return self.accelerate_precision()

    @mixed_precision.setter
    def mixed_precision(self, value: str) -> None:
        self.precision = _from_mixed_precision(value, "training.mixed_precision")


@dataclass
class RunConfig:
    """A whole training run.

    Sections may be given as config objects or as mappings (`RunConfig(training={"epochs": 2},
    tasks=[{"name": "topic", "kind": "classification"}])`), each checked as a YAML file's would be;
    rules across sections (who labels which task, ...) are checked by `validate()`, which
    `polyhead.train` calls. `data` is training data given in Python (never saved with the config):
    a task or dataset name -> {split: file path, list of dicts, DataFrame or datasets.Dataset}.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    tasks: list[TaskConfig] = field(default_factory=list)
    datasets: list[DatasetConfig] = field(default_factory=list)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    base_dir: str = "."  # relative data paths are resolved against the config file's folder
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # training data given in Python
    # `polyhead tune`'s search space: config key -> SPEC, one of float:LOW:HIGH, log:LOW:HIGH, int:LOW:HIGH,
    # choice:A,B,... or a list of choices (training/space.py); training ignores it.
    search: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, cls in (("encoder", EncoderConfig), ("training", TrainingConfig), ("freeze", FreezeConfig)):
            value = getattr(self, name)
            if not isinstance(value, cls):
                setattr(self, name, _build(cls, value, name))
        for name, cls in (("tasks", TaskConfig), ("datasets", DatasetConfig)):
            items = getattr(self, name)
            if not isinstance(items, (list, tuple)):
                raise PolyheadError(f"config: {name!r} must be a list, got {_show(items)}")
            setattr(self, name, [v if isinstance(v, cls) else _build(cls, v, f"{name}[{i}]") for i, v in enumerate(items)])
        if not isinstance(self.data, dict):
            raise PolyheadError(f"data: expected a mapping of task or dataset names to their splits, got {_show(self.data)}")

    def validate(self) -> None:
        """Check every field again (a section may have been changed after it was made) and the rules
        across sections; the first problem is a PolyheadError with its key path."""
        for section in (self.encoder, self.training, self.freeze, *self.tasks, *self.datasets):
            check_fields(section, section.section_path())
        if not self.tasks:
            raise PolyheadError("config: 'tasks' must be a non-empty list")
        _validate(self)

    def resolve(self, path: str | None) -> Path | None:
        """A data path as given, or relative to the config's folder when that is where it exists.

        `{cache}` stands for the polyhead cache (where `polyhead datasets fetch` writes) and
        $VARS and ~ are expanded, so one config works on every machine.
        """
        if path is None:
            return None
        if "{cache}" in path:  # datasets fetched by `polyhead datasets fetch` live in the cache
            from ..io import default_cache_dir

            path = path.replace("{cache}", str(default_cache_dir()))
        p = Path(os.path.expandvars(path)).expanduser()
        if p.is_absolute() or p.exists():
            return p
        candidate = Path(self.base_dir) / p
        return candidate if candidate.exists() else p

    @property
    def anchor_weight(self) -> float:
        """The anchor's weight this run uses: training.anchor_weight, or when it is not given
        DEFAULT_ANCHOR_WEIGHT if any of the encoder trains and 0 if it is frozen."""
        given = self.training.anchor_weight
        if given is not None:
            return float(given)
        return 0.0 if (self.freeze.encoder or self.freeze.all) else DEFAULT_ANCHOR_WEIGHT

    def weighting_options(self) -> dict[str, Any]:
        """training.weighting_options as the loop uses them: `static` and `loss_scale` take each
        task's `weight:` unless the options already give `weights`."""
        from .weighting import with_task_weights

        return with_task_weights(self.training.weighting, self.training.weighting_options, {t.name: t.weight for t in self.tasks})

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for saving next to the model (without `data`: what was given in Python is not
        config)."""
        d = dataclasses.asdict(dataclasses.replace(self, data={}))
        d.pop("base_dir")
        d.pop("data")
        if not d["search"]:  # only configs that carry a search space say so
            d.pop("search")
        d["tasks"] = [_own_fields_first(t) for t in d["tasks"]]
        d["datasets"] = [_own_fields_first(t) for t in d["datasets"]]
        return d


# -- checking values against the declarations --------------------------------------------------
_WARNED: set[str] = set()


def _from_mixed_precision(value: Any, where: str) -> str:
    """The precision a deprecated mixed_precision value means; warns once per process."""
    if value is False:  # YAML reads an unquoted `no` as false
        value = "no"
    if not isinstance(value, str) or value not in MIXED_PRECISION_ALIASES:
        raise PolyheadError(f"{where}: expected one of no, bf16, fp16, got {_show(value)} (better: use training.precision)")
    if "mixed_precision" not in _WARNED:
        _WARNED.add("mixed_precision")
        warnings.warn(
            f"{where} is deprecated; write training.precision: {MIXED_PRECISION_ALIASES[value]} "
            "(fp32, bf16, fp16 or auto, as for inference)",
            FutureWarning,
            stacklevel=4,
        )
    return MIXED_PRECISION_ALIASES[value]


# Keys accepted in place of a field: old name -> (field, conversion).
ALIASES: dict[type, dict[str, tuple[str, Callable[[Any, str], Any]]]] = {
    TrainingConfig: {"mixed_precision": ("precision", _from_mixed_precision)},  # no, bf16, fp16 -> fp32, bf16, fp16
}


def _name(key: Any) -> str:
    """A key as people wrote it, or its repr when it is not plain printable text (keeps messages one line)."""
    return key if isinstance(key, str) and key.isprintable() else repr(key)


def _show(value: Any) -> str:
    """A short one-line repr of a user's value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number_range(meta: dict[str, Any]) -> str:
    lo = f"[{meta['ge']}" if meta.get("ge") is not None else (f"({meta['gt']}" if meta.get("gt") is not None else None)
    hi = f"{meta['le']}]" if meta.get("le") is not None else (f"{meta['lt']})" if meta.get("lt") is not None else None)
    if lo and hi:
        return f" in {lo}, {hi}"
    if lo:
        return f" > {lo[1:]}" if lo[0] == "(" else f" >= {lo[1:]}"
    if hi:
        return f" < {hi[:-1]}" if hi[-1] == ")" else f" <= {hi[:-1]}"
    return ""


def _expected(tp: Any, meta: dict[str, Any]) -> str:
    """What a field accepts, in words: 'a positive integer', 'one of linear, cosine, constant'."""
    choices = meta.get("choices")
    if choices is not None:
        return "one of " + ", ".join(choices() if callable(choices) else choices)
    origin = typing.get_origin(tp)
    if tp is int:
        if meta.get("ge") == 1 and meta.get("le") is None:
            return "a positive integer"
        if meta.get("ge") == 0 and meta.get("le") is None:
            return "a non-negative integer"
        return "an integer" + _number_range(meta)
    if tp is float:
        if meta.get("gt") == 0 and meta.get("le") is None and meta.get("lt") is None:
            return "a positive number"
        return "a number" + _number_range(meta)
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a single character" if meta.get("single_char") else "a string"
    if origin is list:
        (item,) = typing.get_args(tp)
        count = f"{meta['length']} " if meta.get("length") else ""
        return f"a list of {count}{_expected(item, {}).split(' ', 1)[1]}s"
    if origin is dict:
        return "a mapping"
    return "a value"


def _check(value: Any, tp: Any, where: str, meta: dict[str, Any]) -> Any:
    """`value` converted to the declared type `tp`, or a PolyheadError naming `where`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        tp, origin = args[0], typing.get_origin(args[0])
        optional = True
    else:
        optional = False

    def fail() -> PolyheadError:
        extra = " (or null)" if optional else ""
        return PolyheadError(f"{where}: expected {_expected(tp, meta)}{extra}, got {_show(value)}")

    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise fail()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail()
    elif tp is float:
        if isinstance(value, str):  # PyYAML reads 1e-4 (no dot) as a string: the number people meant
            try:
                value = float(value)
            except ValueError:
                raise fail() from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise fail()
        value = float(value)
    elif tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # YAML reads names and labels such as 1 or 2.0 as numbers
        if not isinstance(value, str) or (meta.get("single_char") and (len(value) != 1 or value in "\r\n\"")):
            raise fail()
    elif origin is list:
        if not isinstance(value, list) or (meta.get("length") and len(value) != meta["length"]):
            raise fail()
        (item,) = typing.get_args(tp)
        return [_check(v, item, f"{where}[{i}]", {}) for i, v in enumerate(value)]
    elif origin is dict:
        if not isinstance(value, dict):
            raise fail()
        key_tp, value_tp = typing.get_args(tp)
        return {
            _check(k, key_tp, f"{where} key", {}): _check(v, value_tp, f"{where}.{_name(k)}", {}) for k, v in value.items()
        }
    choices = meta.get("choices")
    if choices is not None and value not in (choices() if callable(choices) else choices):
        raise fail()
    if tp in (int, float):
        for key, holds in (("ge", operator.ge), ("gt", operator.gt), ("le", operator.le), ("lt", operator.lt)):
            if meta.get(key) is not None and not holds(value, meta[key]):
                raise fail()
    return value


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_fields(section: Any, where: str) -> None:
    """Check (and convert, e.g. 1 -> 1.0 for a number) every field of a config section in place."""
    hints = _hints(type(section))
    for f in dataclasses.fields(section):
        setattr(section, f.name, _check(getattr(section, f.name), hints[f.name], f"{where}.{f.name}", dict(f.metadata)))


def _build(cls: type, data: Any, where: str) -> Any:
    """An instance of a config dataclass from a mapping, every value checked against its field."""
    if data is None:  # `training:` with nothing under it; a list entry still needs its required keys
        data = {}
    if not isinstance(data, dict):
        raise PolyheadError(f"{where}: expected a mapping, got {_show(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    aliases = ALIASES.get(cls, {})
    unknown = sorted(_name(k) for k in data if k not in fields and k not in aliases)
    if unknown:
        raise PolyheadError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for old, (new, convert) in aliases.items():
        if old in data:
            if new in data:
                raise PolyheadError(f"{where}: give {new} or its old name {old}, not both")
            values[new] = convert(data[old], f"{where}.{old}")
    for name, f in fields.items():
        if name in data:
            values[name] = _check(data[name], hints[name], f"{where}.{name}", dict(f.metadata))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise PolyheadError(f"{where}: missing required key {name!r}")
    return cls(**values)


def config_from_dict(data: dict[str, Any], base_dir: str | Path = ".", in_memory: dict[str, Any] | None = None) -> RunConfig:
    """Validate a config mapping and build a RunConfig (`in_memory`: RunConfig.data, training data
    given in Python, which may stand in for the files the mapping leaves out)."""
    if not isinstance(data, dict):
        raise PolyheadError("the config must be a mapping at the top level")
    allowed = {"encoder", "tasks", "datasets", "training", "freeze", "search"}
    unknown = sorted(_name(k) for k in data if k not in allowed)
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
        data=dict(in_memory or {}),
        search=_search_section(data.get("search")),
    )
    _validate(cfg)
    return cfg


def _search_section(value: Any) -> dict[str, Any]:
    """The `search:` section: KEY -> SPEC, each checked for its syntax (tune checks the keys)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PolyheadError(f"search: expected a mapping of config keys to search specs, got {_show(value)}")
    from .space import parse_space

    if value:
        parse_space(value)
    return dict(value)


def _validate(cfg: RunConfig) -> None:
    """Rules across fields: task specs, who labels what, freezing and loss-weighting options."""
    for i, t in enumerate(cfg.tasks):
        try:  # name, kind, loss for the kind, labels, dropout, score_range: TaskSpec's own rules
            TaskSpec(t.name, t.kind, t.labels or [], t.hidden_dim, t.dropout, t.loss, tuple(t.score_range),  # type: ignore[arg-type]
                     t.contrastive_scale, t.class_weights, t.label_smoothing)
        except PolyheadError as exc:
            raise PolyheadError(f"tasks[{i}]: {exc}") from None
    names = [t.name for t in cfg.tasks]
    if len(set(names)) != len(names):
        raise PolyheadError(f"config: duplicate task names in {names}")
    labelled: dict[str, str] = {}
    for ds in cfg.datasets:
        for task in ds.labels:
            if task not in names:
                raise PolyheadError(f"dataset {ds.name!r} labels unknown task {task!r}; tasks are {', '.join(names)}")
            labelled[task] = ds.name
    given = cfg.data
    sources = [d.name for d in cfg.datasets] + [t for t in names if t not in labelled]
    for key in given:
        if key in labelled and key not in sources:
            raise PolyheadError(f"data: task {key!r} is labelled by dataset {labelled[key]!r}; give its data under {labelled[key]!r}")
        if key not in sources:
            raise PolyheadError(f"data: {_name(key)} is neither a task nor a dataset of the config; "
                                f"names that take data: {', '.join(sources)}")
    for ds in cfg.datasets:
        if ds.train is None and ds.name not in given:
            raise PolyheadError(f"dataset {ds.name!r} has no 'train:' file; give one, or its data in Python "
                                f"(polyhead.train(..., data={{{ds.name!r}: {{'train': ...}}}}))")
    for t in cfg.tasks:
        if t.train is None and t.name not in labelled and t.name not in given:
            raise PolyheadError(f"task {t.name!r} has no training data: give it 'train:', list it in a dataset's labels, "
                                "or pass its data to polyhead.train(..., data=...)")
        if t.train is not None and t.name in labelled:
            raise PolyheadError(f"task {t.name!r} has its own 'train:' and is also labelled by a dataset; pick one")
    for h in cfg.freeze.heads:
        if h not in names:
            raise PolyheadError(f"config: freeze.heads names unknown task {h!r}")
    tr = cfg.training
    from .weighting import build_weighting

    try:  # unknown options, missing or bad static weights: caught here, before any data is read
        build_weighting(tr.weighting, names, **cfg.weighting_options())
    except (ValueError, TypeError) as exc:
        raise PolyheadError(f"training.weighting_options: {_first_line(exc)}") from None


# -- files and overrides ----------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(exc).__name__


def _parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None)  # "expected ',' or ']', but got '<stream end>'"
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise PolyheadError(f"{where}: invalid YAML: {problem or _first_line(exc)}{at}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise PolyheadError(f"{where}: invalid YAML: nested too deeply") from None


def load_config(path: str | Path, overrides: list[str] | None = None, in_memory: dict[str, Any] | None = None) -> RunConfig:
    """Read a YAML config file, apply KEY=VALUE overrides (e.g. training.epochs=1), validate
    (`in_memory`: training data given in Python, as config_from_dict takes it)."""
    path = Path(path)
    if not path.is_file():
        raise PolyheadError(f"config file {path} does not exist")
    data = _parse_yaml(read_text(path), str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolyheadError(f"{path}: the config must be a mapping at the top level, got {_show(data)}")
    data = apply_overrides(data, overrides or [])
    return config_from_dict(data, base_dir=path.parent, in_memory=in_memory)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys from KEY=VALUE strings; VALUE is parsed as YAML (numbers, lists, null).

    A list is indexed by position or by an entry's name: tasks.0.kind=token, tasks.ner.lr=...
    """
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise PolyheadError(f"override {item!r} must look like section.key=value")
        value = _parse_yaml(raw, f"override {item!r}")
        node: Any = data
        parts = key.split(".")
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                idx = _index_of(node, part, item)
                if last:
                    node[idx] = value
                else:
                    if node[idx] is None:
                        node[idx] = {}
                    node = node[idx]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if node.get(part) is None:  # `training:` with nothing under it reads as null
                        node[part] = {}
                    node = node[part]
            else:
                where = _name(".".join(parts[:depth]))
                raise PolyheadError(f"override {item!r}: {where} is {_show(node)}, not a section or list")
    return data


def _index_of(node: list, part: str, item: str) -> int:
    if part.isdigit():
        idx = int(part)
        if idx >= len(node):
            has = f"its entries are 0 to {len(node) - 1}" if node else "the list is empty"
            raise PolyheadError(f"override {item!r}: no entry {idx}; {has}")
        return idx
    for i, entry in enumerate(node):
        if isinstance(entry, dict) and entry.get("name") == part:
            return i
    raise PolyheadError(f"override {item!r}: no entry named {part!r}")
