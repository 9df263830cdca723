"""The task kinds by name. A new kind is one module with a `Kind` subclass, registered here."""
from __future__ import annotations

from ..errors import PolyheadError
from .base import Kind
from .classification import Classification
from .multilabel import MultiLabel
from .pair_classification import PairClassification
from .regression import Regression
from .similarity import Similarity
from .token import Token

KINDS: dict[str, type[Kind]] = {k.name: k for k in (Classification, MultiLabel, Regression, Token, Similarity, PairClassification)}
# Friendly names people write in configs, mapped to the kind that serves them.
ALIASES: dict[str, str] = {alias: k.name for k in KINDS.values() for alias in k.aliases}


def canonical(name: str) -> str:
    """The registered kind name for a name or alias (unknown names come back unchanged)."""
    return ALIASES.get(name, name) if isinstance(name, str) else name


def kind_of(name: str) -> type[Kind]:
    """The kind class for a kind name or alias; a one-line error naming the choices otherwise."""
    kind = KINDS.get(canonical(name))
    if kind is None:
        raise PolyheadError(f"unknown task kind {name!r}; choose one of {', '.join(KINDS)}")
    return kind
