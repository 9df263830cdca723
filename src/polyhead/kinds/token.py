"""Token classification (e.g. BIO named entities): a label per word, read at its first sub-token."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import regex
import torch

from ..errors import DataError, PolyheadError
from .base import IGNORE_INDEX, Kind, LabelHead
from .classification import soft_cross_entropy
from .metrics import entity_metrics
from .tagging import bio_to_spans, first_subtokens, inside_earlier_subtoken, split_words


_WORDLIKE = regex.compile(r"[\w\p{M}]")


class TokenHead(LabelHead):
    """Logits per sub-token from the per-token states."""

    kind = "token"
    reads = "token_embeddings"

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of shape (batch, seq, num_labels)."""
        return self.net(features["token_embeddings"])

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over labelled sub-tokens only (padding, specials, non-first pieces: -100)."""
        return self.cross_entropy(logits, labels)


def is_iob(tag: str) -> bool:
    """Whether a tag is O, B-TYPE or I-TYPE."""
    return tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2)


def bio_labels(entity_types: Sequence[str]) -> list[str]:
    """The IOB2 label set for entity types: O, B-X, I-X, ..."""
    out = ["O"]
    for t in entity_types:
        out += [f"B-{t}", f"I-{t}"]
    return out


class Token(Kind):
    name = "token"
    aliases = ("ner", "token_classification")
    description = "a tag per word (BIO named entities), entity spans at predict time"
    head = TokenHead
    losses = ("cross_entropy",)
    label_column = "tags"
    min_labels = 1
    token_level = True
    words = True
    metric = "entity_f1"
    summary_metrics = ("entity_f1", "precision", "recall")
    hub_task = "token-classification"
    frozen_fit = True
    weighted = True

    @classmethod
    def check_spec(cls, spec: Any) -> None:
        if spec.labels and "O" not in spec.labels:
            raise PolyheadError(f"task {spec.name!r}: a token task's labels must include 'O'")

    @classmethod
    def read_label(cls, value: Any, where: str, task: str, fmt: str) -> Any | None:
        """A list of tags (one per word); the word count is checked by the reader."""
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(t, (str, int, float)) and not isinstance(t, bool) for t in value):
            raise DataError(f"{where}: tags for task {task!r} must be a list of strings, one per word")
        tags = [str(t) for t in value]
        for t in tags:
            if not is_iob(t):
                raise DataError(f"{where}: tag {t!r} is not IOB (O, B-TYPE, I-TYPE)")
        return tags

    @classmethod
    def label_values(cls, label: Any) -> list[str]:
        return list(label)

    @classmethod
    def label_set(cls, configured: list[str] | None, train_labels: Sequence[Any]) -> list[str]:
        """As configured, else O plus B-/I- of every entity type in the training tags."""
        if configured:
            return list(configured)
        types = {tag.partition("-")[2] for tags in train_labels for tag in tags if tag != "O"}
        return bio_labels(sorted(types))

    @classmethod
    def batch_labels(cls, spec: Any, labels: Sequence[Any], firsts: list[list[int]] | None, shape: tuple[int, ...]) -> torch.Tensor:
        """A label id at each word's first sub-token, IGNORE_INDEX elsewhere."""
        index = {lab: i for i, lab in enumerate(spec.labels)}
        out = torch.full(shape, IGNORE_INDEX, dtype=torch.long)
        for i, tags in enumerate(labels):
            if tags is None:
                continue
            for w, t in enumerate(firsts[i]):  # type: ignore[index]
                if t >= 0:
                    out[i, t] = index[tags[w]]
        return out

    @classmethod
    def decode(cls, spec: Any, probs: np.ndarray, text: str, offsets: list) -> dict[str, Any]:
        """Word tags from each word's first sub-token, then BIO spans as entities with char offsets."""
        words = split_words(text)
        offsets = [tuple(o) for o in offsets]
        firsts = first_subtokens(offsets, words)
        inside = inside_earlier_subtoken(offsets, words, firsts)
        tags: list[str] = []
        scores: list[float] = []
        for w, t in enumerate(firsts):
            prefix, _, typ = tags[-1].partition("-") if tags else ("O", "", "")
            if t < 0 and inside[w] and prefix in ("B", "I") and typ and _WORDLIKE.search(text, *words[w]):
                # One sub-token holds this word and the one before (raw "北京" read as one piece): the
                # word cannot be told apart from it, so it continues that word's entity.
                tags.append(f"I-{typ}")
                scores.append(scores[-1])
            elif t < 0:  # cut off by truncation, dropped by the tokenizer, or punctuation inside a piece
                tags.append("O")
                scores.append(1.0)
            else:
                best = int(probs[t].argmax())
                tags.append(spec.labels[best])
                scores.append(float(probs[t][best]))
        entities = []
        for typ, start, end in bio_to_spans(tags):
            cs, ce = words[start][0], words[end - 1][1]
            entities.append(
                {
                    "text": text[cs:ce],
                    "type": typ,
                    "start_char": cs,
                    "end_char": ce,
                    "start_word": start,
                    "end_word": end,
                    "score": float(np.mean(scores[start:end])),
                }
            )
        return {"entities": entities, "words": [text[s:e] for s, e in words], "tags": tags}

    @classmethod
    def guesses(cls, spec: Any, output: np.ndarray, firsts: list[list[int]] | None) -> list[Any]:
        """One tag per word, read at its first sub-token (words cut off by truncation: O)."""
        ids = output.argmax(-1)
        return [[spec.labels[int(ids[i, t])] if t >= 0 else "O" for t in row] for i, row in enumerate(firsts or [])]

    @classmethod
    def metrics(cls, gold: list, pred: list, spec: Any | None = None) -> dict[str, float]:
        return entity_metrics(gold, pred)

    @classmethod
    def describe_labels(cls, task: dict[str, Any]) -> str:
        labels = [str(x) for x in task.get("labels") or []]
        types = sorted({x[2:] for x in labels if x[:2] in ("B-", "I-")})
        return f"entity types {', '.join(types) or '–'} (tags {', '.join(labels)})"

    @classmethod
    def arrow_columns(cls, spec: Any) -> dict[str, Any]:
        import pyarrow as pa

        entity = pa.struct([("text", pa.string()), ("type", pa.string()), ("start_char", pa.int32()),
                            ("end_char", pa.int32()), ("score", pa.float32())])
        return {"entities": pa.list_(entity)}

    @classmethod
    def arrow_values(cls, spec: Any, preds: list[dict[str, Any]]) -> dict[str, list]:
        fields = ("text", "type", "start_char", "end_char", "score")
        return {"entities": [[{k: e[k] for k in fields} for e in p["entities"]] for p in preds]}

    @classmethod
    def distill_loss(cls, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor | None, lam: float) -> torch.Tensor:
        """Cross-entropy at labelled words against lam * softmax(teacher) + (1 - lam) * onehot(gold)."""
        return soft_cross_entropy(student, teacher, labels, lam)


# first_subtokens is what collation uses to find each word's first sub-token.
__all__ = ["Token", "TokenHead", "bio_labels", "first_subtokens", "is_iob"]
