"""Every kind's head in the ONNX and OpenVINO exports gives PyTorch's predictions: the activation,
thresholds and target statistics travel beside the graph, pair heads run on its sentence embeddings."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import make_tiny_encoder

from polyhead import MultiTaskModel
from polyhead.kinds import TaskSpec, bio_labels

TEXTS = ["Anna flew from Berlin to Paris.", "ok", "The app crashed again and again, who do I call?", ""]
PAIRS = [("Anna flew to Paris.", "Bob stayed home."), ("ok", "ok"), ("", "a much longer second text " * 5)]


@pytest.fixture(scope="module")
def model() -> MultiTaskModel:
    torch.manual_seed(3)
    tasks = [
        TaskSpec("topic", "classification", ["a", "b", "c"]),
        TaskSpec("tags", "multilabel", ["x", "y", "z"], stats={"thresholds": [0.3, 0.5, 0.65]}),
        TaskSpec("urgency", "regression", stats={"mean": [3.0], "std": [1.5]}),
        TaskSpec("mood", "regression", ["valence", "arousal"], stats={"mean": [0.1, -0.2], "std": [2.0, 0.5]}),
        TaskSpec("ner", "token", bio_labels(["PER", "LOC"])),
        TaskSpec("same", "pair_classification", ["no", "yes"], hidden_dim=16),
        TaskSpec("sts", "similarity", score_range=(0.0, 5.0)),
    ]
    return MultiTaskModel(make_tiny_encoder(), tasks).eval()


def same(got: dict, want: dict, tol: float) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=tol), key
        elif isinstance(value, dict):
            same(got[key], value, tol)
        elif key == "entities":
            assert [(e["type"], e["start_char"], e["end_char"]) for e in got[key]] == [(e["type"], e["start_char"], e["end_char"]) for e in value]
        else:
            assert got[key] == value, key


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_exports_predict_every_kind_as_pytorch_does(model: MultiTaskModel, tmp_path: Path, backend: str) -> None:
    if backend == "onnx":
        pytest.importorskip("onnxruntime")
        from polyhead.onnx import OnnxModel, export_onnx

        export_onnx(model, tmp_path / "x")
        graph = OnnxModel.load(tmp_path / "x", variant="fp32", threads=1)
    else:
        pytest.importorskip("openvino")
        from polyhead.onnx.openvino import OpenVinoModel, export_openvino

        export_openvino(model, tmp_path / "x")
        graph = OpenVinoModel.load(tmp_path / "x", variant="fp32", precision="fp32", threads=1)
    for got, want in zip(graph.predict(TEXTS, embeddings=False), model.predict(TEXTS, embeddings=False), strict=True):
        same(got["tasks"], want["tasks"], 1e-4)
    for got, want in zip(graph.predict_pairs(PAIRS), model.predict_pairs(PAIRS), strict=True):
        assert got["pair"] == want["pair"]
        same(got["tasks"], want["tasks"], 1e-4)
    assert graph.tasks["tags"].stats["thresholds"] == [0.3, 0.5, 0.65]


def test_ray_data_columns_for_every_per_text_kind(model: MultiTaskModel, tmp_path: Path) -> None:
    """The Ray Data predictor (run here in one process, as it runs in each actor) lays each kind's
    prediction out as typed columns: <task>_labels/_scores, <task>_score, <task>_scores, ..."""
    pa = pytest.importorskip("pyarrow")
    from polyhead.integrations.ray import PolyheadPredictor

    model.save(tmp_path / "m")
    predictor = PolyheadPredictor(str(tmp_path / "m"), embeddings=False, precision="fp32")
    table = predictor(pa.table({"text": TEXTS}))
    assert {"tags_labels", "tags_scores", "urgency_score", "mood_scores", "topic_label", "ner_entities"} <= set(table.column_names)
    assert not any(name.startswith(("same_", "sts_")) for name in table.column_names)  # pair heads need pairs
    want = model.predict(TEXTS, embeddings=False)
    assert table.column("tags_labels").to_pylist() == [w["tasks"]["tags"]["labels"] for w in want]
    assert table.column("urgency_score").to_pylist() == pytest.approx([w["tasks"]["urgency"]["score"] for w in want], abs=1e-4)
    got = table.column("mood_scores").to_pylist()
    assert [sorted(g) for g in got] == [["arousal", "valence"]] * len(TEXTS)
    assert [g["valence"] for g in got] == pytest.approx([w["tasks"]["mood"]["scores"]["valence"] for w in want], abs=1e-4)
