"""The OpenVINO backend: export (fp32 IR + NNCF int8), parity with PyTorch, errors, the CLI.

Tolerances as for ONNX: the fp32 IR at precision fp32 within 1e-4 of PyTorch with the same
labels, tags and entities; int8 embeddings cosine >= 0.99 to fp32 and the same labels.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")
pytest.importorskip("onnx")

from polyhead import MultiTaskModel, PolyheadError, load  # noqa: E402
from polyhead.cli.commands import cmd_export  # noqa: E402
from polyhead.modeling.backend import InferenceModel  # noqa: E402
from polyhead.kinds.base import softmax  # noqa: E402
from polyhead.onnx.openvino import (  # noqa: E402
    CALIBRATION_SAMPLE,
    MANIFEST,
    OpenVinoModel,
    export_openvino_folder,
    read_calibration,
)

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


def export_args(model_dir: Path, **kw) -> argparse.Namespace:
    base = dict(model_dir=str(model_dir), format="openvino", quantize=None, calibration=None, output=None, force=False)
    return argparse.Namespace(**(base | kw))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A copy of the tiny model folder, exported with `polyhead export --format openvino --quantize int8`."""
    folder = tmp_path_factory.mktemp("ov") / "model"
    shutil.copytree(tiny_model_dir, folder)
    assert cmd_export(export_args(folder, quantize="int8")) == 0
    return folder


@pytest.fixture(scope="module")
def torch_model(exported: Path) -> MultiTaskModel:
    return load(exported, device="cpu")


@pytest.fixture(scope="module")
def ov_fp32(exported: Path) -> OpenVinoModel:
    return OpenVinoModel.load(exported, variant="fp32", precision="fp32", threads=1)


def test_folder_and_manifest(exported: Path, tmp_path: Path) -> None:
    folder = exported / "openvino"
    names = {p.name for p in folder.iterdir()}
    assert {"model.xml", "model.bin", "model_int8.xml", "model_int8.bin", "tokenizer", MANIFEST} <= names
    assert not any(n.endswith(".onnx") for n in names)  # the intermediate ONNX graph is not kept
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["files"] == {"fp32": "model.xml", "int8": "model_int8.xml"} and manifest["default"] == "int8"
    quant = manifest["quantization"]
    assert quant["calibration"]["texts"] == 256 and "shipped sample" in quant["calibration"]["source"]
    assert quant["heads_kept_fp32"] >= 2  # the topic and ner heads' layers
    assert 0.9 < quant["probe_min_cosine_vs_fp32"] <= 1.0
    assert manifest["tasks"] == {"topic": "logits.topic", "ner": "logits.ner", "sts": None}
    # Self-contained: the folder alone, moved away from the model, loads and runs.
    alone = tmp_path / "alone"
    shutil.copytree(folder, alone)
    model = OpenVinoModel.load(alone)
    assert model.variant == "int8" and model.encode(["hello"]).shape == (1, 32)


def test_fp32_matches_pytorch(torch_model: MultiTaskModel, ov_fp32: OpenVinoModel) -> None:
    for bs in (1, 3, 7):  # different paddings through the dynamic axes
        np.testing.assert_allclose(ov_fp32.encode(TEXTS, batch_size=bs), torch_model.encode(TEXTS, batch_size=bs), atol=TOL)
    raw = ov_fp32.encode(TEXTS, normalize=False)
    np.testing.assert_allclose(raw, torch_model.encode(TEXTS, normalize=False), atol=TOL)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    a, b = TEXTS[:3], TEXTS[3:6]
    np.testing.assert_allclose(ov_fp32.similarity(a, b), torch_model.similarity(a, b), atol=TOL)
    want = torch_model.predict(TEXTS, batch_size=3)
    pairs = [(e, g) for bs in (1, 3, 7) for e, g in zip(want, ov_fp32.predict(TEXTS, batch_size=bs), strict=True)]
    for e, g in pairs:
        np.testing.assert_allclose(g["embedding"], e["embedding"], atol=TOL)
        assert g["tasks"]["topic"]["label"] == e["tasks"]["topic"]["label"]
        for label, p in e["tasks"]["topic"]["scores"].items():
            assert abs(g["tasks"]["topic"]["scores"][label] - p) < TOL
        ner_e, ner_g = e["tasks"]["ner"], g["tasks"]["ner"]
        assert ner_g["tags"] == ner_e["tags"] and ner_g["words"] == ner_e["words"]
        assert [(x["type"], x["start_char"], x["end_char"]) for x in ner_g["entities"]] == [
            (x["type"], x["start_char"], x["end_char"]) for x in ner_e["entities"]
        ]


