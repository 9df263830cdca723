"""Training data given in Python (`polyhead.train(config, out, data={...})`): lists of dicts, pandas
DataFrames, Hugging Face `datasets.Dataset`s, or (texts, labels) pairs, read into the same records a
JSON lines file gives, so every example is checked by its task's kind exactly as a file's is.

`data` maps a task or dataset name of the config to its splits:

    data = {"inbox": {"train": df_train, "dev": df_dev},      # a dataset: columns as configured
            "topic": {"train": (texts, labels)}}              # a task with its own data

A value that is not a mapping is the train split alone (`{"topic": df}`); a `datasets.DatasetDict`
works as the mapping, its "validation" split read as dev. A split may still be a file path.
Nothing here imports pandas or datasets: they are recognised by the methods they have.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any, Iterable

from ..errors import DataError

SPLIT_ALIASES = {"validation": "dev", "valid": "dev", "val": "dev"}


def where_of(name: str, split: str) -> str:
    """How messages name an in-memory split: data['inbox'].train."""
    return f"data[{name!r}].{split}"


def splits_of(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The splits given in Python for a task or dataset: {} when none; train alone for a bare value."""
    if name not in data:
        return {}
    value = data[name]
    if value is None:
        return {}
    if not (isinstance(value, dict) or _is_dataset_dict(value)):
        return {"train": value}
    out: dict[str, Any] = {}
    for key in value.keys():
        split = SPLIT_ALIASES.get(str(key), str(key))
        if split not in ("train", "dev", "test"):
            raise DataError(f"data[{name!r}]: unknown split {key!r}; give train, dev (or validation) and test")
        if split in out:
            raise DataError(f"data[{name!r}]: two splits read as {split} ({split!r} and {key!r}); give one")
        out[split] = value[key]
    return out


def is_path(value: Any) -> bool:
    """Whether a split is a file path (read by the file readers) rather than data."""
    return isinstance(value, (str, os.PathLike))


def records(value: Any, where: str, text_column: str, label_column: str, words: bool, pairs: tuple[str, str] | None) -> list[dict[str, Any]]:
    """A split as a list of plain records (numpy values made Python, NaN kept as float NaN).

    (texts, labels) pairs become records under the source's columns: `text_column` (or the
    tokens column for word lists, or the two sentence columns for (a, b) pairs) and `label_column`.
    """
    if isinstance(value, tuple) and len(value) == 2:
        rows = _from_pairs(value, where, text_column, label_column, pairs)
    elif _is_dataframe(value):
        rows = value.to_dict("records")
    elif _is_dataset(value):
        rows = value.to_list()
    elif isinstance(value, (list, tuple)):
        rows = list(value)
    else:
        raise DataError(f"{where}: expected a list of dicts, a pandas DataFrame, a datasets.Dataset, a (texts, labels) "
                        f"pair or a file path, got {type(value).__name__}")
    if not rows:
        raise DataError(f"{where}: no rows; leave the split out instead of giving it empty")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(f"{where}[{i}]: expected a dict of column -> value, got {type(row).__name__}")
        out.append({str(k): plain(v) for k, v in row.items()})
    return out


def _from_pairs(value: tuple, where: str, text_column: str, label_column: str, pairs: tuple[str, str] | None) -> list[dict[str, Any]]:
    texts, labels = value
    try:
        texts, labels = list(texts), list(labels)
    except TypeError:
        raise DataError(f"{where}: a (texts, labels) pair must hold two sequences") from None
    if len(texts) != len(labels):
        raise DataError(f"{where}: {len(texts)} texts but {len(labels)} labels")
    rows = []
    for i, (text, label) in enumerate(zip(texts, labels)):
        if pairs is not None:
            if not isinstance(text, (tuple, list)) or len(text) != 2:
                raise DataError(f"{where}[{i}]: a pair task takes (sentence1, sentence2) per example, got {type(text).__name__}")
            rows.append({pairs[0]: text[0], pairs[1]: text[1], label_column: label})
        else:
            rows.append({text_column: text, label_column: label})
    return rows


def plain(value: Any) -> Any:
    """A value as JSON would hold it: numpy scalars and arrays made Python, pandas' NA made NaN."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas.NA, pandas.NaT
        return math.nan
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalars and arrays, pandas arrays
        converted = value.tolist()
        return plain_list(converted) if isinstance(converted, (list, tuple)) else converted
    if isinstance(value, (list, tuple)):
        return plain_list(value)
    return value


def plain_list(values: Iterable[Any]) -> list[Any]:
    return [plain(v) for v in values]


def is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _is_dataframe(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "to_dict") and hasattr(value, "columns")


def _is_dataset(value: Any) -> bool:
    return type(value).__name__ == "Dataset" and hasattr(value, "to_list") and hasattr(value, "column_names")


def _is_dataset_dict(value: Any) -> bool:
    return type(value).__name__ in ("DatasetDict", "IterableDatasetDict") and hasattr(value, "keys")


# -- resume: the same data, not only the same number of examples ---------------------------------
def fingerprint(examples: Iterable[Any]) -> str:
    """A short content hash of a split's parsed examples (text or pair or words, and labels)."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(json.dumps([ex.text, ex.pair, ex.words, ex.labels], sort_keys=True, ensure_ascii=False,
                                 default=str).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]


