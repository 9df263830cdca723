"""Reading training data (JSON lines, CSV/TSV, CoNLL, pair files), label sets, and batching."""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Sequence

import numpy as np

from . import memory
from .config import DatasetConfig, RunConfig, TaskConfig, data_options
from ..errors import DataError
from ..kinds import Kind, TaskSpec, kind_of
from ..kinds.tagging import first_subtokens, join_words
from ..modeling.backend import length_sorted_batches

FORMATS = ("jsonl", "csv", "tsv", "conll")
SPLITS = ("train", "dev", "test")
# Long documents are legitimate training texts (they are truncated to max_length when batched);
# the csv module's default 128 KiB field limit would reject them.
CSV_FIELD_LIMIT = 64 * 1024 * 1024
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class Example:
    """One training/evaluation example; `labels` maps task name to its label (absent = unlabelled)."""

    line: int
    text: str = ""
    words: list[str] | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    pair: tuple[str, str] | None = None

    @property
    def score(self) -> float | None:
        """A pair's gold score (its only label), as similarity tasks read it."""
        return next(iter(self.labels.values()), None) if self.pair is not None else None


@dataclass
class Source:
    """A dataset feeding one or more tasks, with its examples per split."""

    name: str
    pairs: bool  # its examples are pairs of texts (similarity, pair classification), else single texts
    tasks: list[str]
    columns: dict[str, str]
    cfg: DatasetConfig
    batch_size: int
    max_length: int | None
    paths: dict[str, Path] = field(default_factory=dict)
    splits: dict[str, list[Example]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    in_memory: set[str] = field(default_factory=set)  # splits given in Python (training/memory.py)

    def where(self, split: str, line: int) -> str:
        """How a message names one example: file:line, or data['name'].split[row] for Python data."""
        if split in self.in_memory:
            return f"{memory.where_of(self.name, split)}[{line}]"
        return f"{self.paths[split]}:{line}"


# -- reading files ----------------------------------------------------------------------------
def detect_format(path: Path, fmt: str | None) -> str:
    """The file format: as given, else from the extension."""
    if fmt:
        if fmt not in FORMATS:
            raise DataError(f"{path}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    ext = path.suffix.lower().lstrip(".")
    mapping = {"jsonl": "jsonl", "json": "jsonl", "ndjson": "jsonl", "csv": "csv", "tsv": "tsv", "conll": "conll", "txt": "conll", "iob": "conll"}
    if ext not in mapping:
        raise DataError(f"{path}: cannot tell the format from the extension; set format: jsonl, csv, tsv or conll")
    return mapping[ext]


def _read_text(path: Path) -> str:
    # Not io.read_text: this one names the line of a bad byte, drops a BOM and refuses empty files.
    if not path.is_file():
        raise DataError(f"{path}: file does not exist" if not path.exists() else f"{path}: not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); convert the file to UTF-8") from None
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    return text


def read_records(path: Path, fmt: str, delimiter: str | None = None, tag_column: int = -1) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, record) from a data file; CoNLL gives {"tokens", "tags"} per sentence."""
    text = _read_text(path)
    # Lines end at \n only (a \r before it is dropped): str.splitlines() would also split at
    # U+2028, U+0085 and other characters that JSON strings and CoNLL tokens may hold.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if fmt == "jsonl":
        for no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{no}: invalid JSON ({exc.msg})") from None
            except ValueError as exc:  # e.g. an integer of more than 4300 digits
                raise DataError(f"{path}:{no}: invalid JSON ({str(exc).splitlines()[0]})") from None
            except RecursionError:
                raise DataError(f"{path}:{no}: invalid JSON (nested too deeply)") from None
            if not isinstance(rec, dict):
                raise DataError(f"{path}:{no}: expected a JSON object, got {type(rec).__name__}")
            yield no, rec
    elif fmt in ("csv", "tsv"):
        yield from _read_delimited(path, text, delimiter or ("\t" if fmt == "tsv" else ","))
    elif fmt == "conll":
        tokens: list[str] = []
        tags: list[str] = []
        start = 0
        for no, line in enumerate(lines + [""], 1):
            parts = line.split()
            if not parts or parts[0] == "-DOCSTART-":
                if tokens:
                    yield start, {"tokens": tokens, "tags": tags}
                tokens, tags = [], []
                continue
            if len(parts) < 2:
                raise DataError(f"{path}:{no}: expected 'token ... TAG', got {line.strip()!r} (token and tag counts differ)")
            if not -len(parts) <= tag_column < len(parts):
                raise DataError(
                    f"{path}:{no}: tag_column {tag_column} is outside this line's {len(parts)} columns; "
                    "set tag_column to a column every line has (-1: the last)"
                )
            if not tokens:
                start = no
            tokens.append(parts[0])
            tags.append(parts[tag_column])
    else:  # pragma: no cover - detect_format guards this
        raise DataError(f"{path}: unknown format {fmt}")


def _read_delimited(path: Path, text: str, delim: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """CSV/TSV rows as dicts keyed by the header; csv module errors become located DataErrors."""
    if len(delim) != 1 or delim in "\r\n\"":
        raise DataError(f"{path}: delimiter {delim!r} must be one character, not a quote or newline")
    fed = 0  # lines handed to the csv module: on a csv.Error the last one is the bad line

    def feed() -> Iterator[str]:
        nonlocal fed
        for line in io.StringIO(text, newline=""):  # newline="": csv handles \r and \r\n itself
            fed += 1
            yield line

    previous = csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.DictReader(feed(), delimiter=delim)
    try:
        if not reader.fieldnames:
            raise DataError(f"{path}: no header row")
        for rec in reader:
            if None in rec:
                raise DataError(f"{path}:{reader.line_num}: more fields than the header has")
            yield reader.line_num, rec
    except csv.Error as exc:
        raise DataError(f"{path}:{fed}: not valid {'TSV' if delim == chr(9) else 'CSV'} ({exc})") from None
    finally:
        csv.field_size_limit(previous)


# -- building sources -------------------------------------------------------------------------
def _shorthand_dataset(task: TaskConfig, default_batch: int) -> DatasetConfig:
    kind = kind_of(task.kind)
    default_col = task.score_column if kind.pairs and not kind.has_labels else kind.label_column
    options = {**data_options(task), "batch_size": task.batch_size or default_batch}
    return DatasetConfig(name=task.name, train=task.train or "", labels={task.name: task.label_column or default_col}, **options)


def build_sources(cfg: RunConfig, splits: Sequence[str] = SPLITS) -> tuple[list[Source], dict[str, TaskSpec]]:
    """Read every dataset of a config, derive the label sets, and validate all labels early."""
    kinds = {t.name: kind_of(t.kind) for t in cfg.tasks}
    labelled = {task for ds in cfg.datasets for task in ds.labels}
    dataset_cfgs = list(cfg.datasets) + [
        _shorthand_dataset(t, cfg.training.batch_size) for t in cfg.tasks
        if t.train is not None or (t.name in cfg.data and t.name not in labelled)
    ]
    sources = []
    for ds in dataset_cfgs:
        pairs = any(kinds[t].pairs for t in ds.labels)
        if pairs and len(ds.labels) > 1:
            raise DataError(f"dataset {ds.name!r}: a dataset of text pairs can label only one task")
        src = Source(
            name=ds.name,
            pairs=pairs,
            tasks=list(ds.labels),
            columns=dict(ds.labels),
            cfg=ds,
            batch_size=ds.batch_size or cfg.training.batch_size,
            max_length=ds.max_length,
        )
        given = memory.splits_of(cfg.data, ds.name)
        for split in splits:
            value = given.get(split)
            if value is not None and not memory.is_path(value):
                src.paths[split] = Path(memory.where_of(ds.name, split))
                src.in_memory.add(split)
                src.splits[split], src.skipped[split] = _read_memory_split(src, split, value, kinds)
            else:
                path = cfg.resolve(str(value) if value is not None else getattr(ds, split))
                if path is None:
                    continue
                src.paths[split] = path
                src.splits[split], src.skipped[split] = _read_split(src, path, kinds)
            if ds.max_examples and split == "train" and len(src.splits[split]) > ds.max_examples:
                # A seeded random subset in file order, not the first N: a file sorted by label or
                # source would otherwise give a subset of one class or one source.
                rng = np.random.default_rng([cfg.training.seed, len(sources)])
                keep = np.sort(rng.choice(len(src.splits[split]), ds.max_examples, replace=False))
                src.splits[split] = [src.splits[split][i] for i in keep]
        if "train" in splits and not src.splits.get("train"):
            raise DataError(f"dataset {ds.name!r}: no labelled training examples in {src.paths.get('train')}")
        sources.append(src)
    specs = _label_sets(cfg, sources, kinds)
    _put_prompts(sources, specs)
    return sources, specs


def _put_prompts(sources: list[Source], specs: dict[str, TaskSpec]) -> None:
    """Each dataset's texts with its tasks' prompt in front (TaskSpec.prompt): training, the
    feature cache, evaluation and the retention probe then all see what prediction feeds the head.
    A text is encoded once for all the tasks of its dataset, so they must share the prompt."""
    for src in sources:
        prompts = {specs[t].prompt for t in src.tasks if t in specs}
        if len(prompts) > 1:
            shown = ", ".join(f"{t} ({specs[t].prompt!r})" if specs[t].prompt else f"{t} (no prompt)" for t in src.tasks)
            raise DataError(f"dataset {src.name!r} labels tasks with different prompts: {shown}; each text is encoded "
                            "once for all the tasks of its dataset, so give them the same prompt (or split the dataset)")
        prompt = next(iter(prompts), None)
        if not prompt:
            continue
        for examples in src.splits.values():
            for ex in examples:
                if ex.pair is not None:
                    ex.pair = (prompt + ex.pair[0], prompt + ex.pair[1])
                else:
                    ex.text = prompt + ex.text


def _read_split(src: Source, path: Path, kinds: dict[str, type[Kind]]) -> tuple[list[Example], int]:
    ds = src.cfg
    fmt = detect_format(path, ds.format)
    out: list[Example] = []
    skipped = 0
    for no, rec in read_records(path, fmt, ds.delimiter, ds.tag_column):
        where = f"{path}:{no}"
        if src.pairs:
            ex = _pair_example(rec, src, kinds, fmt, no, where)
        else:
            ex = _text_example(rec, src, kinds, fmt, no, where)
        if ex is None:
            skipped += 1
            continue
        out.append(ex)
    return out, skipped


def _read_memory_split(src: Source, split: str, value: Any, kinds: dict[str, type[Kind]]) -> tuple[list[Example], int]:
    """A split given in Python, read as a JSON lines file of the same records would be. A NaN label
    (pandas' empty cell) means "no label for this task" in a dataset that labels several tasks; in a
    one-task source it is an error, since the row would teach nothing."""
    ds = src.cfg
    where = memory.where_of(src.name, split)
    task = src.tasks[0]
    kind = kinds[task]
    label_column = src.columns[task]
    sides = (ds.sentence1_column, ds.sentence2_column) if src.pairs else None
    if isinstance(value, tuple) and len(src.tasks) > 1:
        raise DataError(f"{where}: a (texts, labels) pair gives one task's labels; {src.name!r} labels "
                        f"{', '.join(src.tasks)}: give rows (dicts, a DataFrame or a datasets.Dataset) with a column per task")
    text_column = ds.tokens_column if kind.words else ds.text_column
    rows = memory.records(value, where, text_column, label_column, kind.words, sides)
    out: list[Example] = []
    skipped = 0
    for no, rec in enumerate(rows):
        here = f"{where}[{no}]"
        for t in src.tasks:
            col = src.columns[t]
            if len(src.tasks) == 1 and not kinds[t].words and col not in rec:
                _column(rec, col, here)  # one task, no label: an error, not a skipped row
            if memory.is_nan(rec.get(col)):
                if len(src.tasks) == 1:
                    raise DataError(f"{here}: the label {col!r} of task {t!r} is NaN; drop the row or fill the label")
                rec[col] = None
        ex = _pair_example(rec, src, kinds, "jsonl", no, here) if src.pairs else _text_example(rec, src, kinds, "jsonl", no, here)
        if ex is None:
            skipped += 1
            continue
        out.append(ex)
    return out, skipped


def _column(rec: dict[str, Any], col: str, where: str) -> Any:
    if col not in rec:
        # repr: a header may hold a line break or other control characters; the message stays one line
        raise DataError(f"{where}: missing column {col!r} (has: {', '.join(repr(str(c)) for c in rec)})")
    return rec[col]


def _pair_example(rec: dict[str, Any], src: Source, kinds: dict[str, type[Kind]], fmt: str, no: int, where: str) -> Example | None:
    ds = src.cfg
    task = src.tasks[0]
    a = _column(rec, ds.sentence1_column, where)
    b = _column(rec, ds.sentence2_column, where)
    label = kinds[task].read_label(_column(rec, src.columns[task], where), where, task, fmt)
    if not isinstance(a, str) or not isinstance(b, str):
        raise DataError(f"{where}: sentence columns must be strings")
    _check_unicode(a, where)
    _check_unicode(b, where)
    if label is None:
        return None
    return Example(line=no, pair=(a, b), labels={task: label})


def _check_unicode(text: str, where: str) -> None:
    # JSON escapes such as \ud800 decode to lone surrogates, which the tokenizer cannot encode.
    bad = _SURROGATE.search(text)
    if bad:
        raise DataError(f"{where}: text holds an unpaired surrogate {bad.group()!r}; fix the JSON escape")


def _text_example(rec: dict[str, Any], src: Source, kinds: dict[str, type[Kind]], fmt: str, no: int, where: str) -> Example | None:
    ds = src.cfg
    words = None
    token_tasks = [t for t in src.tasks if kinds[t].words]
    if fmt == "conll":
        if len(token_tasks) != 1 or len(src.tasks) != 1:
            raise DataError(f"{where}: a CoNLL file labels exactly one token task")
        words = rec["tokens"]
    elif token_tasks:
        words = rec.get(ds.tokens_column)
        if words is not None and (not isinstance(words, list) or not all(isinstance(w, str) for w in words)):
            raise DataError(f"{where}: {ds.tokens_column!r} must be a list of strings")
    if words is not None:
        text, _ = join_words(words)
    else:
        text = _column(rec, ds.text_column, where)
        if not isinstance(text, str):
            raise DataError(f"{where}: {ds.text_column!r} must be a string, got {type(text).__name__}")
    _check_unicode(text, where)
    labels: dict[str, Any] = {}
    for task in src.tasks:
        kind = kinds[task]
        if kind.words:
            raw = rec["tags"] if fmt == "conll" else rec.get(src.columns[task])
            if raw is None:
                continue
            if words is None:
                raise DataError(f"{where}: task {task!r} needs the word list {ds.tokens_column!r}")
            if not isinstance(raw, list):
                raise DataError(f"{where}: {len(words)} tokens but no tags for task {task!r}")
            tags = kind.read_label(raw, where, task, fmt)
            if len(tags) != len(words):
                raise DataError(f"{where}: {len(words)} tokens but {len(tags)} tags for task {task!r}")
            labels[task] = tags
            continue
        if fmt in ("csv", "tsv") and src.columns[task] not in rec:
            raise DataError(f"{where}: missing column {src.columns[task]!r}")
        value = kind.read_label(rec.get(src.columns[task]), where, task, fmt)
        if value is not None:
            labels[task] = value
    if not labels:
        return None  # labels no task: counted as skipped and reported
    return Example(line=no, text=text, words=words, labels=labels)


def _label_sets(cfg: RunConfig, sources: list[Source], kinds: dict[str, type[Kind]]) -> dict[str, TaskSpec]:
    """Label sets from config or training data, and what each kind learns from the training labels
    (class weights, target statistics); unknown labels in dev/test fail here, early."""
    specs: dict[str, TaskSpec] = {}
    for t in cfg.tasks:
        kind = kinds[t.name]
        srcs = [s for s in sources if t.name in s.tasks]
        train_labels = [ex.labels[t.name] for s in srcs for ex in s.splits.get("train", []) if t.name in ex.labels]
        labels = kind.label_set(list(t.labels) if t.labels else None, train_labels)
        for s in srcs:  # before the spec: an unknown dev label is the clearer error than a short label set
            for split, examples in s.splits.items():
                for ex in examples:
                    if t.name in ex.labels:
                        kind.check_label(SimpleNamespace(name=t.name, labels=labels), ex.labels[t.name],
                                         s.where(split, ex.line), bool(t.labels))
        spec = TaskSpec(
            name=t.name,
            kind=kind.name,
            labels=labels,
            hidden_dim=t.hidden_dim,
            dropout=t.dropout,
            loss=t.loss,
            score_range=tuple(t.score_range),  # type: ignore[arg-type]
            contrastive_scale=t.contrastive_scale,
            class_weights=t.class_weights,
            label_smoothing=t.label_smoothing,
            prompt=t.prompt,
        )
        spec.stats = kind.fit_stats(spec, train_labels)
        specs[t.name] = spec
    return specs


# -- batching ---------------------------------------------------------------------------------
def batch_indices(n: int, batch_size: int, seed: int, epoch: int, source_index: int, cycle: int) -> list[np.ndarray]:
    """A deterministic shuffled split of range(n) into batches for (seed, epoch, source, cycle)."""
    rng = np.random.default_rng([seed, epoch, source_index, cycle])
    perm = rng.permutation(n)
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]


def collate(
    examples: Sequence[Example], src: Source, specs: dict[str, TaskSpec], tokenizer: Any, max_length: int
) -> dict[str, Any]:
    """Tokenise a batch and build each task's label tensor (-100 where an example lacks the label)."""
    limit = src.max_length or max_length
    if src.pairs:
        task = src.tasks[0]
        a = tokenizer([e.pair[0] for e in examples], padding=True, truncation=True, max_length=limit, return_tensors="pt")
        b = tokenizer([e.pair[1] for e in examples], padding=True, truncation=True, max_length=limit, return_tensors="pt")
        labels = {task: kind_of(specs[task].kind).batch_labels(specs[task], [e.labels.get(task) for e in examples], None, (len(examples),))}
        return {"pairs": True, "a": dict(a), "b": dict(b), "labels": labels, "task": task}
    kinds = {t: kind_of(specs[t].kind) for t in src.tasks}
    need_offsets = any(k.token_level for k in kinds.values())
    enc = tokenizer(
        [e.text for e in examples],
        padding=True,
        truncation=True,
        max_length=limit,
        return_tensors="pt",
        return_offsets_mapping=need_offsets,
    )
    firsts: list[list[int]] = []
    if need_offsets:
        offsets = enc.pop("offset_mapping").tolist()
        firsts = [first_subtokens([tuple(o) for o in offsets[i]], join_words(e.words)[1] if e.words else [])
                  for i, e in enumerate(examples)]
    shape = tuple(enc["input_ids"].shape)
    labels = {task: kinds[task].batch_labels(specs[task], [e.labels.get(task) for e in examples], firsts, shape)
              for task in src.tasks}
    return {"pairs": False, "inputs": dict(enc), "labels": labels, "firsts": firsts}


def collated_batches(
    src: Source, split: str, specs: dict[str, TaskSpec], tokenizer: Any, max_length: int, batch_size: int
) -> Iterator[tuple[list[int], list[Example], dict[str, Any]]]:
    """One split of `src` in batches of similar length, longest first (less padding), each collated
    exactly as training collates it: (example indices, the examples, the batch). Scoring, feature
    caching and distillation targets all read a split this way."""
    examples = src.splits.get(split) or []
    lengths = [len(e.text or e.pair[0]) for e in examples]  # type: ignore[index]
    for idx in length_sorted_batches(lengths, batch_size):
        chunk = [examples[i] for i in idx]
        yield idx, chunk, collate(chunk, src, specs, tokenizer, max_length)


def describe(sources: list[Source]) -> list[str]:
    """Human-readable lines: examples per split and skipped rows for each dataset."""
    lines = []
    for s in sources:
        parts = [f"{k} {len(v)}" for k, v in s.splits.items()]
        skipped = {k: v for k, v in s.skipped.items() if v}
        extra = f"; skipped (no label for any task): {skipped}" if skipped else ""
        lines.append(f"{s.name}: tasks {', '.join(s.tasks)}; {', '.join(parts)}{extra}")
    return lines
