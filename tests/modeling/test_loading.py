"""Loading a damaged model folder is a one-line error naming the tensor and the file, never a
model that quietly runs with random weights (issue 11)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from polyhead import MultiTaskModel, PolyheadError, TaskSpec, load
from polyhead.modeling.encoder import Encoder

from conftest import make_tiny_encoder

QUERY = "encoder.layer.0.attention.self.query.weight"
TEXTS = ["Ada Lovelace lives in London.", "hello"]


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A freshly saved tiny model folder (function scope: each test damages its own copy)."""
    model = MultiTaskModel(
        make_tiny_encoder(),
        [
            TaskSpec("topic", "classification", ["sports", "politics", "tech"]),
            TaskSpec("ner", "token", ["O", "B-PER", "I-PER"]),
        ],
    )
    return model.save(tmp_path / "m")


def _rewrite(path: Path, change) -> None:
    state = load_file(str(path))
    change(state)
    save_file(state, str(path), metadata={"format": "pt"})


def _truncate(path: Path, keep: float | int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])


def _load_error(folder: Path) -> str:
    with pytest.raises(PolyheadError) as err:
        load(folder, device="cpu")
    message = str(err.value)
    assert "\n" not in message, message
    return message


# -- the encoder's weights --------------------------------------------------------------------
def test_missing_encoder_tensor_is_named_with_its_file(saved):
    weights = saved / "encoder" / "model.safetensors"
    _rewrite(weights, lambda s: s.pop(QUERY))
    message = _load_error(saved)
    assert QUERY in message and str(weights) in message and "missing" in message
    assert "re-save" in message


def test_misshapen_encoder_tensor_is_named_with_both_shapes(saved):
    weights = saved / "encoder" / "model.safetensors"
    _rewrite(weights, lambda s: s.__setitem__(QUERY, torch.zeros(16, 32)))
    message = _load_error(saved)
    assert QUERY in message and str(weights) in message
    assert "(16, 32)" in message and "(32, 32)" in message


def test_unexpected_encoder_tensor_is_refused_in_a_saved_model(saved):
    # e.g. config.json edited to fewer layers than the weights hold: layer 2 would be dropped silently.
    _rewrite(saved / "encoder" / "model.safetensors", lambda s: s.__setitem__("encoder.layer.2.output.dense.weight", torch.zeros(32, 64)))
    message = _load_error(saved)
    assert "unexpected" in message and "encoder.layer.2.output.dense.weight" in message


@pytest.mark.parametrize("keep", [0.5, 20, 0], ids=["half", "header-cut", "empty"])
def test_truncated_encoder_weights_name_the_file(saved, keep):
    weights = saved / "encoder" / "model.safetensors"
    _truncate(weights, keep)
    message = _load_error(saved)
    assert f"{weights} is not a readable safetensors file" in message and "re-save" in message


def test_missing_tokenizer_vocabulary_is_an_error(saved):
    # transformers would build a tokenizer of special tokens only: every word [UNK], no warning.
    (saved / "encoder" / "tokenizer.json").unlink()
    message = _load_error(saved)
    assert "no tokenizer vocabulary" in message and "tokenizer.json" in message and str(saved / "encoder") in message


def test_a_checkpoint_with_a_pooler_still_loads(tmp_path):
    # polyhead drops the pooler on purpose, so its tensors in a checkpoint are not an error.
    from transformers import BertModel

    enc = make_tiny_encoder()
    with_pooler = BertModel(enc.backbone.config, add_pooling_layer=True)
    with_pooler.load_state_dict(enc.backbone.state_dict(), strict=False)
    model = MultiTaskModel(Encoder(backbone=with_pooler, tokenizer=enc.tokenizer, device="cpu", max_length=64), [])
    model.save(tmp_path / "m")
    assert any(k.startswith("pooler.") for k in load_file(str(tmp_path / "m" / "encoder" / "model.safetensors")))
    loaded = load(tmp_path / "m", device="cpu")
    np.testing.assert_allclose(loaded.encode(TEXTS), model.encode(TEXTS), atol=1e-6)


def test_plain_encoder_folder_is_checked_too(tmp_path):
    folder = tmp_path / "enc"
    make_tiny_encoder().save_backbone(folder)
    _rewrite(folder / "model.safetensors", lambda s: s.pop(QUERY))
    with pytest.raises(PolyheadError, match=f"missing tensor.*{QUERY}"):
        Encoder(folder, device="cpu")


def test_plain_encoder_folder_warns_about_unused_tensors(tmp_path):
    # A hub checkpoint often carries a pre-training head the encoder does not use: say so, load anyway.
    folder = tmp_path / "enc"
    make_tiny_encoder().save_backbone(folder)
    _rewrite(folder / "model.safetensors", lambda s: s.__setitem__("cls.predictions.bias", torch.zeros(3)))
    with pytest.warns(UserWarning, match="cls.predictions.bias"):
        enc = Encoder(folder, device="cpu", max_length=64)
    assert enc.encode(TEXTS).shape == (2, 32)


# -- the heads' weights -----------------------------------------------------------------------
@pytest.mark.parametrize("keep", [0.5, 20, 0], ids=["half", "header-cut", "empty"])
def test_truncated_head_file_names_the_file_and_the_fix(saved, keep):
    path = saved / "heads" / "topic.safetensors"
    _truncate(path, keep)
    message = _load_error(saved)
    assert f"{path} is not a readable safetensors file" in message and "re-save" in message


def test_missing_head_tensor_is_named_with_the_fix(saved):
    path = saved / "heads" / "ner.safetensors"
    _rewrite(path, lambda s: s.pop("net.1.bias"))
    message = _load_error(saved)
    assert str(path) in message and "net.1.bias" in message and "re-save" in message


def test_misshapen_head_tensor_is_named_with_the_fix(saved):
    path = saved / "heads" / "topic.safetensors"
    _rewrite(path, lambda s: s.__setitem__("net.1.weight", torch.zeros(7, 32)))
    message = _load_error(saved)
    assert str(path) in message and "net.1.weight" in message and "(7, 32)" in message and "re-save" in message


def test_an_undamaged_folder_loads_exactly(saved):
    model = load(saved, device="cpu")
    again = load(saved, device="cpu")
    np.testing.assert_allclose(model.encode(TEXTS), again.encode(TEXTS), atol=0)
