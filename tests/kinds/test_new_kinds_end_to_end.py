"""Multi-label and regression tasks through everything a kind goes through: data files (JSON lines and
CSV), joint training with a classification task, thresholds and target statistics saved with the
model, load, predict, the model card, the frozen-encoder fit, ONNX export and serving."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from train_helpers import TEST_TRAINING, TOPICS, tiny_encoder_dir

from polyhead import load
from polyhead.errors import DataError, PolyheadError
from polyhead.training import train
from polyhead.training.config import load_config

TAGS = {  # a text's tags: its topic, plus "negative" for texts about trouble
    "the team won the match": ["sports"], "a great goal in the final": ["sports"],
    "the striker scored twice": ["sports"], "tennis champion wins": ["sports"],
    "new phone has a fast chip": ["tech"], "the laptop battery lasts long": ["tech"],
    "software update fixes bugs": ["negative", "tech"], "the app crashed again": ["negative", "tech"],
}


def _urgency(text: str) -> float:
    return 1.0 + 4.0 * ("crashed" in text or "bugs" in text) + 0.25 * len(text.split())


def write_files(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    texts = [t for ts in TOPICS.values() for t in ts]
    paths = {}
    for split, reps in (("train", 4), ("dev", 1)):
        p = root / f"tags_{split}.jsonl"
        p.write_text("".join(json.dumps({"text": t, "labels": TAGS[t]}) + "\n" for _ in range(reps) for t in texts))
        paths[f"tags_{split}"] = p
        p = root / f"urgency_{split}.csv"
        with p.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["text", "urgency"])
            w.writerows([t, _urgency(t)] for _ in range(reps) for t in texts)
        paths[f"urgency_{split}"] = p
        p = root / f"topic_{split}.jsonl"
        p.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for _ in range(reps) for lab, ts in TOPICS.items() for t in ts))
        paths[f"topic_{split}"] = p
    return paths


def write_config(root: Path, **training) -> Path:
    paths = write_files(root / "data")
    cfg = {
        "encoder": {"model": str(tiny_encoder_dir(root)), "max_length": 32},
        "tasks": [
            {"name": "tags", "kind": "multilabel", "train": str(paths["tags_train"]), "dev": str(paths["tags_dev"])},
            {"name": "urgency", "kind": "regression", "train": str(paths["urgency_train"]), "dev": str(paths["urgency_dev"]),
             "label_column": "urgency"},
            {"name": "topic", "kind": "classification", "train": str(paths["topic_train"]), "dev": str(paths["topic_dev"])},
        ],
        "training": {"epochs": 3, "batch_size": 4, "lr": 2e-3, "seed": 5, **TEST_TRAINING, **training},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("newkinds")
    train(load_config(write_config(root)), root / "m", progress=False)
    return root / "m"


def test_joint_training_scores_and_saves_thresholds_and_target_statistics(trained: Path) -> None:
    metrics = json.loads((trained / "training" / "metrics.json").read_text())
    assert {"micro_f1", "macro_f1", "exact_match", "f1_negative"} <= set(metrics["dev"]["tags"])
    assert {"pearson", "spearman", "mae", "rmse"} <= set(metrics["dev"]["urgency"])
    assert metrics["headline_metrics"] == {"tags": "micro_f1", "urgency": "pearson", "topic": "accuracy"}
    tasks = {t["name"]: t for t in json.loads((trained / "polyhead.json").read_text())["tasks"]}
    assert len(tasks["tags"]["stats"]["thresholds"]) == 3 and tasks["tags"]["labels"] == ["negative", "sports", "tech"]
    urgencies = [_urgency(t) for ts in TOPICS.values() for t in ts]
    assert tasks["urgency"]["stats"]["mean"] == [pytest.approx(np.mean(urgencies))]
    assert tasks["urgency"]["stats"]["std"] == [pytest.approx(np.std(urgencies))]
    card = (trained / "README.md").read_text()
    assert "| tags | multilabel | any of negative, sports, tech |" in card and "| urgency | regression | a number |" in card
    assert "**micro_f1**" in card and "**pearson**" in card


def test_predictions_come_back_in_the_users_form_and_survive_a_reload(trained: Path) -> None:
    model = load(trained, device="cpu")
    texts = ["the app crashed again", "the team won the match"]
    got = model.predict(texts, embeddings=False)
    for item in got:
        tags, urgency = item["tasks"]["tags"], item["tasks"]["urgency"]
        assert set(tags["scores"]) == {"negative", "sports", "tech"} and set(tags["labels"]) <= set(tags["scores"])
        thresholds = dict(zip(model.tasks["tags"].labels, model.tasks["tags"].stats["thresholds"]))
        assert tags["labels"] == [lab for lab, p in tags["scores"].items() if p >= thresholds[lab]]
        assert set(urgency) == {"score"} and 0.0 < urgency["score"] < 10.0  # the data's units, not standardised
    again = load(trained, device="cpu").predict(texts, embeddings=False)
    assert [g["tasks"] for g in got] == [a["tasks"] for a in again]


def test_the_frozen_encoder_fit_solves_ridge_and_logistic_regression(trained: Path) -> None:
    """A linear regression head fit on a frozen encoder is ridge regression on the pooled features
    (standardised targets); the multi-label head reaches the training set's labels."""
    from polyhead.training.frozen import fit_heads

    model = load(trained, device="cpu")
    texts = [t for ts in TOPICS.values() for t in ts]
    targets = [_urgency(t) for t in texts]
    fit_heads(model, {"u2": {"kind": "regression", "train": (texts, targets)},
                      "t2": {"kind": "multilabel", "train": (texts, [TAGS[t] for t in texts])}}, l2=1e-3)
    x = torch.from_numpy(model.encode(texts, normalize=False)).double()
    y = torch.tensor(targets, dtype=torch.float64)
    mean, std = y.mean(), y.std(unbiased=False)
    z = ((y - mean) / std)[:, None]
    xc, n = x - x.mean(0), x.shape[0]
    # mean squared error + 0.5 * l2 * ||w||^2: (Xc'Xc / n + 0.5 * l2 I) w = Xc'z / n
    w = torch.linalg.solve(xc.T @ xc / n + 0.5 * 1e-3 * torch.eye(x.shape[1], dtype=torch.float64), xc.T @ z / n)
    want = ((xc @ w).squeeze(1) + z.mean()) * std + mean
    got = np.array([p["tasks"]["u2"]["score"] for p in model.predict(texts, tasks=["u2"], embeddings=False)])
    np.testing.assert_allclose(got, want.numpy(), atol=2e-3 * float(std))
    assert model.predict(["the app crashed again"], tasks=["t2"])[0]["tasks"]["t2"]["labels"] == ["negative", "tech"]


