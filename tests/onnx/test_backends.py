"""One loader for every backend, and `auto`: measured once per machine and model, then cached."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")
pytest.importorskip("nncf")

from polyhead import PolyheadError, load  # noqa: E402
from polyhead.onnx import backends  # noqa: E402
from polyhead.onnx.backends import candidates, load_backend, pick_backend  # noqa: E402
from polyhead.onnx.export import export_onnx  # noqa: E402
from polyhead.onnx.openvino import export_openvino  # noqa: E402

TEXTS = ["Anna Schmidt flew from Berlin to Paris.", "ok", "Bob lives in London.", "A longer text " * 9]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """The tiny model with both exports (fp32 only: fast), in its onnx/ and openvino/ folders."""
    folder = tmp_path_factory.mktemp("backends") / "model"
    shutil.copytree(tiny_model_dir, folder)
    model = load(folder, device="cpu")
    export_onnx(model, folder / "onnx")
    export_openvino(model, folder / "openvino")
    return folder


class Counter:
    """A stand-in for backends.measure: fixed rates, and how often it was called."""

    def __init__(self, rates: dict[str, float]) -> None:
        self.rates, self.calls = rates, 0

    def __call__(self, model_dir, names, **kw) -> dict[str, float]:
        self.calls += 1
        return {n: self.rates[n] for n in names}


def test_every_backend_loads_and_agrees(model_dir: Path) -> None:
    ref = load(model_dir, device="cpu", precision="fp32").encode(TEXTS)
    kinds = {}
    for name in ("torch", "onnx", "openvino"):
        model = load_backend(model_dir, name, precision="fp32", threads=1, announce=False)
        kinds[name] = model.backend
        np.testing.assert_allclose(model.encode(TEXTS), ref, atol=1e-4)
    assert kinds == {"torch": "torch", "onnx": "onnxruntime", "openvino": "openvino"}
    with pytest.raises(PolyheadError, match="unknown backend 'tensorrt'; choose one of torch, onnx, openvino, auto"):
        load_backend(model_dir, "tensorrt")
    for name in ("onnx", "openvino"):
        with pytest.raises(PolyheadError, match=f"--backend {name} needs MODEL_DIR"):
            load_backend(None, name)


def test_candidates_are_the_exports_that_exist_and_can_run(model_dir: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = candidates(model_dir)
    assert set(found) == {"torch", "onnx", "openvino"} and found["torch"] is None
    assert found["openvino"] == model_dir / "openvino"
    assert set(candidates(tiny_model_dir)) == {"torch"}  # no exports there
    assert set(candidates(None)) == {"torch"}
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    assert set(candidates(model_dir)) == {"torch", "onnx"}


def test_auto_measures_once_then_uses_the_cache(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "auto.json"
    fake = Counter({"torch": 10.0, "onnx": 30.0, "openvino": 20.0})
    monkeypatch.setattr(backends, "measure", fake)
    assert pick_backend(model_dir, cache_file=cache, announce=False) == "onnx"
    entry = next(iter(json.loads(cache.read_text()).values()))
    assert entry["backend"] == "onnx" and entry["texts_per_s"] == {"torch": 10.0, "onnx": 30.0, "openvino": 20.0}
    assert entry["machine"] == backends.cpu_identity()
    fake.rates["openvino"] = 99.0  # would win now, but the cached choice is used without measuring
    assert pick_backend(model_dir, cache_file=cache, announce=False) == "onnx" and fake.calls == 1
    # Another thread count is another measurement.
    assert pick_backend(model_dir, threads=1, cache_file=cache, announce=False) == "openvino" and fake.calls == 2
    # A re-export (the files change) measures again.
    manifest = model_dir / "openvino" / "polyhead-openvino.json"
    manifest.write_text(manifest.read_text() + " ")
    assert pick_backend(model_dir, cache_file=cache, announce=False) == "openvino" and fake.calls == 3
    # So does a file rewritten with the same size (only its modification time changes).
    stat = manifest.stat()
    os.utime(manifest, (stat.st_atime, stat.st_mtime + 10))
    assert pick_backend(model_dir, cache_file=cache, announce=False) == "openvino" and fake.calls == 4
    assert pick_backend(model_dir, cache_file=cache, announce=False) == "openvino" and fake.calls == 4
    # A damaged cache is measured again and replaced, not an error.
    cache.write_text("{not json")
    assert pick_backend(model_dir, cache_file=cache, announce=False) == "openvino" and fake.calls == 5
    assert json.loads(cache.read_text())


def test_auto_without_a_choice_or_on_a_gpu_does_not_measure(tiny_model_dir: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Counter({"torch": 1.0, "onnx": 2.0, "openvino": 3.0})
    monkeypatch.setattr(backends, "measure", fake)
    assert pick_backend(tiny_model_dir, cache_file=tmp_path / "c.json") == "torch"
    assert pick_backend(model_dir, device="cuda", cache_file=tmp_path / "c.json") == "torch"
    assert fake.calls == 0 and not (tmp_path / "c.json").exists()


def test_auto_says_what_it_chose(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(backends, "measure", Counter({"torch": 5.0, "onnx": 7.0, "openvino": 9.0}))
    model = load_backend(model_dir, "auto", precision="fp32", threads=1)
    assert model.backend == "openvino"
    err = capsys.readouterr().err
    assert "backend auto: openvino (openvino 9 texts/s, onnx 7 texts/s, torch 5 texts/s; measured now" in err


def test_the_real_measurement_runs_every_candidate(model_dir: Path) -> None:
    rates = backends.measure(model_dir, ["torch", "onnx", "openvino"], precision="fp32", threads=1)
    assert set(rates) == {"torch", "onnx", "openvino"} and all(r > 0 for r in rates.values())
    assert len(backends.probe_texts()) == 64


def test_serving_resolves_auto_and_answers_like_torch(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from polyhead.serving import ServeSettings, create_app, load_for_serving

    monkeypatch.setattr(backends, "measure", Counter({"torch": 1.0, "onnx": 2.0, "openvino": 3.0}))
    model, name = load_for_serving(str(model_dir), "auto", precision="fp32", threads=1)
    assert model.backend == "openvino" and name == "model"
    reference = load(model_dir, device="cpu", precision="fp32")
    app = create_app(model, ServeSettings(model_name=name, backend="openvino"))
    with TestClient(app) as client:
        assert client.get("/info").json()["backend"] == "openvino"
        results = client.post("/predict", json={"texts": TEXTS}).json()["results"]
    for got, want in zip(results, reference.predict(TEXTS), strict=True):
        assert got["tasks"]["topic"]["label"] == want["tasks"]["topic"]["label"]
        np.testing.assert_allclose(np.array(got["embedding"], dtype=np.float32), want["embedding"], atol=1e-4)
    with pytest.raises(PolyheadError, match="unknown backend 'gpu'"):
        load_for_serving(str(model_dir), "gpu")


def test_ray_takes_named_backends_only(model_dir: Path, tiny_model_dir: Path) -> None:
    from polyhead.integrations.ray import check_model_dir

    with pytest.raises(PolyheadError, match="auto measures on one machine"):
        check_model_dir(model_dir, "auto")
    with pytest.raises(PolyheadError, match="no OpenVINO export"):
        check_model_dir(tiny_model_dir, "openvino")
    with pytest.raises(PolyheadError, match="backend openvino needs a model folder"):
        check_model_dir(None, "openvino")
    check_model_dir(model_dir, "openvino")  # an export is there: no error


def test_auto_skips_an_export_older_than_the_models_heads(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    config = json.loads((folder / "polyhead.json").read_text())
    config["tasks"] = config["tasks"] + [dict(config["tasks"][0], name="intent")]  # as after add-head
    (folder / "polyhead.json").write_text(json.dumps(config))
    assert set(candidates(folder)) == {"torch"}
    assert "predates the model's current tasks" in capsys.readouterr().err
