"""Task kinds: one class per kind owns everything that differs between kinds (see base.py).

`kind_of(spec.kind)` is how the rest of polyhead asks a kind; `KINDS` lists them by name.
"""
from __future__ import annotations

from .base import IGNORE_INDEX, Head, Kind
from .registry import ALIASES, KINDS, canonical, kind_of
from .spec import TaskSpec
from .token import bio_labels

__all__ = ["ALIASES", "IGNORE_INDEX", "KINDS", "Head", "Kind", "TaskSpec", "bio_labels", "canonical", "kind_of"]
