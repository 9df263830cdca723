"""Embedding retention: how far training moved the sentence embedding from the encoder it started from.

polyhead serves the sentence embedding (encode, /v1/embeddings, /similarity, /rerank) from the same
encoder the heads train. Training the heads moves that encoder, and with it every neighbour a
semantic search returns. Retention measures the move on the run's own texts, against the vectors
the *starting* encoder gave them:

- `cosine`: mean cosine between each text's starting and current embedding (1 = unmoved);
- `rank_agreement`: Spearman correlation between the two models' pairwise similarities over the
  same texts (1 = every pair keeps its order: search results rank the same way);
- `neighbours`: mean overlap of each text's 10 nearest neighbours under the two models;
- for every similarity task, its dev Spearman before training (`similarity_before`); the loop's
  dev metrics give the "after".

A probe is a seeded sample of at most `max_texts` dev texts (train texts when no source has dev),
both sides of pairs included, encoded once by the starting encoder (`RetentionProbe.start`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..kinds import kind_of
from ..modeling.model import MultiTaskModel
from .data import Source

__all__ = ["RetentionProbe", "build_probe", "measure", "compare", "MAX_TEXTS", "NEIGHBOURS",
           "WARN_BELOW", "retention_warning"]

MAX_TEXTS = 500  # 124,750 pairs for the rank agreement; encoding them costs a few seconds on a CPU
NEIGHBOURS = 10
# Below this rank agreement the served embedding had lost STS-B quality in every measured run, and
# above it had kept it (benchmarks/results/retention-*.json; docs/training.md, "Keeping the sentence
# embedding"): training says so in one line.
WARN_BELOW = 0.70


@dataclass
class RetentionProbe:
    """The texts retention is measured on and the starting encoder's (normalised) vectors for them."""

    texts: list[str]
    split: str
    start: np.ndarray  # [N, D] float32, L2-normalised
    similarity_before: dict[str, float] = field(default_factory=dict)  # similarity task -> dev Spearman at the start


def probe_texts(sources: Sequence[Source], max_texts: int = MAX_TEXTS, seed: int = 0, split: str | None = None) -> tuple[list[str], str]:
    """A seeded sample of distinct texts from every source's `split` (default: dev, train when none has dev)."""
    if split is None:
        split = "dev" if any(s.splits.get("dev") for s in sources) else "train"
    texts: list[str] = []
    for src in sources:
        for e in src.splits.get(split) or []:
            texts.extend(e.pair if e.pair is not None else (e.text,))
    unique = sorted({t for t in texts if t.strip()})
    if len(unique) > max_texts:
        unique = sorted(random.Random(seed).sample(unique, max_texts))
    return unique, split


def encoder_trains(cfg: Any) -> bool:
    """Whether any encoder weight can change in a run (else its embedding is the starting one)."""
    return not (cfg.freeze.encoder or cfg.freeze.all) or bool(cfg.freeze.gradual_unfreezing)


def _encode(model: MultiTaskModel, texts: list[str], batch_size: int) -> np.ndarray:
    was_training = model.training
    try:
        return np.asarray(model.encoder.encode(texts, batch_size=batch_size, normalize=True), dtype=np.float32)
    finally:
        model.train(was_training)


def build_probe(model: MultiTaskModel, sources: Sequence[Source], batch_size: int = 64, max_texts: int = MAX_TEXTS,
                seed: int = 0) -> RetentionProbe | None:
    """Encode the probe texts with `model` as it is now (call it before any update). None without texts."""
    texts, split = probe_texts(sources, max_texts, seed)
    if len(texts) < 2:
        return None
    with torch.random.fork_rng(devices=[]):  # never disturb the training RNG stream
        start = _encode(model, texts, batch_size)
        before: dict[str, float] = {}
        pair_sources = [s for s in sources if s.pairs and kind_of(model.tasks[s.tasks[0]].kind).cosine and s.splits.get("dev")]
        if pair_sources:
            from .evaluation import evaluate

            for task, m in evaluate(model, pair_sources, "dev", batch_size).items():
                before[task] = float(m["spearman"])
    return RetentionProbe(texts, split, start, before)