def test_onnx_export_gives_the_same_predictions(trained: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from polyhead.onnx import MANIFEST, OnnxModel, export_onnx

    model = load(trained, device="cpu")
    export_onnx(model, tmp_path / "onnx")
    onnx = OnnxModel.load(tmp_path / "onnx", variant="fp32", threads=1)
    texts = ["the app crashed again", "new phone has a fast chip", "ok"]
    for got, want in zip(onnx.predict(texts, embeddings=False), model.predict(texts, embeddings=False), strict=True):
        assert got["tasks"]["tags"]["labels"] == want["tasks"]["tags"]["labels"]
        for lab, p in want["tasks"]["tags"]["scores"].items():
            assert got["tasks"]["tags"]["scores"][lab] == pytest.approx(p, abs=1e-4)
        assert got["tasks"]["urgency"]["score"] == pytest.approx(want["tasks"]["urgency"]["score"], abs=1e-3)
    manifest = json.loads((tmp_path / "onnx" / MANIFEST).read_text())
    outputs = {o["name"]: o for o in manifest["outputs"]}
    assert outputs["logits.tags"]["activation"].startswith("sigmoid") and "thresholds" in outputs["logits.tags"]
    assert "target_mean" in outputs["logits.urgency"]


def test_the_server_returns_both_kinds(trained: Path) -> None:
    from fastapi.testclient import TestClient

    from polyhead.serving import ServeSettings, create_app

    with TestClient(create_app(load(trained, device="cpu"), ServeSettings(model_name="kinds"))) as c:
        info = {t["name"]: t for t in c.get("/info").json()["tasks"]}
        assert info["tags"]["kind"] == "multilabel" and set(info["tags"]["thresholds"]) == {"negative", "sports", "tech"}
        result = c.post("/predict", json={"texts": ["the app crashed again"]}).json()["results"][0]["tasks"]
        assert isinstance(result["tags"]["labels"], list) and isinstance(result["urgency"]["score"], float)


# -- bad input: one line naming file, line and field; nothing written -----------------------------------
@pytest.mark.parametrize(
    "task, rows, message",
    [
        ("tags", [{"text": "a", "labels": "billing"}], r"tags_train.jsonl:1: labels 'billing' for multilabel task 'tags' must be a list"),
        ("tags", [{"text": "a", "labels": ["x"]}, {"text": "b", "labels": [3.5]}], r"tags_train.jsonl:2: labels \[3.5\] for task 'tags' must be strings"),
        ("topic", [{"text": "a", "label": ["x", "y"]}], r"topic_train.jsonl:1: label \['x', 'y'\] for task 'topic' must be a string or a number"),
        ("urgency", [{"text": "a", "urgency": "high"}], r"urgency_train.jsonl:1: target of task 'urgency' 'high' is not a number"),
        ("urgency", [{"text": "a", "urgency": 1}, {"text": "b", "urgency": "NaN"}], r"urgency_train.jsonl:2: target of task 'urgency' 'NaN' is not a finite number"),
    ],
)
def test_bad_labels_are_one_line_errors_and_nothing_is_written(tmp_path: Path, task: str, rows: list, message: str) -> None:
    config = yaml.safe_load(write_config(tmp_path).read_text())
    entry = next(t for t in config["tasks"] if t["name"] == task)
    bad = tmp_path / f"{task}_train.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    entry["train"], entry["dev"] = str(bad), None
    config["tasks"] = [entry]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(DataError, match=message) as err:
        train(load_config(path), tmp_path / "out", progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_csv_multilabel_cells_and_an_unknown_dev_label(tmp_path: Path) -> None:
    config = yaml.safe_load(write_config(tmp_path).read_text())
    train_csv, dev_csv = tmp_path / "t.csv", tmp_path / "d.csv"
    train_csv.write_text("text,labels\na b,x|y\nc d,[]\ne f,y\ng h,\n")
    dev_csv.write_text("text,labels\na b,x|z\n")
    config["tasks"] = [{"name": "tags", "kind": "multilabel", "train": str(train_csv), "dev": str(dev_csv)}]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    from polyhead.training.data import build_sources

    sources, specs = build_sources(load_config(path), ("train",))
    assert [e.labels.get("tags") for e in sources[0].splits["train"]] == [["x", "y"], [], ["y"]]  # the empty cell: unlabelled
    assert specs["tags"].labels == ["x", "y"]
    with pytest.raises(PolyheadError, match=r"d.csv:2: unknown label 'z' for task 'tags'"):
        build_sources(load_config(path))


def test_auto_teachers_distil_multilabel_and_regression_tasks(tmp_path: Path) -> None:
    """Distillation works for the new kinds: each teacher's outputs are cached per text and the
    student learns lambda x teacher + (1 - lambda) x gold (sigmoid targets; standardised numbers)."""
    path = write_config(tmp_path, epochs=1, distill_teachers={"tags": "auto", "urgency": "auto"}, anchor_weight=0.5)
    said: list[str] = []
    result = train(load_config(path), tmp_path / "m", progress=False, log=said.append)
    assert (tmp_path / "m" / "teachers" / "tags" / "polyhead.json").is_file()
    assert (tmp_path / "m" / "teachers" / "urgency" / "polyhead.json").is_file()
    assert any("distillation" in line for line in said)
    assert {"tags", "urgency", "topic"} <= set(result.dev)
    assert np.isfinite(result.dev["urgency"]["rmse"])
