"""ONNX export and the ONNX Runtime loader: parity with PyTorch on the tiny model.

Tolerances: fp32 ONNX embeddings and head probabilities within 1e-4 of PyTorch with the same
labels and entities; int8 embeddings with cosine > 0.99 to fp32 (weights are rounded to 8 bits).
"""
from __future__ import annotations

import argparse
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from conftest import make_tiny_encoder  # noqa: E402

from polyhead import MultiTaskModel, PolyheadError, load  # noqa: E402
from polyhead.modeling.backend import InferenceModel  # noqa: E402
from polyhead.cli.commands import cmd_export as export_cli
from polyhead.onnx import MANIFEST, OnnxModel, export_onnx  # noqa: E402

TEXTS = [
    "Anna Schmidt flew from Berlin to Paris on Monday.",
    "ok",
    "How do I get a refund for an order that never arrived, and who do I talk to about it at the company?",
    "",
    "Bob lives in London.",
    "A much longer text " * 12,
    "Ünïcödé text with émojis 🙂 and punctuation!!",
]
TOL = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A copy of the tiny model folder, exported with `polyhead export --quantize int8`."""
    folder = tmp_path_factory.mktemp("export") / "model"
    shutil.copytree(tiny_model_dir, folder)
    args = argparse.Namespace(model_dir=str(folder), format="onnx", quantize="int8", output=None, force=False)
    assert export_cli(args) == 0
    return folder


@pytest.fixture(scope="module")
def torch_model(exported: Path) -> MultiTaskModel:
    return load(exported, device="cpu")


@pytest.fixture(scope="module")
def onnx_fp32(exported: Path) -> OnnxModel:
    return OnnxModel.load(exported, variant="fp32", threads=1)


def test_manifest_and_folder_are_self_contained(exported: Path, tmp_path: Path) -> None:
    onnx_dir = exported / "onnx"
    manifest = json.loads((onnx_dir / MANIFEST).read_text())
    assert manifest["opset"] >= 17
    assert manifest["quantized"] is True and manifest["default"] == "int8"
    assert set(manifest["files"]) == {"fp32", "int8"}
    assert [i["name"] for i in manifest["inputs"]] == ["input_ids", "attention_mask", "token_type_ids"]
    outputs = {o["name"]: o for o in manifest["outputs"]}
    assert outputs["logits.ner"]["shape"] == ["batch", "sequence", 5]
    assert outputs["logits.topic"]["labels"] == ["sports", "politics", "tech"]
    assert manifest["tasks"] == {"topic": "logits.topic", "ner": "logits.ner", "sts": None}
    assert manifest["polyhead"] == json.loads((exported / "polyhead.json").read_text()) | {"saved_at": manifest["polyhead"]["saved_at"]}
    assert manifest["ort_fusion"]["applied"] is False  # off by default: slower on the measured CPU
    # The export folder alone (moved away from the model) still loads and runs.
    alone = tmp_path / "alone"
    shutil.copytree(onnx_dir, alone)
    model = OnnxModel.load(alone)
    assert model.variant == "int8"
    assert model.encode(["hello"]).shape == (1, 32)


def test_predict_matches_pytorch(torch_model: MultiTaskModel, onnx_fp32: OnnxModel) -> None:
    expected = torch_model.predict(TEXTS, batch_size=3)
    got = onnx_fp32.predict(TEXTS, batch_size=3)
    assert len(got) == len(TEXTS)
    for e, g in zip(expected, got):
        assert g["text"] == e["text"]
        np.testing.assert_allclose(g["embedding"], e["embedding"], atol=TOL)
        assert set(g["tasks"]) == {"topic", "ner"}  # similarity heads need pairs, as in PyTorch
        topic_e, topic_g = e["tasks"]["topic"], g["tasks"]["topic"]
        assert topic_g["label"] == topic_e["label"]
        for label, p in topic_e["scores"].items():
            assert abs(topic_g["scores"][label] - p) < TOL
        ner_e, ner_g = e["tasks"]["ner"], g["tasks"]["ner"]
        assert ner_g["tags"] == ner_e["tags"] and ner_g["words"] == ner_e["words"]
        assert [(x["type"], x["start_char"], x["end_char"]) for x in ner_g["entities"]] == [
            (x["type"], x["start_char"], x["end_char"]) for x in ner_e["entities"]
        ]
        for xe, xg in zip(ner_e["entities"], ner_g["entities"]):
            assert abs(xe["score"] - xg["score"]) < TOL


def test_predict_options(torch_model: MultiTaskModel, onnx_fp32: OnnxModel) -> None:
    got = onnx_fp32.predict(TEXTS[:2], tasks=["topic"], embeddings=False)
    assert all(set(r) == {"text", "tasks"} and set(r["tasks"]) == {"topic"} for r in got)
    with pytest.raises(PolyheadError, match="unknown task"):
        onnx_fp32.predict(["x"], tasks=["nope"])
    assert onnx_fp32.predict([]) == []


def test_encode_and_similarity_match_pytorch(torch_model: MultiTaskModel, onnx_fp32: OnnxModel) -> None:
    for bs in (1, 4, 32):  # batch size 1 and uneven last batches exercise the dynamic axes
        np.testing.assert_allclose(onnx_fp32.encode(TEXTS, batch_size=bs), torch_model.encode(TEXTS, batch_size=bs), atol=TOL)
    raw_t = torch_model.encode(TEXTS, normalize=False)
    raw_o = onnx_fp32.encode(TEXTS, normalize=False)
    np.testing.assert_allclose(raw_o, raw_t, atol=TOL)
    assert not np.allclose(np.linalg.norm(raw_o, axis=1), 1.0)
    single = onnx_fp32.encode("Bob lives in London.")
    assert single.shape == (32,) and single.dtype == np.float32
    a, b = TEXTS[:3], TEXTS[3:6]
    np.testing.assert_allclose(onnx_fp32.similarity(a, b), torch_model.similarity(a, b), atol=TOL)


def test_int8_is_close_to_fp32(exported: Path, onnx_fp32: OnnxModel) -> None:
    int8 = OnnxModel.load(exported / "onnx")  # the export's default is int8
    assert int8.info()["quantized"] is True
    q, f = int8.encode(TEXTS), onnx_fp32.encode(TEXTS)
    cos = (q * f).sum(1) / (np.linalg.norm(q, axis=1) * np.linalg.norm(f, axis=1))
    assert cos.min() > 0.99
    assert (exported / "onnx" / "model_int8.onnx").stat().st_size < (exported / "onnx" / "model.onnx").stat().st_size


def test_batches_are_padded_to_their_longest_text_not_max_length(onnx_fp32: OnnxModel) -> None:
    widths = []
    real_run = onnx_fp32.session.run

    class Spy:
        def run(self, names, feed):
            widths.append(feed["input_ids"].shape)
            return real_run(names, feed)

        def __getattr__(self, name):
            return getattr(onnx_fp32.session, name)

    texts = ["one two three four five six seven", "a", "b c", "d e f g h"]
    lengths = [len(onnx_fp32.tokenizer(t)["input_ids"]) for t in texts]
    onnx_fp32.session, saved = Spy(), onnx_fp32.session
    try:
        out = onnx_fp32.encode(texts, batch_size=2)
    finally:
        onnx_fp32.session = saved
    srt = sorted(lengths, reverse=True)
    assert widths == [(2, srt[0]), (2, srt[2])]
    assert max(w for _, w in widths) < onnx_fp32.max_length
    # Input order is restored after length sorting.
    np.testing.assert_allclose(out, np.stack([onnx_fp32.encode(t) for t in texts]), atol=1e-5)


def test_meets_the_inference_contract_like_pytorch(torch_model: MultiTaskModel, onnx_fp32: OnnxModel) -> None:
    info = onnx_fp32.info()
    assert info["backend"] == "onnxruntime" and info["variant"] == "fp32" and info["quantized"] is False
    assert [t["name"] for t in info["tasks"]] == ["topic", "ner", "sts"]
    assert isinstance(onnx_fp32, InferenceModel) and isinstance(torch_model, InferenceModel)
    assert onnx_fp32.backend == "onnxruntime" and torch_model.backend == "torch"
    assert onnx_fp32.tokenizer.vocab == torch_model.tokenizer.vocab
    assert set(onnx_fp32.tasks) == {"topic", "ner", "sts"}
    # describe() gives /info the same facts whichever backend runs the model.
    got, expected = onnx_fp32.describe(), torch_model.describe()
    assert set(got) == set(expected)
    same = ("dimensions", "max_length", "pooling", "normalize", "encoder", "tasks")
    assert {k: got[k] for k in same} == {k: expected[k] for k in same}
    assert got["dimensions"] == 32 and got["device"] == "cpu"
    assert got["backend"] == "onnxruntime" and got["precision"] == "fp32"
    # No encoder-shaped view of itself: the encoder's choices are the model's own attributes.
    assert not hasattr(onnx_fp32, "encoder")
    assert (onnx_fp32.dim, onnx_fp32.normalize, onnx_fp32.device.type) == (32, True, "cpu")


def test_bad_texts_and_batch_sizes_are_one_line_errors(onnx_fp32: OnnxModel) -> None:
    with pytest.raises(PolyheadError, match="text 1 is a int, not a string"):
        onnx_fp32.encode(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(PolyheadError, match="batch_size must be at least 1"):
        onnx_fp32.predict(["x"], batch_size=0)
    with pytest.raises(PolyheadError, match="2 first texts but 1 second"):
        onnx_fp32.similarity(["a", "b"], ["c"])
    assert onnx_fp32.encode([]).shape == (0, 32)


def test_encoder_only_export_via_cli(tmp_path: Path) -> None:
    from polyhead import cli

    enc = make_tiny_encoder(pooling="cls", normalize=False)
    folder = tmp_path / "enc"
    enc.save_backbone(folder)
    out = tmp_path / "enc-onnx"
    assert cli.main(["export", str(folder), "--format", "onnx", "-o", str(out)]) == 0
    model = OnnxModel.load(out)
    assert model.tasks == {} and model.variant == "fp32"
    # An encoder folder carries its choices as a sentence-transformers config (CLS pooling, not
    # normalised, 64 tokens): the export keeps them.
    from polyhead import Encoder

    ref = Encoder(folder, device="cpu")
    assert (model.pooling, model.normalize, model.max_length) == ("cls", False, 64)
    np.testing.assert_allclose(model.encode(TEXTS[:3]), ref.encode(TEXTS[:3]), atol=TOL)
    assert model.predict(["hi"])[0]["tasks"] == {}


def _attention_fuses() -> bool:
    from polyhead.onnx.export import releases_too_old_for_attention_fusion

    return not releases_too_old_for_attention_fusion()


def test_attention_fusion_note_names_the_release_that_is_too_old(monkeypatch) -> None:
    import importlib.metadata

    from polyhead.onnx import export

    monkeypatch.setattr(importlib.metadata, "version", lambda name: {"onnxruntime": "1.18.1", "transformers": "5.20.0"}[name])
    note = export.attention_fusion_note(0, 6)
    assert note.startswith("attention fused in 0 of 6 layers")
    assert "installed: onnxruntime 1.18.1" in note and "transformers 5.20.0" not in note
    monkeypatch.setattr(importlib.metadata, "version", lambda name: {"onnxruntime": "1.32.0", "transformers": "5.25.0"}[name])
    assert "not one it knows" in export.attention_fusion_note(1, 6)
    assert export.release("1.31.0rc1") == (1, 31, 0) and export.release("5.9") < export.release("5.13")


def test_export_of_an_encoder_object_and_errors(tmp_path: Path) -> None:
    enc = make_tiny_encoder(pooling="max", normalize=False)
    out = export_onnx(enc, tmp_path / "x")
    model = OnnxModel.load(out)
    np.testing.assert_allclose(model.encode(TEXTS), enc.encode(TEXTS), atol=TOL)
    # Exporting again replaces the folder; ORT's offline fusions (optimize=True) keep parity.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_onnx(enc, out, optimize=True)
    fusion = json.loads((out / MANIFEST).read_text())["ort_fusion"]
    noted = [str(w.message) for w in caught if "attention fused in" in str(w.message)]
    assert noted == ([] if _attention_fuses() else [f"optimize=True: {fusion['attention']}"])
    assert fusion["applied"] is True and fusion["ops"]["SkipLayerNormalization"] == 4
    if _attention_fuses():
        assert fusion["ops"]["Attention"] == 2 and "attention" not in fusion
    else:  # older releases fuse the rest; the manifest says which release leaves attention unfused
        assert "Attention" not in fusion["ops"]
        assert fusion["attention"].startswith("attention fused in 0 of 2 layers") and "installed: " in fusion["attention"]
    np.testing.assert_allclose(OnnxModel.load(out).encode(TEXTS), enc.encode(TEXTS), atol=TOL)
    with pytest.raises(PolyheadError, match="no ONNX export"):
        OnnxModel.load(tmp_path)
    with pytest.raises(PolyheadError, match="no int8 model"):
        OnnxModel.load(out, variant="int8")
    with pytest.raises(PolyheadError, match="unknown quantisation"):
        export_onnx(enc, tmp_path / "y", quantize="int4")
