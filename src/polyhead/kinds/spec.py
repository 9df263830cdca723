"""Task specs: what each head predicts, with which labels, loss and options. The kind checks them."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import PolyheadError
from .registry import KINDS, canonical

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
    # Classification, token and multi-label tasks: "balanced" (weights from the training labels'
    # frequencies) or {label: weight}; None = every label weighs 1.
    class_weights: str | dict[str, float] | None = None
    label_smoothing: float = 0.0
    # Text put before every input of this head (both texts of a pair), in training and prediction,
    # e.g. "query: " for an e5 encoder. None: the text as given.
    prompt: str | None = None
    # What the kind learned from data and saves with the head: regression targets' mean and std,
    # multi-label decision thresholds, resolved class weights.
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise PolyheadError(
                f"task name {self.name!r} is not valid: use letters, digits, '_', '-' or '.', at most 64 characters"
            )
        self.kind = canonical(self.kind)
        if self.kind not in KINDS:
            raise PolyheadError(f"task {self.name!r}: unknown kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        kind = KINDS[self.kind]
        self.labels = [str(x) for x in (self.labels or [])]
        if len(set(self.labels)) != len(self.labels):
            raise PolyheadError(f"task {self.name!r}: duplicate labels in {self.labels}")
        kind.check_spec(self)
        self.loss = self.loss or kind.losses[0]
        if self.loss not in kind.losses:
            raise PolyheadError(
                f"task {self.name!r}: loss {self.loss!r} does not fit kind {self.kind!r}; choose one of {kind.losses}"
            )
        lo, hi = (float(x) for x in self.score_range)
        if not hi > lo:
            raise PolyheadError(f"task {self.name!r}: score_range must be [low, high] with high > low")
        self.score_range = (lo, hi)
        if not 0.0 <= float(self.dropout) < 1.0:
            raise PolyheadError(f"task {self.name!r}: dropout must be in [0, 1)")
        if (self.class_weights is not None or self.label_smoothing) and not kind.weighted:
            raise PolyheadError(f"task {self.name!r}: class_weights and label_smoothing apply to classification, "
                                f"multilabel and token tasks, not {self.kind}")
        if not 0.0 <= float(self.label_smoothing) < 1.0:
            raise PolyheadError(f"task {self.name!r}: label_smoothing must be in [0, 1)")
        if isinstance(self.class_weights, str) and self.class_weights != "balanced":
            raise PolyheadError(f"task {self.name!r}: class_weights is 'balanced' or a mapping label -> weight")
        if isinstance(self.class_weights, dict):
            unknown = sorted(set(self.class_weights) - set(self.labels)) if self.labels else []
            if unknown:
                raise PolyheadError(f"task {self.name!r}: class_weights names unknown label(s) {', '.join(unknown)}")
        if self.prompt is not None:
            if not isinstance(self.prompt, str) or not self.prompt:
                raise PolyheadError(f"task {self.name!r}: prompt must be a non-empty string (the text put before each input)")
            if kind.token_level:
                raise PolyheadError(f"task {self.name!r}: a {self.kind} task takes no prompt: its tags are aligned to the "
                                    "words of the text itself")
        self.stats = dict(self.stats or {})

    @property
    def num_labels(self) -> int:
        """The head's output width (labels; a regression task's outputs; 0 for similarity)."""
        return KINDS[self.kind].num_outputs(self)

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
