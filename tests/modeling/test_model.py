"""MultiTaskModel: forward, predict, save/load round trip, and loading errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from polyhead import MultiTaskModel, PolyheadError, TaskSpec, load

from conftest import make_tiny_encoder

TEXTS = ["John Smith flew to Paris on Monday.", "The match was great", "hello"]


@pytest.fixture
def model():
    return MultiTaskModel(
        make_tiny_encoder(),
        [
            TaskSpec("topic", "classification", ["sports", "politics", "tech"], hidden_dim=16),
            TaskSpec("sentiment", "sentiment", ["negative", "positive"]),
            TaskSpec("ner", "token", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]),
            TaskSpec("sts", "similarity", score_range=(0, 5)),
        ],
    )


def test_forward_runs_only_requested_heads(model):
    enc = model.encoder.tokenize(TEXTS)
    out = model(**enc, tasks=["ner"])
    assert set(out["heads"]) == {"ner"}
    assert out["heads"]["ner"].shape == (3, enc["input_ids"].shape[1], 5)
    out = model(**enc)
    assert set(out["heads"]) == {"topic", "sentiment", "ner", "sts"}
    assert out["heads"]["topic"].shape == (3, 3)


def test_predict_gives_every_head_with_label_names(model):
    res = model.predict(TEXTS)
    assert [r["text"] for r in res] == TEXTS
    for r in res:
        assert r["embedding"].shape == (32,)
        assert set(r["tasks"]) == {"topic", "sentiment", "ner"}  # similarity needs pairs
        topic = r["tasks"]["topic"]
        assert topic["label"] in ("sports", "politics", "tech")
        assert abs(sum(topic["scores"].values()) - 1) < 1e-5
        assert topic["score"] == max(topic["scores"].values())
        ner = r["tasks"]["ner"]
        assert len(ner["tags"]) == len(ner["words"])


def test_predict_entities_map_back_to_characters(model):
    # Force the NER head to tag every word B-PER, I-PER, ...: bias towards I-PER, B-PER on the first word.
    head = model.heads["ner"].net[-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([0.0, 0.0, 5.0, 0.0, 0.0]))
    res = model.predict(["Ada Lovelace , London"], tasks=["ner"], embeddings=False)[0]
    ents = res["tasks"]["ner"]["entities"]
    # All I-PER: conlleval starts one entity at the first I- and runs to the end.
    assert len(ents) == 1 and ents[0]["type"] == "PER"
    assert ents[0]["text"] == "Ada Lovelace , London"
    assert (ents[0]["start_char"], ents[0]["end_char"]) == (0, 21)
    assert "embedding" not in res


def test_similarity_is_cosine(model):
    s = model.similarity(["a cat", "a dog"], ["a cat", "stock markets fell"])
    assert s.shape == (2,) and s[0] == pytest.approx(1.0, abs=1e-5)


def test_unknown_task_is_a_clear_error(model):
    with pytest.raises(PolyheadError, match="unknown task"):
        model.predict(["x"], tasks=["nope"])


def test_save_load_round_trip_is_exact(model, tmp_path):
    before = model.predict(TEXTS)
    model.save(tmp_path / "m")
    loaded = load(tmp_path / "m", device="cpu")
    after = loaded.predict(TEXTS)
    assert loaded.tasks.keys() == model.tasks.keys()
    assert loaded.tasks["topic"].labels == ["sports", "politics", "tech"]
    assert loaded.encoder.config_dict() == model.encoder.config_dict()
    for a, b in zip(before, after):
        np.testing.assert_allclose(a["embedding"], b["embedding"], atol=1e-6)
        assert a["tasks"]["topic"]["scores"] == pytest.approx(b["tasks"]["topic"]["scores"], abs=1e-6)
        assert a["tasks"]["ner"]["tags"] == b["tasks"]["ner"]["tags"]


def test_saved_folder_is_safetensors_and_json_only(model, tmp_path):
    model.save(tmp_path / "m")
    files = {p.relative_to(tmp_path / "m").as_posix() for p in (tmp_path / "m").rglob("*") if p.is_file()}
    assert "polyhead.json" in files and "encoder/model.safetensors" in files
    assert {"heads/topic.safetensors", "heads/ner.safetensors", "heads/sentiment.safetensors"} <= files
    assert not any(f.endswith((".bin", ".pt", ".pkl", ".pickle")) for f in files)
    cfg = json.loads((tmp_path / "m" / "polyhead.json").read_text())
    assert cfg["format_version"] == 1 and cfg["encoder"]["pooling"] == "mean"


def test_save_keeps_unrelated_files_and_overwrites_model(model, tmp_path):
    folder = tmp_path / "m"
    model.save(folder)
    (folder / "training").mkdir()
    (folder / "training" / "metrics.json").write_text("{}")
    model.save(folder)
    assert (folder / "training" / "metrics.json").exists()
    assert not list(tmp_path.glob(".m.tmp-*"))


def test_load_rejects_missing_head_file(model, tmp_path):
    model.save(tmp_path / "m")
    (tmp_path / "m" / "heads" / "ner.safetensors").unlink()
    with pytest.raises(PolyheadError, match="missing head weights heads/ner"):
        load(tmp_path / "m")


def test_load_rejects_mismatched_shapes(model, tmp_path):
    model.save(tmp_path / "m")
    path = tmp_path / "m" / "heads" / "sentiment.safetensors"
    state = load_file(str(path))
    state["net.1.weight"] = torch.zeros(7, 32)
    save_file(state, str(path))
    with pytest.raises(PolyheadError, match="shape"):
        load(tmp_path / "m")


def test_load_rejects_unknown_format_version(model, tmp_path):
    model.save(tmp_path / "m")
    cfg_path = tmp_path / "m" / "polyhead.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["format_version"] = 99
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(PolyheadError, match="format version 99"):
        load(tmp_path / "m")


def test_load_rejects_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(PolyheadError, match="not a polyhead model"):
        load(tmp_path)
    with pytest.raises(PolyheadError, match="not a folder"):
        load(tmp_path / "missing")


def test_load_refuses_pickled_encoder_weights(model, tmp_path):
    model.save(tmp_path / "m")
    enc = tmp_path / "m" / "encoder"
    (enc / "model.safetensors").rename(enc / "pytorch_model.bin")
    with pytest.raises(PolyheadError, match="pickled weights are refused"):
        load(tmp_path / "m")


def test_corrupt_json_is_a_clear_error(model, tmp_path):
    model.save(tmp_path / "m")
    (tmp_path / "m" / "polyhead.json").write_text("{not json")
    with pytest.raises(PolyheadError, match="not valid JSON"):
        load(tmp_path / "m")


def test_task_spec_validation():
    with pytest.raises(PolyheadError, match="unknown kind"):
        TaskSpec("x", "ordinal")
    with pytest.raises(PolyheadError, match="must include 'O'"):
        TaskSpec("x", "token", ["B-PER", "I-PER"])
    with pytest.raises(PolyheadError, match="not valid"):
        TaskSpec("bad/name", "classification", ["a", "b"])
    with pytest.raises(PolyheadError, match="duplicate"):
        TaskSpec("x", "classification", ["a", "a"])
    assert TaskSpec.parse("t=classification:a,b").labels == ["a", "b"]
    assert TaskSpec("s", "sentiment", ["neg", "pos"]).kind == "classification"


def test_duplicate_task_name_rejected(model):
    with pytest.raises(PolyheadError, match="already exists"):
        model.add_task(TaskSpec("topic", "classification", ["a", "b"]))