def compare(start: np.ndarray, now: np.ndarray, neighbours: int = NEIGHBOURS) -> dict[str, float]:
    """Retention of `now` against `start` (both [N, D], rows L2-normalised, the same texts)."""
    from scipy.stats import spearmanr

    n = len(start)
    cosine = float(np.mean(np.sum(start * now, axis=1)))
    sim_a, sim_b = start @ start.T, now @ now.T
    upper = np.triu_indices(n, k=1)
    rank = float(spearmanr(sim_a[upper], sim_b[upper]).statistic) if n > 2 else 1.0
    k = min(neighbours, n - 1)
    np.fill_diagonal(sim_a, -np.inf)
    np.fill_diagonal(sim_b, -np.inf)
    top_a = np.argpartition(-sim_a, k - 1, axis=1)[:, :k]
    top_b = np.argpartition(-sim_b, k - 1, axis=1)[:, :k]
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(top_a.tolist(), top_b.tolist())])
    return {"cosine": round(cosine, 6), "rank_agreement": round(rank, 6), "neighbours": round(float(overlap), 6)}


def measure(model: MultiTaskModel, probe: RetentionProbe, batch_size: int = 64) -> dict[str, Any]:
    """Retention of `model`'s embedding on the probe's texts (see the module docstring)."""
    with torch.random.fork_rng(devices=[]):
        now = _encode(model, probe.texts, batch_size)
    return {**compare(probe.start, now), "texts": len(probe.texts), "split": probe.split}


def against(model: MultiTaskModel, base: Any, sources: Sequence[Source], split: str, batch_size: int = 64,
            metrics: dict[str, dict[str, float]] | None = None) -> dict[str, Any] | None:
    """Retention of `model`'s embedding against another encoder `base` (the one it started from) on a
    split's texts, with each similarity task's Spearman under `base` ("before") and in `metrics`
    ("after"); None when the split has fewer than two texts. What `polyhead evaluate` reports."""
    texts, split = probe_texts(sources, MAX_TEXTS, 0, split)
    if len(texts) < 2:
        return None
    with torch.random.fork_rng(devices=[]):
        start = np.asarray(base.encode(texts, batch_size=batch_size, normalize=True), dtype=np.float32)
        now = _encode(model, texts, batch_size)
        before: dict[str, float] = {}
        pairs = [s for s in sources if s.pairs and kind_of(model.tasks[s.tasks[0]].kind).cosine and s.splits.get(split)]
        if pairs and metrics:
            from .evaluation import evaluate

            reference = MultiTaskModel(base, [model.tasks[t] for s in pairs for t in s.tasks])
            before = {t: float(m["spearman"]) for t, m in evaluate(reference, pairs, split, batch_size).items()}
    probe = RetentionProbe(texts, split, start, before)
    return with_similarity({**compare(start, now), "texts": len(texts), "split": split}, probe, metrics or {})


def with_similarity(retention: dict[str, Any], probe: RetentionProbe, metrics: dict[str, dict[str, float]]) -> dict[str, Any]:
    """`retention` plus, per similarity task, its dev Spearman before training and in `metrics`."""
    sims = {t: {"before": round(b, 6), "after": round(float(metrics[t]["spearman"]), 6)}
            for t, b in probe.similarity_before.items() if t in metrics and "spearman" in metrics[t]}
    return {**retention, "similarity": sims} if sims else dict(retention)


def retention_warning(retention: dict[str, Any], anchor_weight: float, threshold: float | None = None) -> str | None:
    """One line when the embedding moved past `threshold` (rank agreement; default WARN_BELOW), naming
    the setting that holds it."""
    threshold = WARN_BELOW if threshold is None else threshold
    rank = retention.get("rank_agreement")
    if rank is None or rank >= threshold:
        return None
    sims = retention.get("similarity") or {}
    if sims and all(s["after"] >= s["before"] for s in sims.values()):
        return None  # it moved, but the run's own similarity tasks say it got no worse (they train it)
    hold = ("raise training.anchor_weight (now {:g})".format(anchor_weight) if anchor_weight
            else "set training.anchor_weight (now 0) back to its default")
    return (f"warning: the sentence embedding moved away from the starting encoder's (rank agreement {rank:.3f} "
            f"< {threshold:g} on {retention['texts']} texts): semantic search with this model ranks differently; "
            f"to hold it, {hold}")
