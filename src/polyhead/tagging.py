"""BIO tag helpers shared by prediction and metrics."""
from __future__ import annotations


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
