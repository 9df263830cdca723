"""Per-task prompts (a task's `prompt`): the head sees each text with its prompt in front, in
training, evaluation and prediction, on every backend; the embedding stays the text's own."""
from __future__ import annotations

import argparse
import shutil

import numpy as np
import pytest
import yaml

from conftest import make_tiny_encoder

from polyhead import MultiTaskModel, PolyheadError, TaskSpec, load
from polyhead.errors import DataError
from polyhead.training.config import load_config
from polyhead.training.data import build_sources
from polyhead.training.loop import train

from train_helpers import write_config

TEXTS = ["the team won the match", "new phone has a fast chip", "x", "a long text about the weather in Paris today"]
PAIRS = [["a cat sits", "a cat is sitting"], ["a dog runs", "stocks fell"]]


def _model(prompts: dict[str, str | None]) -> MultiTaskModel:
    return MultiTaskModel(make_tiny_encoder(seed=3), [
        TaskSpec("topic", "classification", ["sports", "tech"], prompt=prompts.get("topic")),
        TaskSpec("mood", "classification", ["good", "bad", "meh"], prompt=prompts.get("mood")),
        TaskSpec("ner", "token", ["O", "B-PER", "I-PER"]),
        TaskSpec("dup", "pair_classification", ["same", "different"], prompt=prompts.get("dup")),
    ])


def _same_weights(target: MultiTaskModel, source: MultiTaskModel) -> MultiTaskModel:
    target.load_state_dict(source.state_dict())
    return target


def test_a_prompted_head_sees_the_text_with_its_prompt_and_the_embedding_stays_the_texts_own():
    prompted = _model({"topic": "query: ", "mood": "classify: "})
    plain = _same_weights(_model({}), prompted)
    got = prompted.predict(TEXTS)
    for prompt, task in (("query: ", "topic"), ("classify: ", "mood")):
        want = plain.predict([prompt + t for t in TEXTS], tasks=[task])
        for g, w in zip(got, want):
            assert g["tasks"][task]["scores"] == pytest.approx(w["tasks"][task]["scores"], abs=1e-5)
    raw = plain.predict(TEXTS)
    for g, r, text in zip(got, raw, TEXTS):
        assert g["text"] == text
        np.testing.assert_allclose(g["embedding"], r["embedding"], atol=1e-6)
        assert g["tasks"]["ner"] == r["tasks"]["ner"]  # no prompt: as before, offsets into the text itself
    # the prompted heads' scores differ from what the bare text gives (the prompt is really there)
    assert any(g["tasks"]["topic"]["scores"] != pytest.approx(r["tasks"]["topic"]["scores"], abs=1e-4) for g, r in zip(got, raw))
    assert set(got[0]["tasks"]) == {"topic", "mood", "ner"}


def test_pair_heads_see_both_texts_with_their_prompt():
    prompted = _model({"dup": "query: "})
    plain = _same_weights(_model({}), prompted)
    got = prompted.predict_pairs(PAIRS)
    want = plain.predict_pairs([["query: " + a, "query: " + b] for a, b in PAIRS])
    for g, w, pair in zip(got, want, PAIRS):
        assert g["pair"] == pair
        assert g["tasks"]["dup"]["scores"] == pytest.approx(w["tasks"]["dup"]["scores"], abs=1e-5)


def test_prompts_are_saved_and_every_backend_honours_them(tmp_path):
    pytest.importorskip("onnxruntime")
    from polyhead.cli.commands import cmd_export
    from polyhead.onnx import OnnxModel

    model = _model({"topic": "query: ", "dup": "query: "})
    folder = model.save(tmp_path / "model")
    loaded = load(folder)
    assert loaded.tasks["topic"].prompt == "query: " and loaded.tasks["mood"].prompt is None
    args = argparse.Namespace(model_dir=str(folder), format="onnx", quantize=None, output=None, force=False)
    assert cmd_export(args) == 0
    onnx = OnnxModel.load(folder)
    assert onnx.tasks["topic"].prompt == "query: "
    for a, b in zip(onnx.predict(TEXTS), loaded.predict(TEXTS)):
        np.testing.assert_allclose(a["embedding"], b["embedding"], atol=1e-4)
        for task in ("topic", "mood"):
            assert a["tasks"][task]["scores"] == pytest.approx(b["tasks"][task]["scores"], abs=1e-4)
    for a, b in zip(onnx.predict_pairs(PAIRS), loaded.predict_pairs(PAIRS)):
        assert a["tasks"]["dup"]["scores"] == pytest.approx(b["tasks"]["dup"]["scores"], abs=1e-4)
    assert {t["name"]: t.get("prompt") for t in loaded.describe()["tasks"]}["topic"] == "query: "
    assert "prompt `query: `" in (folder / "README.md").read_text()  # the model card says so


def _prompt_config(tmp_path, **prompts):
    path = write_config(tmp_path, **{"epochs": 1})
    cfg = yaml.safe_load(path.read_text())
    for task in cfg["tasks"]:
        if task["name"] in prompts:
            task["prompt"] = prompts[task["name"]]
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_training_data_carries_the_prompt_and_the_trained_model_keeps_it(tmp_path):
    path = _prompt_config(tmp_path, topic="query: ", sts="query: ")
    cfg = load_config(path)
    sources, specs = build_sources(cfg)
    by_name = {s.name: s for s in sources}
    assert all(e.text.startswith("query: ") for e in by_name["topic"].splits["train"])
    assert all(e.pair[0].startswith("query: ") and e.pair[1].startswith("query: ") for e in by_name["sts"].splits["dev"])
    assert not any(e.text.startswith("query: ") for e in by_name["ner"].splits["train"])
    assert specs["topic"].prompt == "query: " and specs["ner"].prompt is None
    train(cfg, tmp_path / "out", progress=False)
    assert load(tmp_path / "out").tasks["topic"].prompt == "query: "


def test_a_token_task_takes_no_prompt_and_a_shared_dataset_needs_one_prompt(tmp_path):
    with pytest.raises(PolyheadError, match="takes no prompt"):
        TaskSpec("ner", "token", ["O", "B-X"], prompt="query: ")
    with pytest.raises(PolyheadError, match="non-empty"):
        TaskSpec("topic", "classification", ["a", "b"], prompt="")
    with pytest.raises(PolyheadError, match="takes no prompt"):
        build_sources(load_config(_prompt_config(tmp_path / "a", ner="query: ")))
    shutil.rmtree(tmp_path / "a")
    # two tasks reading one dataset with different prompts: one line naming both
    data = tmp_path / "multi.jsonl"
    data.write_text('{"text": "a b", "topic": "x", "mood": "good"}\n{"text": "c d", "topic": "y", "mood": "bad"}\n')
    cfg = {"tasks": [{"name": "topic", "kind": "classification", "prompt": "query: "},
                     {"name": "mood", "kind": "classification"}],
           "datasets": [{"name": "both", "train": str(data), "labels": {"topic": "topic", "mood": "mood"}}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(DataError, match="different prompts") as err:
        build_sources(load_config(tmp_path / "c.yaml"))
    assert "topic ('query: ')" in str(err.value) and "mood (no prompt)" in str(err.value)