def test_contract_and_facts(torch_model: MultiTaskModel, ov_fp32: OpenVinoModel) -> None:
    assert isinstance(ov_fp32, InferenceModel)
    info = ov_fp32.info()
    assert info["backend"] == "openvino" and info["variant"] == "fp32" and info["quantized"] is False
    assert info["inference_precision"] == "fp32" and info["threads"] == 1
    got, expected = ov_fp32.describe(), torch_model.describe()
    same = ("dimensions", "max_length", "pooling", "normalize", "encoder", "tasks")
    assert {k: got[k] for k in same} == {k: expected[k] for k in same}
    assert got["backend"] == "openvino" and got["precision"] == "fp32" and got["device"] == "cpu"


def test_int8_is_close_to_fp32_with_the_same_labels(exported: Path, ov_fp32: OpenVinoModel) -> None:
    int8 = OpenVinoModel.load(exported, precision="fp32")  # the export's default: int8
    assert int8.variant == "int8" and int8.info()["quantized"] is True
    q, f = int8.encode(TEXTS), ov_fp32.encode(TEXTS)
    assert ((q * f).sum(1) / (np.linalg.norm(q, axis=1) * np.linalg.norm(f, axis=1))).min() >= 0.99
    got, want = int8.predict(TEXTS), ov_fp32.predict(TEXTS)
    # The tiny model's top-two topic probabilities differ by 0.42 or more on these texts while
    # int8 moves a probability by under 0.001, so a changed label would be a real fault, not a
    # near tie. (The random heads give one label to every text, so the probabilities are
    # checked too: a head quantised into noise could still keep that label.)
    assert [g["tasks"]["topic"]["label"] for g in got] == [w["tasks"]["topic"]["label"] for w in want]
    for g, w in zip(got, want, strict=True):
        for label, p in w["tasks"]["topic"]["scores"].items():
            assert abs(g["tasks"]["topic"]["scores"][label] - p) < 0.02
    # Token tags: the random ner head has near ties (top-two margins down to ~0.001, int8 moves
    # a token probability by up to ~0.002), so tags are compared only where fp32's margin is
    # over 0.02, ten times that drift.
    for _, feed, _ in ov_fp32.batches(TEXTS, 8):
        pf, pq = (softmax(m._run(["logits.ner"], feed)[0]) for m in (ov_fp32, int8))
        real = feed["attention_mask"].astype(bool)
        assert np.abs(pf - pq)[real].max() < 0.02
        top2 = np.sort(pf, axis=-1)[..., -2:]
        clear = real & (top2[..., 1] - top2[..., 0] > 0.02)
        assert clear.sum() > real.sum() // 2  # most tokens are compared
        np.testing.assert_array_equal(pq.argmax(-1)[clear], pf.argmax(-1)[clear])
    assert (exported / "openvino" / "model_int8.bin").stat().st_size < (exported / "openvino" / "model.bin").stat().st_size


def test_auto_precision_reports_what_the_plugin_chose(exported: Path) -> None:
    model = OpenVinoModel.load(exported, variant="fp32")  # precision auto
    assert model.inference_precision in ("fp32", "bf16", "fp16")
    assert model.precision == model.inference_precision  # the fp32 IR runs at the plugin's precision


