"""Pair classification: a label for two texts from the shared bi-encoder, through joint training,
the frozen-encoder fit, predict_pairs (PyTorch and ONNX), the CLI's --pairs and POST /pairs."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
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

TEXTS = [(t, topic) for topic, ts in TOPICS.items() for t in ts]
PAIRS = [{"sentence1": a, "sentence2": b, "label": "same" if ta == tb else "different"}
         for (a, ta), (b, tb) in itertools.combinations(TEXTS, 2)]


def write_config(root: Path, freeze: bool = False) -> Path:
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "pairs_train.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    (data / "pairs_dev.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PAIRS[::3]))
    (data / "topic.jsonl").write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in TEXTS * 3))
    cfg = {
        "encoder": {"model": str(tiny_encoder_dir(root)), "max_length": 32},
        "tasks": [
            {"name": "same", "kind": "pair_classification", "train": str(data / "pairs_train.jsonl"), "dev": str(data / "pairs_dev.jsonl")},
            {"name": "topic", "kind": "classification", "train": str(data / "topic.jsonl")},
        ],
        "training": {"epochs": 2, "batch_size": 8, "lr": 2e-3, "seed": 11, **TEST_TRAINING},
        "freeze": {"encoder": freeze},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pairs")
    train(load_config(write_config(root)), root / "m", progress=False)
    return root / "m"


def test_joint_training_scores_the_pair_task_and_predict_pairs_decodes_it(trained: Path) -> None:
    metrics = json.loads((trained / "training" / "metrics.json").read_text())
    assert {"accuracy", "macro_f1"} <= set(metrics["dev"]["same"]) and metrics["headline_metrics"]["same"] == "accuracy"
    model = load(trained, device="cpu")
    got = model.predict_pairs([("the team won the match", "tennis champion wins"), ("the app crashed again", "a great goal in the final")])
    assert [g["pair"] for g in got] == [["the team won the match", "tennis champion wins"], ["the app crashed again", "a great goal in the final"]]
    for g in got:
        pred = g["tasks"]["same"]
        assert set(pred["scores"]) == {"different", "same"} and pred["label"] == max(pred["scores"], key=pred["scores"].get)
        assert sum(pred["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    # the NumPy decoding every backend shares gives what the PyTorch head computes
    a = torch.from_numpy(model.encode(["the team won the match"]))
    b = torch.from_numpy(model.encode(["tennis champion wins"]))
    with torch.no_grad():
        probs = torch.softmax(model.heads["same"].pair_output(a, b), -1)[0].numpy()
    np.testing.assert_allclose([got[0]["tasks"]["same"]["scores"][lab] for lab in model.tasks["same"].labels], probs, atol=1e-5)
    assert "same" not in model.predict(["hello"])[0]["tasks"]  # a pair head does not predict one text
    with pytest.raises(PolyheadError, match="predict one text at a time"):
        model.predict_pairs([("a", "b")], tasks=["topic"])
    with pytest.raises(PolyheadError, match="pair 0 must be two texts"):
        model.predict_pairs([("a",)])


def test_onnx_export_and_the_server_give_the_same_pair_predictions(trained: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from fastapi.testclient import TestClient

    from polyhead.onnx import OnnxModel, export_onnx
    from polyhead.serving import ServeSettings, create_app

    model = load(trained, device="cpu")
    pairs = [["the team won the match", "new phone has a fast chip"], ["software update fixes bugs", "the app crashed again"]]
    want = model.predict_pairs(pairs)
    export_onnx(model, tmp_path / "onnx")
    onnx = OnnxModel.load(tmp_path / "onnx", variant="fp32", threads=1)
    for app_model in (model, onnx):
        got = app_model.predict_pairs(pairs) if app_model is onnx else want
        with TestClient(create_app(app_model, ServeSettings(model_name="pairs"))) as c:
            served = c.post("/pairs", json={"pairs": pairs}).json()["results"]
            assert c.post("/pairs", json={"pairs": pairs, "tasks": ["topic"]}).status_code == 422
        for g, s, w in zip(got, served, want, strict=True):
            assert g["tasks"]["same"]["label"] == s["tasks"]["same"]["label"] == w["tasks"]["same"]["label"]
            for lab, p in w["tasks"]["same"]["scores"].items():
                assert g["tasks"]["same"]["scores"][lab] == pytest.approx(p, abs=1e-4)
                assert s["tasks"]["same"]["scores"][lab] == pytest.approx(p, abs=1e-4)


def test_cli_predict_pairs_from_a_file(trained: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text(json.dumps({"sentence1": "the team won the match", "sentence2": "tennis champion wins"}) + "\n")
    out = subprocess.run([sys.executable, "-m", "polyhead", "predict", str(trained), "--pairs", str(jsonl), "--precision", "fp32"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    line = json.loads(out.stdout)
    assert line["pair"] == ["the team won the match", "tennis champion wins"] and "label" in line["tasks"]["same"]
    bad = tmp_path / "bad.tsv"
    bad.write_text("one text only\n")
    out = subprocess.run([sys.executable, "-m", "polyhead", "predict", str(trained), "--pairs", str(bad)], capture_output=True, text=True)
    assert out.returncode == 1 and "bad.tsv:1: expected two tab-separated texts" in out.stderr


def test_frozen_encoder_fit_converges(tmp_path: Path) -> None:
    """On a frozen encoder the pair head is multinomial logistic regression on (u, v, |u-v|, u*v),
    fit to convergence: the penalised loss's gradient at the kept weights is ~0."""
    train(load_config(write_config(tmp_path, freeze=True)), tmp_path / "m", progress=False)
    model = load(tmp_path / "m", device="cpu")
    fit = json.loads((tmp_path / "m" / "training" / "metrics.json").read_text())
    assert "same" in fit["dev"]
    from polyhead.kinds.pair_classification import pair_features

    a = model.encode([p["sentence1"] for p in PAIRS])
    b = model.encode([p["sentence2"] for p in PAIRS])
    x = torch.from_numpy(pair_features(a, b))
    y = torch.tensor([model.tasks["same"].labels.index(p["label"]) for p in PAIRS])
    layer = model.heads["same"].output_layer
    w = layer.weight.detach().clone().requires_grad_(True)
    bias = layer.bias.detach().clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(x @ w.T + bias, y).backward()
    assert bias.grad.abs().max() < 1e-3  # the bias is not penalised: its gradient vanishes at the optimum
    assert w.grad.abs().max() > 0  # (the weights' does not: the L2 penalty balances it)


def test_a_pair_row_without_its_second_text_is_a_one_line_error(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    (tmp_path / "data" / "pairs_train.jsonl").write_text(json.dumps({"sentence1": "a", "label": "same"}) + "\n")
    with pytest.raises(DataError, match=r"pairs_train.jsonl:1: missing column 'sentence2'"):
        train(load_config(path), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
