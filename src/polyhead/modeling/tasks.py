"""Task specs: what each head predicts, with which labels, loss and metric."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import PolyheadError

KINDS = ("classification", "token", "similarity")
# Friendly names people write in configs, mapped to the head kind that serves them.
KIND_ALIASES = {
    "sentence_classification": "classification",
    "sentiment": "classification",
    "ner": "token",
    "token_classification": "token",
    "pair": "similarity",
    "sts": "similarity",
}
DEFAULT_LOSS = {"classification": "cross_entropy", "token": "cross_entropy", "similarity": "cosine_mse"}
LOSSES = {"classification": ("cross_entropy",), "token": ("cross_entropy",),
          "similarity": ("cosine_mse", "contrastive", "cosent", "angle")}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class TaskSpec:
    """One task: a named head of a given kind with its label set and options."""

    name: str
    kind: str
    labels: list[str] = field(default_factory=list)
    hidden_dim: int | None = None
    dropout: float = 0.1
    loss: str | None = None
    # Similarity gold scores are mapped linearly from this range onto [0, 1] for cosine regression.
    score_range: tuple[float, float] = (0.0, 1.0)
    # Scale (inverse temperature) of the ranking losses: contrastive (in-batch negatives, as in
    # multiple-negatives ranking loss), cosent and angle. 20 is the value those losses were published with.
    contrastive_scale: float = 20.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise PolyheadError(
                f"task name {self.name!r} is not valid: use letters, digits, '_', '-' or '.', at most 64 characters"
            )
        self.kind = KIND_ALIASES.get(self.kind, self.kind)
        if self.kind not in KINDS:
            raise PolyheadError(f"task {self.name!r}: unknown kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        self.labels = [str(x) for x in (self.labels or [])]
        if len(set(self.labels)) != len(self.labels):
            raise PolyheadError(f"task {self.name!r}: duplicate labels in {self.labels}")
        if self.kind == "classification" and self.labels and len(self.labels) < 2:
            raise PolyheadError(f"task {self.name!r}: a classification task needs at least 2 labels")
        if self.kind == "token" and self.labels and "O" not in self.labels:
            raise PolyheadError(f"task {self.name!r}: a token task's labels must include 'O'")
        if self.kind == "similarity":
            self.labels = []
        self.loss = self.loss or DEFAULT_LOSS[self.kind]
        if self.loss not in LOSSES[self.kind]:
            raise PolyheadError(
                f"task {self.name!r}: loss {self.loss!r} does not fit kind {self.kind!r}; choose one of {LOSSES[self.kind]}"
            )
        lo, hi = (float(x) for x in self.score_range)
        if not hi > lo:
            raise PolyheadError(f"task {self.name!r}: score_range must be [low, high] with high > low")
        self.score_range = (lo, hi)
        if not 0.0 <= float(self.dropout) < 1.0:
            raise PolyheadError(f"task {self.name!r}: dropout must be in [0, 1)")

    @property
    def num_labels(self) -> int:
        """How many output classes the head has (0 for similarity)."""
        return len(self.labels)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form, as saved in polyhead.json."""
        d = asdict(self)
        d["score_range"] = list(self.score_range)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TaskSpec":
        """Build a spec from a dict (a config entry or a saved polyhead.json entry)."""
        if not isinstance(data, dict):
            raise PolyheadError(f"a task must be a mapping, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise PolyheadError(f"task {data.get('name')!r}: unknown option(s) {', '.join(unknown)}")
        if "name" not in data or "kind" not in data:
            raise PolyheadError(f"a task needs 'name' and 'kind', got {sorted(data)}")
        return cls(**data)

    @classmethod
    def parse(cls, text: str) -> "TaskSpec":
        """Parse the CLI shorthand NAME=KIND[:LABEL,LABEL,...], e.g. topic=classification:a,b."""
        name, sep, rest = text.partition("=")
        if not sep:
            raise PolyheadError(f"task {text!r} must look like NAME=KIND[:LABEL,LABEL,...]")
        kind, _, labels = rest.partition(":")
        return cls(name=name.strip(), kind=kind.strip(), labels=[x.strip() for x in labels.split(",") if x.strip()])


def bio_labels(entity_types: list[str]) -> list[str]:
    """The IOB2 label set for entity types: O, B-X, I-X, ..."""
    out = ["O"]
    for t in entity_types:
        out += [f"B-{t}", f"I-{t}"]
    return out
