"""Training data from Python lists: one in-memory source per task, checked by its kind exactly as
a data file is (what `fit_heads(model, {...})` reads)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..errors import PolyheadError
from ..kinds import KINDS, TaskSpec, kind_of
from .config import DatasetConfig
from .data import Example, Source


def sources_from_lists(data: dict[str, dict[str, Any]]) -> tuple[list[Source], dict[str, TaskSpec]]:
    """One in-memory source per task from (texts, labels) or, for a token task, (word lists, tag lists)."""
    sources, specs = [], {}
    for name, spec in data.items():
        if not isinstance(spec, dict) or "train" not in spec:
            raise PolyheadError(f"task {name!r}: give a dict with 'train': (texts, labels), and optionally 'dev'/'test'")
        kind = kind_of(spec.get("kind", "classification"))
        if not kind.frozen_fit or kind.pairs:
            fits = ", ".join(k for k in sorted(KINDS) if KINDS[k].frozen_fit and not KINDS[k].pairs)
            raise PolyheadError(f"task {name!r}: kind {kind.name!r} cannot be fit from lists ({fits})")
        splits: dict[str, list[Example]] = {}
        for split in ("train", "dev", "test"):
            if spec.get(split) is not None:
                splits[split] = _examples(name, kind, split, spec[split])
        train_labels = [e.labels[name] for e in splits["train"]]
        labels = kind.label_set(spec.get("labels"), train_labels)
        for split, examples in splits.items():  # before the spec: an unknown dev label is the clearer error
            for e in examples:
                kind.check_label(SimpleNamespace(name=name, labels=labels), e.labels[name], f"{split} item {e.line}",
                                 spec.get("labels") is not None)
        task = TaskSpec(name, kind.name, labels, hidden_dim=spec.get("hidden_dim"), dropout=spec.get("dropout", 0.1))
        task.stats = kind.fit_stats(task, train_labels)
        specs[name] = task
        src = Source(name, False, [name], {}, DatasetConfig(name=name, train="<memory>"), 32, None, {s: Path(f"<{name} {s}>") for s in splits}, splits)
        sources.append(src)
    return sources, specs


def _examples(name: str, kind: Any, split: str, pair: Any) -> list[Example]:
    try:
        texts, labels = pair
    except (TypeError, ValueError):
        raise PolyheadError(f"task {name!r}: {split} must be a pair (texts, labels)") from None
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise PolyheadError(f"task {name!r}: {split} has {len(texts)} texts but {len(labels)} labels")
    if split == "train" and not texts:
        raise PolyheadError(f"task {name!r}: no training examples")
    out = []
    for i, (text, label) in enumerate(zip(texts, labels)):
        where = f"task {name!r}, {split} item {i}"
        if kind.words:
            if isinstance(text, str) or not all(isinstance(w, str) and w and not any(c.isspace() for c in w) for w in text):
                raise PolyheadError(f"{where}: a token task takes a list of words (no spaces) per text")
            if not isinstance(label, list) or len(text) != len(label) or not all(isinstance(t, str) for t in label):
                raise PolyheadError(f"{where}: {len(text)} words but {len(label) if isinstance(label, list) else 'no'} tags")
            out.append(Example(line=i, text=" ".join(text), words=list(text), labels={name: kind.read_label(label, where, name, "list")}))
            continue
        if not isinstance(text, str):
            raise PolyheadError(f"{where}: expected a text string, got {type(text).__name__}")
        value = kind.read_label(label, where, name, "list")
        if value is None:
            raise PolyheadError(f"{where}: no label")
        out.append(Example(line=i, text=text, labels={name: value}))
    return out
