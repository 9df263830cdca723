"""Length-sorted batching with a token cap: every text once, widths sorted, caps respected."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import make_tiny_encoder

from polyhead import PolyheadError
from polyhead.modeling.backend import CPU_BATCH_TOKENS, batch_tokens_for, length_sorted_batches


@given(
    lengths=st.lists(st.integers(min_value=1, max_value=300), max_size=80),
    batch_size=st.integers(min_value=1, max_value=64),
    max_tokens=st.one_of(st.none(), st.integers(min_value=1, max_value=5000)),
)
def test_every_text_once_longest_first_within_both_caps(lengths: list[int], batch_size: int, max_tokens: int | None) -> None:
    batches = list(length_sorted_batches(lengths, batch_size, max_tokens))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    for b in batches:
        assert 1 <= len(b) <= batch_size
        width = lengths[b[0]]
        if max_tokens is not None and len(b) > 1:
            assert width * len(b) <= max_tokens  # only a single over-long text may exceed the cap


def test_the_cap_splits_long_texts_and_leaves_short_ones() -> None:
    lengths = [256] * 32 + [20] * 128
    sizes = [len(b) for b in length_sorted_batches(lengths, 128, 2048)]
    assert sizes[:4] == [8, 8, 8, 8]  # 2048 // 256
    assert sizes[4:] == [102, 26]  # 2048 // 20 = 102 short texts per batch
    assert [len(b) for b in length_sorted_batches(lengths, 128, None)] == [128, 32]
    assert [len(b) for b in length_sorted_batches([5000], 4, 100)] == [1]  # never an empty batch
    with pytest.raises(PolyheadError, match="max_tokens"):
        list(length_sorted_batches([3], 1, 0))


def test_the_encoder_caps_its_batches_on_cpu_and_results_do_not_change() -> None:
    assert batch_tokens_for("cpu") == CPU_BATCH_TOKENS and batch_tokens_for("cuda") is None
    enc = make_tiny_encoder(max_length=64)
    assert enc.batch_tokens == CPU_BATCH_TOKENS
    texts = ["word " * n for n in (60, 3, 40, 1, 55, 8, 30)]
    enc.batch_tokens = 130  # about two long texts per pass
    widths = [batch["input_ids"].shape for _, batch in enc.batches(texts, batch_size=7)]
    assert all(rows * width <= 130 or rows == 1 for rows, width in widths) and len(widths) > 1
    capped = enc.encode(texts, batch_size=7)
    enc.batch_tokens = None
    assert len(list(enc.batches(texts, batch_size=7))) == 1
    import numpy as np

    np.testing.assert_allclose(capped, enc.encode(texts, batch_size=7), atol=1e-5)
