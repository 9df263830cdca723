"""Which training texts several sources share, for the anchor (training/distill.py).

With `training.anchor_shared_texts: once`, a text that k training sources have (the same sentences
labelled for two tasks in two files) weighs 1/k in each source's anchor term, so every distinct
text is held as much as a text one source has, as one file labelling both tasks holds it.
"""
from __future__ import annotations

import torch

from .data import Example, Source


def anchor_text(example: Example, side: int) -> str:
    """The key that names one side of an example's text for sharing: the text without its
    whitespace, so a sentence written out ("Hi, Anna") and the same sentence as a token task's words
    (["Hi", ",", "Anna"]) are one text."""
    if example.pair is not None:
        return "".join(example.pair[side].split())
    return "".join(example.text.split() if example.words is None else example.words)


def anchor_shares(sources: list[Source]) -> tuple[dict[str, tuple[torch.Tensor, ...]], int]:
    """Per source with a text that other training sources also have: per side, each text's share of
    the anchor, 1 / the number of sources that have it (1 for a text only this source has); and how
    many distinct texts are shared."""
    sides = {src.name: [[anchor_text(ex, side) for ex in src.splits["train"]] for side in range(2 if src.pairs else 1)]
             for src in sources}
    owners: dict[str, int] = {}
    for name, texts in sides.items():
        for text in set(t for side in texts for t in side):
            owners[text] = owners.get(text, 0) + 1
    out: dict[str, tuple[torch.Tensor, ...]] = {}
    for name, texts in sides.items():
        counts = [torch.tensor([owners[t] for t in side], dtype=torch.float32) for side in texts]
        if any(bool((c > 1).any()) for c in counts):
            out[name] = tuple(1.0 / c for c in counts)
    return out, sum(1 for n in owners.values() if n > 1)
