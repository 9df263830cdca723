"""The real all-MiniLM-L6-v2: parity with sentence-transformers and the exported folder."""
from __future__ import annotations

import numpy as np
import pytest

from polyhead import MultiTaskModel, TaskSpec, load
from polyhead.modeling.encoder import embedded_default_path

pytestmark = pytest.mark.integration

SENTENCES = [
    "A man is playing a guitar.",
    "A woman is slicing an onion.",
    "The stock market fell sharply on Tuesday amid fears of rising interest rates.",
    "",
    "Kurz.",
    "Emojis 🎉 and accents: café, naïve, Zürich.",
    "word " * 400,  # longer than max_length: both truncate at 256 tokens
]


@pytest.fixture(scope="module")
def st_model():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(embedded_default_path()), device="cpu")


def test_encode_matches_sentence_transformers(real_encoder, st_model):
    ours = real_encoder.encode(SENTENCES, batch_size=3)
    theirs = st_model.encode(SENTENCES, normalize_embeddings=True, batch_size=3)
    assert ours.shape == theirs.shape == (len(SENTENCES), 384)
    assert np.abs(ours - theirs).max() < 1e-5


def test_similar_sentences_are_closer(real_encoder):
    v = real_encoder.encode(["A man is playing a guitar.", "A man plays the guitar.", "The economy shrank last year."])
    assert v[0] @ v[1] > 0.8 > v[0] @ v[2]


def test_export_sentence_transformers_round_trip(real_encoder, tmp_path):
    from sentence_transformers import SentenceTransformer

    model = MultiTaskModel(real_encoder, [TaskSpec("topic", "classification", ["a", "b"])])
    model.export_sentence_transformers(tmp_path / "st")
    exported = SentenceTransformer(str(tmp_path / "st"), device="cpu")
    assert exported.max_seq_length == 256
    np.testing.assert_allclose(exported.encode(SENTENCES), real_encoder.encode(SENTENCES), atol=1e-5)


def test_multitask_model_with_real_encoder_round_trips(real_encoder, tmp_path):
    model = MultiTaskModel(real_encoder, [TaskSpec("ner", "token", ["O", "B-LOC", "I-LOC"])])
    model.save(tmp_path / "m")
    again = load(tmp_path / "m", device="cpu")
    a = model.predict(SENTENCES[:3])
    b = again.predict(SENTENCES[:3])
    np.testing.assert_allclose(np.stack([x["embedding"] for x in a]), np.stack([x["embedding"] for x in b]), atol=1e-6)
