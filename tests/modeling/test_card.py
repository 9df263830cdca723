"""The model card: README.md with Hugging Face YAML front matter in every model folder, written on
save, refreshed by training and add-head, never written over a README of the user's, ignored by load."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from polyhead import MultiTaskModel, TaskSpec, load
from polyhead.modeling.card import MARKER, card_path, render_card, write_card
from polyhead.modeling.model import add_heads_to_folder
from polyhead.training.config import load_config
from polyhead.training.loop import train

from conftest import make_tiny_encoder
from train_helpers import write_config

TASKS = [
    TaskSpec("topic", "classification", ["sports", "politics", "tech"]),
    TaskSpec("ner", "token", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]),
    TaskSpec("sts", "similarity", score_range=(0, 5)),
]


def front_matter(text: str) -> dict:
    """The YAML header of a card, parsed (it must open the file, between two '---' lines)."""
    assert text.startswith("---\n"), text[:200]
    header, sep, _ = text[4:].partition("\n---\n")
    assert sep, "the front matter is not closed"
    data = yaml.safe_load(header)
    assert isinstance(data, dict)
    return data


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def model() -> MultiTaskModel:
    return MultiTaskModel(make_tiny_encoder(), TASKS)


def test_save_writes_a_card_with_a_parseable_header_naming_every_task_and_label(model, tmp_path):
    folder = model.save(tmp_path / "m")
    text = (folder / "README.md").read_text(encoding="utf-8")
    meta = front_matter(text)
    assert meta["library_name"] == "polyhead"
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"  # the bundled default's Hub id
    assert meta["pipeline_tag"] == "sentence-similarity"
    assert {"polyhead", "multi-task", "text-classification", "token-classification"} <= set(meta["tags"])
    assert "license" not in meta and "model-index" not in meta  # no license known, no scores yet
    assert MARKER in text
    for spec in TASKS:
        assert f"| {spec.name} | {spec.kind} |" in text
    assert "sports, politics, tech" in text and "entity types LOC, PER" in text and "0–5" in text
    assert 'polyhead.load("m")' in text and "polyhead serve m" in text and "polyhead export m" in text
    assert "Not trained by `polyhead train`" in text
    assert card_path(folder) == folder / "README.md"
    # a pure function of the folder's files: rendering again gives the same text
    assert render_card(folder) == text


def test_load_ignores_the_card_and_a_readme_of_any_content(model, tmp_path):
    folder = model.save(tmp_path / "m")
    assert list(load(folder, device="cpu").tasks) == ["topic", "ner", "sts"]
    (folder / "README.md").write_bytes(b"\xff\xfe not utf-8 at all {{{ ---")
    assert list(load(folder, device="cpu").tasks) == ["topic", "ner", "sts"]


def test_a_readme_of_the_users_own_is_never_overwritten(model, tmp_path, capsys):
    folder = tmp_path / "m"
    folder.mkdir()
    mine = "# My model\n\nNotes I wrote by hand.\n"
    (folder / "README.md").write_text(mine, encoding="utf-8")
    model.save(folder)
    model.save(folder)  # a second save (as training does at every better dev score) says nothing new
    assert (folder / "README.md").read_text(encoding="utf-8") == mine
    card = (folder / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert MARKER in card and front_matter(card)["library_name"] == "polyhead"
    assert card_path(folder) == folder / "MODEL_CARD.md"
    err = capsys.readouterr().err
    assert err.count("is not a polyhead model card: left it as it is") == 1, err
    assert list(load(folder, device="cpu").tasks) == ["topic", "ner", "sts"]


def test_own_readme_and_own_model_card_md_are_both_left_alone(model, tmp_path, capsys):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "README.md").write_text("mine\n", encoding="utf-8")
    (folder / "MODEL_CARD.md").write_text("also mine\n", encoding="utf-8")
    model.save(folder)
    assert (folder / "README.md").read_text(encoding="utf-8") == "mine\n"
    assert (folder / "MODEL_CARD.md").read_text(encoding="utf-8") == "also mine\n"
    assert card_path(folder) is None
    assert "no model card written" in capsys.readouterr().err


def test_polyheads_own_card_is_rewritten_and_deleting_the_marker_makes_it_the_users(model, tmp_path):
    folder = model.save(tmp_path / "m")
    model.add_task(TaskSpec("mood", "classification", ["happy", "sad"]))
    model.save(folder)
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert "| mood | classification | happy, sad |" in text
    edited = text.replace(MARKER + "\n", "") + "\nMy own paragraph.\n"
    (folder / "README.md").write_text(edited, encoding="utf-8")
    model.save(folder)
    assert (folder / "README.md").read_text(encoding="utf-8") == edited
    assert (folder / "MODEL_CARD.md").is_file()


def test_a_local_encoder_is_not_named_as_base_model(tmp_path):
    enc_dir = tmp_path / "my-encoder"
    make_tiny_encoder().save_backbone(enc_dir)
    from polyhead import Encoder

    folder = MultiTaskModel(Encoder(enc_dir, max_length=64), TASKS[:1]).save(tmp_path / "m")
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert "base_model" not in front_matter(text)
    assert "a local encoder folder (`my-encoder`)" in text and str(tmp_path) not in text


def test_trained_folder_card_holds_the_dev_scores_data_files_and_settings(tmp_path):
    path = write_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["tasks"][0]["test"] = raw["tasks"][0]["dev"]  # topic is also scored on a test file
    path.write_text(yaml.safe_dump(raw))
    cfg = load_config(path, ["training.epochs=1"])
    out = tmp_path / "out"
    train(cfg, out, progress=False)
    metrics = json.loads((out / "training" / "metrics.json").read_text())
    text = (out / "README.md").read_text(encoding="utf-8")
    meta = front_matter(text)
    assert "base_model" not in meta  # the tiny encoder is a local folder
    results = {r["task"]["name"]: r for r in meta["model-index"][0]["results"] if r["dataset"]["split"] == "dev"}
    headline = {"topic": "accuracy", "ner": "entity_f1", "sts": "spearman"}
    assert set(results) == set(headline)
    for task, metric in headline.items():
        got = results[task]["metrics"][0]
        assert got["type"] == metric and got["value"] == pytest.approx(metrics["dev"][task][metric], abs=5e-5)
        test = f"{metrics['test'][task][metric]:.4f}" if task == "topic" else "–"
        assert f"| {task} | **{metric}** | {metrics['dev'][task][metric]:.4f} | {test} |" in text
    assert results["topic"]["dataset"]["name"] == "topic_dev.jsonl"
    tested = [r for r in meta["model-index"][0]["results"] if r["dataset"]["split"] == "test"]
    assert [r["task"]["name"] for r in tested] == ["topic"]
    assert tested[0]["metrics"][0]["value"] == pytest.approx(metrics["test"]["topic"]["accuracy"], abs=5e-5)
    assert set(meta["metrics"]) == set(headline.values())
    assert "| topic | topic_train.jsonl | topic_dev.jsonl | topic_dev.jsonl |" in text
    assert "| ner | ner_train.conll | ner_dev.conll | – |" in text
    assert str(tmp_path) not in text  # file names only, never local paths
    assert "1 epoch(s), batch size 4, learning rate 0.001" in text
    assert "frozen: nothing (the encoder was fine-tuned with the heads)" in text
    assert render_card(out) == text


def test_frozen_encoder_run_card_names_the_head_solver(tmp_path):
    cfg = load_config(write_config(tmp_path), ["freeze.encoder=true"])
    out = tmp_path / "out"
    train(cfg, out, progress=False)
    text = (out / "README.md").read_text(encoding="utf-8")
    assert "frozen: the whole encoder" in text
    assert "heads fit on cached encoder features (head_solver auto: " in text and "topic lbfgs" in text
    dev = json.loads((out / "training" / "metrics.json").read_text())["dev"]
    assert f"| topic | **accuracy** | {dev['topic']['accuracy']:.4f} |" in text


def test_add_heads_refreshes_the_card_and_leaves_encoder_and_old_heads_identical(tiny_model_dir, tmp_path):
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    before = snapshot(folder)
    assert "mood" not in before["README.md"].decode()
    model = load(folder, device="cpu")
    model.add_task(TaskSpec("mood", "classification", ["happy", "sad"]))
    add_heads_to_folder(folder, model, ["mood"])
    after = snapshot(folder)
    assert sorted(n for n in before if after[n] != before[n]) == ["README.md", "polyhead.json"]
    text = after["README.md"].decode()
    assert "| mood | classification | happy, sad |" in text and MARKER in text
    front_matter(text)


def test_an_unreadable_metrics_file_still_gives_a_card(model, tmp_path):
    folder = model.save(tmp_path / "m")
    (folder / "training").mkdir()
    (folder / "training" / "metrics.json").write_text("{not json", encoding="utf-8")
    assert write_card(folder) == folder / "README.md"
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert "training/metrics.json could not be read" in text and "model-index" not in front_matter(text)