def test_load_errors_are_one_line(exported: Path, tmp_path: Path) -> None:
    with pytest.raises(PolyheadError, match=r"no OpenVINO export in .*polyhead export .* --format openvino") as err:
        OpenVinoModel.load(tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(PolyheadError, match="has no fp16 model") as err:
        OpenVinoModel.load(exported, variant="fp16")
    assert "\n" not in str(err.value)
    with pytest.raises(PolyheadError, match="unknown precision 'int4'") as err:
        OpenVinoModel.load(exported, precision="int4")
    assert "\n" not in str(err.value)


def test_export_refuses_what_would_lose_work(exported: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in exported.iterdir())
    for force in (False, True):
        with pytest.raises(PolyheadError, match="is the model being exported"):
            cmd_export(export_args(exported, output=str(exported), force=force))
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(PolyheadError, match="OpenVINO export"):
        cmd_export(export_args(exported, output=str(other)))
    assert (other / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in exported.iterdir()) == before


def test_calibration_files(tmp_path: Path, exported: Path) -> None:
    texts, source = read_calibration(None)
    assert len(texts) == 256 and source.startswith("the shipped sample") and CALIBRATION_SAMPLE.is_file()
    rows = tmp_path / "cal.jsonl"
    rows.write_text(
        "\n".join(json.dumps(r) for r in (
            {"text": "one"}, {"sentence1": "two", "sentence2": "three"}, {"tokens": ["four", "five"]},
            *({"text": f"t{i}"} for i in range(5)),
        )) + "\n\n"
    )
    texts, source = read_calibration(rows)
    assert texts[:5] == ["one", "two", "three", "four five", "t0"] and len(texts) == 9 and source == str(rows)
    few = tmp_path / "few.txt"
    few.write_text("a\nb\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\nnot json\n')
    cases = [(tmp_path / "missing.txt", "does not exist"), (few, "2 calibration text"), (bad, r"bad.jsonl:2: not JSON")]
    for path, message in cases:
        with pytest.raises(PolyheadError, match=message):
            cmd_export(export_args(exported, quantize="int8", calibration=str(path), output=str(tmp_path / "o")))
    with pytest.raises(PolyheadError, match="--calibration goes with --quantize int8"):
        export_openvino_folder(exported, tmp_path / "o", calibration=rows)
    with pytest.raises(PolyheadError, match="--calibration goes with --format openvino"):
        cmd_export(export_args(exported, format="onnx", calibration=str(rows), output=str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()


def test_a_users_calibration_file_is_used(tmp_path: Path, tiny_model_dir: Path) -> None:
    texts = tmp_path / "mine.txt"
    texts.write_text("\n".join(f"Support ticket {i}: my parcel to Leeds is late again." for i in range(12)) + "\n")
    out = export_openvino_folder(tiny_model_dir, tmp_path / "ov", quantize="int8", calibration=texts)
    quant = json.loads((out / MANIFEST).read_text())["quantization"]
    assert quant["calibration"] == {"source": str(texts), "texts": 12, "batches": 2, "batch_size": 8}


def test_missing_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch, exported: Path, tmp_path: Path) -> None:
    from polyhead.onnx import OnnxModel

    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now raises ImportError
    for call in (lambda: OpenVinoModel.load(exported), lambda: cmd_export(export_args(exported, output=str(tmp_path / "x")))):
        with pytest.raises(PolyheadError, match=r"pip install 'polyhead\[openvino\]'") as err:
            call()
        assert "\n" not in str(err.value)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(PolyheadError, match=r"pip install 'polyhead\[onnx\]'") as err:
        OnnxModel.load(exported)
    assert "\n" not in str(err.value)


def test_cli_predict_and_encode_with_the_openvino_backend(
    exported: Path, torch_model: MultiTaskModel, capsys: pytest.CaptureFixture
) -> None:
    from polyhead import cli

    texts = ["Anna Schmidt flew from Berlin to Paris.", "Bob lives in London."]
    args = ["--backend", "openvino", "--variant", "fp32", "--precision", "fp32", "--threads", "1"]
    assert cli.main(["predict", str(exported), *texts, *args]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    want = torch_model.predict(texts)
    assert [r["tasks"]["topic"]["label"] for r in rows] == [w["tasks"]["topic"]["label"] for w in want]
    assert [r["tasks"]["ner"]["tags"] for r in rows] == [w["tasks"]["ner"]["tags"] for w in want]
    assert "backend openvino: the fp32 model on cpu" in err
    assert cli.main(["encode", "-m", str(exported), *texts, *args, "--no-normalize"]) == 0
    got = np.array([json.loads(line)["embedding"] for line in capsys.readouterr().out.splitlines()])
    np.testing.assert_allclose(got, torch_model.encode(texts, normalize=False), atol=1e-4)
    assert cli.main(["encode", "-m", str(exported), "x", "--backend", "openvino", "--pooling", "cls"]) == 1
    assert "--pooling cannot change an exported model" in capsys.readouterr().err


def test_the_shape_cache_is_bounded_and_results_do_not_depend_on_it(exported: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      ov_fp32: OpenVinoModel) -> None:
    """The CPU plugin's per-shape kernel cache is what grew a server's memory: polyhead passes
    SHAPE_CACHE (64) unless told otherwise, and None leaves OpenVINO's own default."""
    import openvino as ov

    from polyhead.onnx import openvino as ovm

    seen: list[dict] = []
    real = ov.Core.compile_model

    def spy(self, model, device=None, config=None):
        seen.append(dict(config or {}))
        return real(self, model, device, config)

    monkeypatch.setattr(ov.Core, "compile_model", spy)
    default = OpenVinoModel.load(exported, variant="fp32", precision="fp32")
    kept = OpenVinoModel.load(exported, variant="fp32", precision="fp32", shape_cache=None)
    assert seen[0]["CPU_RUNTIME_CACHE_CAPACITY"] == ovm.SHAPE_CACHE == 64
    assert "CPU_RUNTIME_CACHE_CAPACITY" not in seen[1]
    texts = ["a short one", "a somewhat longer text about the weather in Paris", "x"]
    for model in (default, kept):
        np.testing.assert_allclose(model.encode(texts), ov_fp32.encode(texts), atol=1e-5)
