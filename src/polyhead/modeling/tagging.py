"""BIO tag helpers, kept importable here; they live with the token kind in polyhead.kinds.tagging."""
from __future__ import annotations

from ..kinds.tagging import bio_to_spans, first_subtokens, join_words, split_words

__all__ = ["bio_to_spans", "first_subtokens", "join_words", "split_words"]
