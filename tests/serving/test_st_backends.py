"""A sentence-transformers encoder's modules and prompts on every backend: the exported ONNX and
OpenVINO graphs and the HTTP server give what Encoder.encode gives (tiny model, CLS pooling,
Dense + LayerNorm, prompts with a default)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import torch

from conftest import make_tiny_encoder

from polyhead import MultiTaskModel, PolyheadError, load
from polyhead.modeling.encoder import Encoder
from polyhead.modeling.st_modules import Dense, FolderSettings, LayerNorm

TEXTS = ["Anna flew from Berlin to Paris on Monday.", "ok", "How do I get a refund for my order?", ""]
PROMPTS = {"query": "query: ", "passage": "passage: "}


def st_like_model(include_prompt: bool = True) -> MultiTaskModel:
    tiny = make_tiny_encoder()
    torch.manual_seed(1)
    settings = FolderSettings(source="test", pooling=("cls",), include_prompt=include_prompt, max_length=48,
                              modules=[Dense(32, 16), LayerNorm(16)], normalize=True, prompts=dict(PROMPTS),
                              default_prompt_name="query")
    enc = Encoder(device="cpu", backbone=tiny.backbone, tokenizer=tiny.tokenizer, settings=settings)
    return MultiTaskModel(enc, [{"name": "topic", "kind": "classification", "labels": ["a", "b", "c"]}])


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return st_like_model().save(tmp_path_factory.mktemp("st-backends") / "model")


def test_the_encoder_applies_its_modules_and_default_prompt(saved: Path) -> None:
    model = load(saved, device="cpu")
    enc = model.encoder
    assert (enc.dim, enc.pooling.mode, enc.max_length, enc.default_prompt_name) == (16, "cls", 48, "query")
    assert model.heads["topic"].net[-1].in_features == 16  # heads read the Dense output
    default = enc.encode(TEXTS)
    np.testing.assert_allclose(default, enc.encode(TEXTS, prompt_name="query"), atol=1e-6)
    np.testing.assert_allclose(default, enc.encode(TEXTS, prompt="query: "), atol=1e-6)
    assert np.abs(default - enc.encode(TEXTS, prompt_name="passage")).max() > 1e-3
    assert np.abs(default - enc.encode(TEXTS, prompt="")).max() > 1e-3  # an empty prompt: none
    np.testing.assert_allclose(np.linalg.norm(default, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_exported_graphs_give_the_same_vectors_with_prompts(saved: Path, fmt: str) -> None:
    pytest.importorskip("onnxruntime" if fmt == "onnx" else "openvino")
    from polyhead.onnx.backends import load_backend

    model = load(saved, device="cpu")
    if fmt == "onnx":
        from polyhead.onnx import export_onnx

        export_onnx(model, saved / "onnx")
    else:
        from polyhead.onnx.openvino import export_openvino

        export_openvino(model, saved / "openvino")
    graph = load_backend(saved, fmt, device="cpu", precision="fp32", threads=1, variant="fp32", announce=False)
    for kwargs in ({}, {"prompt_name": "passage"}, {"prompt": "Represent: "}):
        np.testing.assert_allclose(graph.encode(TEXTS, **kwargs), model.encode(TEXTS, **kwargs), atol=1e-4)
    with pytest.raises(PolyheadError, match="unknown prompt name 'nope'"):
        graph.encode(TEXTS, prompt_name="nope")


def test_a_prompt_left_out_of_the_pool_is_refused_where_it_cannot_be_honoured(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from polyhead.onnx import OnnxModel, export_onnx

    model = st_like_model(include_prompt=False)
    folder = model.save(tmp_path / "model")
    export_onnx(load(folder, device="cpu"), folder / "onnx")
    graph = OnnxModel.load(folder, variant="fp32", threads=1)
    with pytest.raises(PolyheadError, match="include_prompt=false"):
        graph.encode(TEXTS)  # the default prompt applies
    np.testing.assert_allclose(graph.encode(TEXTS, prompt=""), model.encode(TEXTS, prompt=""), atol=1e-4)


@pytest.fixture(scope="module")
def server(saved: Path) -> Iterator[str]:
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from serving_helpers import running

    from polyhead.serving import ServeSettings, create_app

    with running(create_app(load(saved, device="cpu", precision="fp32"), ServeSettings(model_name="st"))) as url:
        yield url


def test_the_server_embeds_with_the_prompt_asked_for(server: str, saved: Path) -> None:
    httpx = pytest.importorskip("httpx")
    model = load(saved, device="cpu")
    with httpx.Client(base_url=server, timeout=30) as http:
        info = http.get("/info").json()
        assert (info["prompts"], info["default_prompt_name"]) == (PROMPTS, "query")

        def vectors(path: str, body: dict[str, Any]) -> np.ndarray:
            r = http.post(path, json=body)
            assert r.status_code == 200, r.text
            data = r.json()
            return np.array([d["embedding"] for d in data["data"]] if path == "/v1/embeddings" else data, dtype=np.float32)

        texts = [t for t in TEXTS if t]
        np.testing.assert_allclose(vectors("/v1/embeddings", {"input": texts}), model.encode(texts), atol=1e-5)
        np.testing.assert_allclose(vectors("/v1/embeddings", {"input": texts, "prompt_name": "passage"}),
                                   model.encode(texts, prompt_name="passage"), atol=1e-5)
        np.testing.assert_allclose(vectors("/embed", {"inputs": texts, "prompt_name": "passage"}),
                                   model.encode(texts, prompt_name="passage"), atol=1e-5)
        r = http.post("/v1/embeddings", json={"input": texts, "prompt_name": "nope"})
        assert r.status_code == 422 and "unknown prompt_name 'nope'" in r.text
        # /rerank: the query with the "query" prompt, documents with "passage" (sentence-transformers' choice)
        r = http.post("/rerank", json={"query": texts[0], "documents": texts[1:]})
        q, d = model.encode(texts[:1], prompt_name="query"), model.encode(texts[1:], prompt_name="passage")
        want = sorted(((float(s), i) for i, s in enumerate((d @ q.T)[:, 0])), key=lambda x: (-x[0], x[1]))
        assert [x["index"] for x in r.json()["results"]] == [i for _, i in want]
        np.testing.assert_allclose([x["relevance_score"] for x in r.json()["results"]], [s for s, _ in want], atol=1e-5)

