"""BIO tag helpers shared by prediction and metrics."""
from __future__ import annotations

import re


def bio_to_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """Turn a BIO/IOB tag sequence into (type, start, end) word spans, end exclusive.

    conlleval semantics: an I-X that does not continue an X entity starts a new one,
    so a malformed sequence still yields entities rather than silently dropping them.
    """
    spans: list[tuple[str, int, int]] = []
    cur_type: str | None = None
    start = 0
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, typ = tag.partition("-")
        if prefix not in ("B", "I") or not typ:
            prefix, typ = "O", ""
        starts_new = prefix == "B" or (prefix == "I" and typ != cur_type)
        if cur_type is not None and (prefix == "O" or starts_new):
            spans.append((cur_type, start, i))
            cur_type = None
        if prefix in ("B", "I") and (starts_new or cur_type is None):
            cur_type, start = typ, i
    return spans


_WORD = re.compile(r"\w+(?:[-'’.]\w+)*|[^\w\s]")


def split_words(text: str) -> list[tuple[int, int]]:
    """Split raw text into word character spans (start, end): word runs and single punctuation.

    This roughly matches CoNLL-style tokenisation, which is what token heads are trained on.
    """
    return [m.span() for m in _WORD.finditer(text)]


def join_words(words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join pre-split words with spaces; return the text and each word's character span."""
    spans, pos = [], 0
    for w in words:
        spans.append((pos, pos + len(w)))
        pos += len(w) + 1
    return " ".join(words), spans


def first_subtokens(offsets: list[tuple[int, int]], word_spans: list[tuple[int, int]]) -> list[int]:
    """For each word, the index of its first sub-token, or -1 when truncation cut it off.

    Sub-tokens are matched to words by character offsets, so this works for any fast
    tokenizer; special tokens have empty (0, 0) offsets and are skipped.
    """
    result = [-1] * len(word_spans)
    w = 0
    for t, (s, e) in enumerate(offsets):
        if e <= s:
            continue
        while w < len(word_spans) and word_spans[w][1] <= s:
            w += 1
        if w >= len(word_spans):
            break
        ws, we = word_spans[w]
        if s < we and e > ws and result[w] == -1:
            result[w] = t
    return result
