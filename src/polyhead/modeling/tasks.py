"""Task specs, kept importable here; they live with the task kinds in polyhead.kinds."""
from __future__ import annotations

from ..kinds import ALIASES as KIND_ALIASES
from ..kinds import KINDS as _KIND_CLASSES
from ..kinds import TaskSpec, bio_labels

KINDS = tuple(_KIND_CLASSES)
DEFAULT_LOSS = {name: kind.losses[0] for name, kind in _KIND_CLASSES.items()}
LOSSES = {name: kind.losses for name, kind in _KIND_CLASSES.items()}

__all__ = ["DEFAULT_LOSS", "KINDS", "KIND_ALIASES", "LOSSES", "TaskSpec", "bio_labels"]
