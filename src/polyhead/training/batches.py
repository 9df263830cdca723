"""The training batches of one process: a pure function of (seed, epoch, source, k), so that a
resumed run draws exactly the batches the interrupted one would have drawn."""
from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import torch

from ..modeling.tasks import TaskSpec
from .data import Source, batch_indices, collate
from .evaluation import to_device


class BatchStream:
    """This process's training batches: the k-th batch of a source in an epoch, a pure function of
    (seed, epoch, source, k), so resume only needs to know how many were drawn already."""

    def __init__(self, sources: list[Source], specs: dict[str, TaskSpec], tokenizer: Any, max_length: int, seed: int,
                 accelerator: Any) -> None:
        self.sources = {s.name: s for s in sources}
        self.index = {s.name: i for i, s in enumerate(sources)}
        self.specs, self.tokenizer, self.max_length, self.seed = specs, tokenizer, max_length, seed
        self.world, self.rank, self.device = accelerator.num_processes, accelerator.process_index, accelerator.device
        # One "batch" is batch_size examples per process; all processes step through it together.
        self.num_batches = {s.name: max(1, math.ceil(len(s.splits["train"]) / (s.batch_size * self.world))) for s in sources}
        self.epoch = 0
        self.drawn: Counter[str] = Counter()
        self.perms: dict[tuple[str, int, int], list[np.ndarray]] = {}

    def start_epoch(self, epoch: int, already_drawn: list[str]) -> None:
        """Begin an epoch; replaying the schedule's first batches restores each source's position."""
        self.epoch = epoch
        self.drawn = Counter(already_drawn)

    def next(self, name: str) -> dict[str, Any]:
        """The next batch of source `name`, collated and on this process's device."""
        src, k = self.sources[name], self.drawn[name]
        self.drawn[name] += 1
        per_cycle = self.num_batches[name]
        key = (name, self.epoch, k // per_cycle)  # a source smaller than its share cycles again
        if key not in self.perms:
            if len(self.perms) > 64:  # bounded: only the current cycle of each source is needed
                self.perms.clear()
            self.perms[key] = batch_indices(len(src.splits["train"]), src.batch_size * self.world, self.seed, self.epoch,
                                            self.index[name], k // per_cycle)
        idx = self.perms[key][k % per_cycle]
        if len(idx) < self.world:
            idx = np.resize(idx, self.world)
        mine = idx[self.rank :: self.world]
        examples = [src.splits["train"][i] for i in mine]
        batch = to_device(collate(examples, src, self.specs, self.tokenizer, self.max_length), self.device)
        # Which examples these are (on the CPU): distillation looks up their cached targets.
        batch["source"], batch["index"] = name, torch.tensor(mine, dtype=torch.long)
        return batch
