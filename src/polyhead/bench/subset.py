"""Benchmark subsets: a documented, seeded reduction of every task's data (quick mode, the study).

A subset is a seeded random sample of each training file (a fixed fraction, so the tasks keep
their relative sizes) and capped dev/test files, written to a working folder; the configs
themselves are never edited. Results always say which subset they ran on.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from ..errors import PolyheadError
from ..training.config import RunConfig


@dataclass
class Subset:
    """A documented reduction of the data: train fraction (seeded sample), dev/test caps, epochs."""

    train_fraction: float
    dev_cap: int
    test_cap: int
    epochs: int
    seed: int = 0

    def describe(self) -> str:
        """One line for tables and JSON."""
        def cap(split: str, n: int) -> str:
            return f"full {split}" if n >= 10**9 else f"{split} <= {n} examples per task (seeded sample)"

        return (f"{self.train_fraction:.0%} of each training set (seeded sample), {cap('dev', self.dev_cap)}, "
                f"{cap('test', self.test_cap)}, {self.epochs} epoch(s)")


# Quick: a smoke test that finishes in a few minutes on 2 CPU cores; its figures are not results.
QUICK = Subset(train_fraction=0.03, dev_cap=100, test_cap=200, epochs=1)
# The study: every scenario trains on the same subset, so they compare with each other only.
STUDY = Subset(train_fraction=0.04, dev_cap=200, test_cap=500, epochs=2)


def _units(path: Path) -> tuple[list[str], str]:
    """A data file split into examples (JSON lines, or blank-line-separated CoNLL sentences)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".conll", ".txt", ".iob"):
        blocks = [b.strip("\n") for b in text.split("\n\n")]
        return [b for b in blocks if b.strip()], "\n\n"
    return [line for line in text.splitlines() if line.strip()], "\n"


def write_subset(src: Path, dst: Path, n: int, seed: int) -> int:
    """Write a seeded random sample of n examples of src to dst, in file order; return the count."""
    units, sep = _units(src)
    rng = random.Random(f"{seed}:{src.name}:{len(units)}")
    keep = sorted(rng.sample(range(len(units)), min(n, len(units))))
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(sep.join(units[i] for i in keep) + "\n", encoding="utf-8")
    return len(keep)


def apply_subset(cfg: RunConfig, subset: Subset, workdir: Path) -> dict[str, dict[str, int]]:
    """Point every task's files at subset copies under workdir; set the epochs; return the sizes."""
    from ..training.data import build_sources

    for item in [*cfg.tasks, *cfg.datasets]:
        for split in ("train", "dev", "test"):
            path = cfg.resolve(getattr(item, split, None))
            if path is not None and not path.is_file():
                raise PolyheadError(f"{path} does not exist: run `polyhead datasets fetch` first")
    # Label sets come from the *full* training data: a small sample can miss a rare class
    # (TREC's ABBR is 1.6%) that dev/test then contain.
    _, specs = build_sources(cfg, splits=("train",))
    for task in cfg.tasks:
        if task.labels is None and specs[task.name].labels:
            task.labels = list(specs[task.name].labels)
    sizes: dict[str, dict[str, int]] = {}
    for item in [*cfg.tasks, *cfg.datasets]:
        if getattr(item, "train", None) is None:
            continue
        for split in ("train", "dev", "test"):
            path = cfg.resolve(getattr(item, split))
            if path is None:
                continue
            if split == "train":
                n = max(1, round(len(_units(path)[0]) * subset.train_fraction))
            else:
                n = subset.dev_cap if split == "dev" else subset.test_cap
            dst = workdir / "data" / item.name / f"{split}{path.suffix}"
            if not dst.is_file():  # the same task's subset is shared by every run of one invocation
                write_subset(path, dst, n, subset.seed)
            sizes.setdefault(item.name, {})[split] = len(_units(dst)[0])
            setattr(item, split, str(dst))
    cfg.training.epochs = subset.epochs
    return sizes


def parse_subset(text: str) -> Subset:
    """TRAIN_FRACTION:EPOCHS[:DEV_CAP[:TEST_CAP]], e.g. 0.1:1:300 (caps default to no cap)."""
    parts = text.split(":")
    try:
        fraction, epochs = float(parts[0]), int(parts[1])
        caps = [int(x) for x in parts[2:4]] + [10**9] * (4 - len(parts[:4]))
    except (ValueError, IndexError):
        raise PolyheadError(f"--subset {text!r}: expected TRAIN_FRACTION:EPOCHS[:DEV_CAP[:TEST_CAP]], e.g. 0.1:1:300") from None
    if not (0 < fraction <= 1 and epochs >= 1 and min(caps[:2]) >= 1):
        raise PolyheadError(f"--subset {text!r}: fraction in (0, 1], epochs and caps at least 1")
    return Subset(fraction, caps[0], caps[1], epochs)
