"""The HTTP server, started for real (uvicorn on a free loopback port) and spoken to over HTTP."""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from polyhead import __version__, load  # noqa: E402
from polyhead.errors import PolyheadError  # noqa: E402
from polyhead.serving import ServeSettings, bind_socket, create_app, security_warning, settings_from_args  # noqa: E402

from conftest import make_tiny_encoder  # noqa: E402
from serving_helpers import running  # noqa: E402

API_KEY = "test-key-0123456789"
MAX_TEXTS = 8
MAX_CHARS = 300
MAX_BODY = 16_384
TEXTS = [
    "Anna Schmidt flew from Berlin to Paris on Monday.",
    "The match ended two to one after extra time.",
    "x",
    "Parliament votes on the new budget today, said the minister in London.",
]


@pytest.fixture(scope="module")
def reference(tiny_model_dir: Path) -> Any:
    """The same saved model loaded in-process: what the server's answers must equal."""
    return load(tiny_model_dir, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[str]:
    """The tiny multi-task model served with small limits and an API key."""
    settings = ServeSettings(
        max_batch_size=64,
        max_wait_ms=25,  # generous, so the concurrency test reliably sees merged requests
        max_texts=MAX_TEXTS,
        max_chars=MAX_CHARS,
        max_body_bytes=MAX_BODY,
        api_key=API_KEY,
        model_name="tiny",
    )
    with running(create_app(load(tiny_model_dir, device="cpu", precision="fp32"), settings)) as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[Any]:
    """An HTTP client that sends the API key."""
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as c:
        yield c


def assert_same_prediction(got: dict, want: dict, embeddings: bool = True) -> None:
    """A server result equals an in-process predict() result (floats within 1e-5)."""
    assert got["text"] == want["text"]
    if embeddings:
        np.testing.assert_allclose(np.array(got["embedding"], dtype=np.float32), want["embedding"], atol=1e-5)
    else:
        assert "embedding" not in got
    assert list(got["tasks"]) == list(want["tasks"])
    for name, w in want["tasks"].items():
        g = got["tasks"][name]
        if "label" in w:
            assert g["label"] == w["label"]
            assert g["score"] == pytest.approx(w["score"], abs=1e-5)
            assert g["scores"] == pytest.approx(w["scores"], abs=1e-5)
        else:
            assert g["words"] == w["words"] and g["tags"] == w["tags"]
            assert len(g["entities"]) == len(w["entities"])
            for ge, we in zip(g["entities"], w["entities"]):
                assert {k: v for k, v in ge.items() if k != "score"} == {k: v for k, v in we.items() if k != "score"}
                assert ge["score"] == pytest.approx(we["score"], abs=1e-5)


def histogram(metrics_text: str, name: str) -> tuple[int, int]:
    """(observations in the le="1" bucket, total observations) of an unlabelled histogram."""
    le1 = re.search(rf'^{name}_bucket{{le="1"}} (\d+)$', metrics_text, re.M)
    count = re.search(rf"^{name}_count (\d+)$", metrics_text, re.M)
    assert le1 and count, f"{name} missing from /metrics"
    return int(le1.group(1)), int(count.group(1))


def assert_error(resp: Any, status: int, code: str | None = None, contains: str | None = None) -> dict:
    """resp is a JSON error of the documented shape with this status (and code / message part)."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if code is not None:
        assert err["code"] == code, err
    if contains is not None:
        assert contains in err["message"], err
    return err


# -- correct answers ----------------------------------------------------------------------
def test_health_is_open_and_info_describes_the_model(server: str, client: Any) -> None:
    assert httpx.get(f"{server}/health").json()["status"] == "ok"  # no key needed
    info = client.get("/info").json()
    assert info["model"] == "tiny" and info["version"] == __version__ and info["backend"] == "torch"
    assert info["dimensions"] == 32 and info["precision"] == "fp32"
    assert [(t["name"], t["kind"]) for t in info["tasks"]] == [("topic", "classification"), ("ner", "token"), ("sts", "similarity")]
    assert info["tasks"][0]["labels"] == ["sports", "politics", "tech"]
    assert info["limits"] == {"max_texts": MAX_TEXTS, "max_chars": MAX_CHARS, "max_body_bytes": MAX_BODY}


def test_predict_equals_in_process_predict(client: Any, reference: Any) -> None:
    resp = client.post("/predict", json={"texts": TEXTS})
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    for got, want in zip(results, reference.predict(TEXTS), strict=True):
        assert_same_prediction(got, want)
    # Only the heads asked for, without embeddings.
    resp = client.post("/predict", json={"texts": TEXTS[:2], "tasks": ["ner"], "embeddings": False})
    for got, want in zip(resp.json()["results"], reference.predict(TEXTS[:2], tasks=["ner"]), strict=True):
        assert_same_prediction(got, want, embeddings=False)


def test_embeddings_have_the_openai_shape(client: Any, reference: Any) -> None:
    resp = client.post("/v1/embeddings", json={"model": "any-name", "input": TEXTS})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["object"] == "list" and body["model"] == "any-name"
    assert [d["index"] for d in body["data"]] == list(range(len(TEXTS)))
    assert all(d["object"] == "embedding" for d in body["data"])
    np.testing.assert_allclose(np.array([d["embedding"] for d in body["data"]]), reference.encode(TEXTS), atol=1e-5)
    tokens = sum(len(ids) for ids in reference.encoder.tokenizer(TEXTS, truncation=True, max_length=64)["input_ids"])
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    # A single string; base64 floats (what the OpenAI client asks for by default).
    single = client.post("/v1/embeddings", json={"model": "m", "input": TEXTS[0], "encoding_format": "base64"}).json()
    assert len(single["data"]) == 1
    vec = np.frombuffer(base64.b64decode(single["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(vec, reference.encode([TEXTS[0]])[0], atol=1e-5)
    assert_error(client.post("/v1/embeddings", json={"input": "a", "dimensions": 8}), 422, contains="32 dimensions")


def test_openai_client_embeddings_create(server: str, reference: Any) -> None:
    openai = pytest.importorskip("openai")
    oa = openai.OpenAI(base_url=f"{server}/v1", api_key=API_KEY, max_retries=0)
    resp = oa.embeddings.create(model="tiny", input=TEXTS[:3])
    assert resp.model == "tiny" and resp.usage.prompt_tokens > 0
    np.testing.assert_allclose(np.array([d.embedding for d in resp.data]), reference.encode(TEXTS[:3]), atol=1e-5)
    floats = oa.embeddings.create(model="tiny", input="hello there", encoding_format="float")
    np.testing.assert_allclose(floats.data[0].embedding, reference.encode(["hello there"])[0], atol=1e-5)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0).embeddings.create(model="tiny", input="a")


def test_similarity_equals_in_process(client: Any, reference: Any) -> None:
    pairs = [[TEXTS[0], TEXTS[3]], [TEXTS[1], TEXTS[1]], [TEXTS[2], TEXTS[0]]]
    resp = client.post("/similarity", json={"pairs": pairs})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    want = reference.similarity([a for a, _ in pairs], [b for _, b in pairs])
    np.testing.assert_allclose(body["scores"], want, atol=1e-5)
    assert body["scores"][1] == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(body["tasks"]["sts"], np.clip(want * 5.0, 0, 5), atol=5e-5)  # sts: score_range (0, 5)


def test_concurrent_clients_are_batched_and_correct(server: str, client: Any, reference: Any) -> None:
    before = client.get("/metrics").text
    requests = [[f"request {i}: {TEXTS[i % 4]}", f"and a second text, number {i}"] for i in range(16)]
    start = threading.Barrier(len(requests))

    def call(texts: list[str]) -> list[dict]:
        with httpx.Client(base_url=server, headers={"X-API-Key": API_KEY}, timeout=60) as c:
            start.wait()  # all 16 requests leave together
            resp = c.post("/predict", json={"texts": texts})
            assert resp.status_code == 200, resp.text
            return resp.json()["results"]

    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(call, requests))
    for texts, got in zip(requests, answers):
        for g, w in zip(got, reference.predict(texts), strict=True):
            assert_same_prediction(g, w)
    after = client.get("/metrics").text
    single0, batches0 = histogram(before, "polyhead_batch_requests")
    single1, batches1 = histogram(after, "polyhead_batch_requests")
    batches, singles = batches1 - batches0, single1 - single0
    assert batches < len(requests), "every request ran alone: no micro-batching happened"
    assert batches > singles, "no batch held more than one request"


# -- limits and bad input -----------------------------------------------------------------
def test_limits_answer_413_and_the_server_keeps_serving(server: str, client: Any) -> None:
    assert_error(client.post("/predict", json={"texts": ["a"] * (MAX_TEXTS + 1)}), 413, "max_texts", "--max-texts")
    err = assert_error(client.post("/predict", json={"texts": ["ok", "a" * (MAX_CHARS + 1)]}), 413, "max_chars")
    assert err["param"] == "texts[1]" and err["type"] == "limit_exceeded"
    assert_error(client.post("/v1/embeddings", json={"input": ["a"] * (MAX_TEXTS + 1)}), 413, "max_texts")
    assert_error(client.post("/similarity", json={"pairs": [["a", "b"]] * (MAX_TEXTS // 2 + 1)}), 413, "max_texts")
    big = b'{"texts": ["' + b"a" * (MAX_BODY + 10) + b'"]}'
    headers = {"content-type": "application/json"}
    assert_error(client.post("/predict", content=big, headers=headers), 413, "max_body_bytes", "--max-body-bytes")
    # Without a Content-Length (chunked upload) the bytes actually received are counted.
    chunks = (b"a" * 4096 for _ in range(MAX_BODY // 4096 + 2))
    assert_error(client.post("/predict", content=chunks, headers=headers), 413, "max_body_bytes")
    ok = client.post("/predict", json={"texts": ["still serving"]})
    assert ok.status_code == 200 and ok.json()["results"][0]["text"] == "still serving"


def escaped(body: Any) -> dict[str, Any]:
    """Request kwargs sending body as ASCII JSON, where a lone surrogate travels as a \\uXXXX escape."""
    return {"content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}


BAD_INPUTS = [
    ("malformed-json", "/predict", {"content": b'{"texts": ["a",', "headers": {"content-type": "application/json"}}, 400, "malformed_json", "malformed JSON"),
    ("not-json-content-type", "/predict", {"content": b'{"texts": ["a"]}', "headers": {"content-type": "text/plain"}}, 415, None, "Content-Type"),
    ("no-body", "/predict", {"headers": {"content-type": "application/json"}}, 422, "missing_body", None),
    ("body-not-an-object", "/predict", {"json": ["a", "b"]}, 422, None, "JSON object"),
    ("texts-not-a-list", "/predict", {"json": {"texts": "abc"}}, 422, None, "texts"),
    ("texts-not-strings", "/predict", {"json": {"texts": ["a", 3]}}, 422, None, "texts[1]"),
    ("texts-empty", "/predict", {"json": {"texts": []}}, 422, None, "texts"),
    ("embeddings-not-bool", "/predict", {"json": {"texts": ["a"], "embeddings": "yes"}}, 422, None, "embeddings"),
    ("unknown-field", "/predict", {"json": {"texts": ["a"], "task": ["topic"]}}, 422, None, "unknown field 'task'"),
    ("unknown-task", "/predict", {"json": {"texts": ["a"], "tasks": ["topic", "nope"]}}, 422, "unknown_task", "'nope'"),
    ("pair-task-in-predict", "/predict", {"json": {"texts": ["a"], "tasks": ["sts"]}}, 422, "pair_task", "/similarity"),
    ("pairs-wrong-shape", "/similarity", {"json": {"pairs": [["only one"]]}}, 422, None, "pairs[0]"),
    ("embeddings-token-ids", "/v1/embeddings", {"json": {"model": "m", "input": [[1, 2, 3]]}}, 422, None, "token ids"),
    ("embeddings-wrong-type", "/v1/embeddings", {"json": {"model": "m", "input": 5}}, 422, None, "input"),
    ("embeddings-bad-format", "/v1/embeddings", {"json": {"input": "a", "encoding_format": "int8"}}, 422, None, "encoding_format"),
    # Found by fuzzing: JSON may escape a lone UTF-16 surrogate ("\ud800"), which is no Unicode text.
    # The tokenizer raised TypeError on it and an echoed one could not be encoded: both were a 500.
    ("surrogate-in-texts", "/predict", escaped({"texts": ["ok", "a\ud800b"]}), 422, "invalid_value", "texts[1]: holds a lone UTF-16 surrogate"),
    ("surrogate-in-tasks", "/predict", escaped({"texts": ["ok"], "tasks": ["\udfff"]}), 422, "invalid_value", "tasks[0]"),
    ("surrogate-in-input", "/v1/embeddings", escaped({"input": "\ud83d"}), 422, "invalid_value", "surrogate"),
    ("surrogate-in-input-list", "/v1/embeddings", escaped({"input": ["ok", "\ud83d"]}), 422, "invalid_value", "element 1"),
    ("surrogate-in-model", "/v1/embeddings", escaped({"input": "ok", "model": "m\ud800"}), 422, "invalid_value", "model"),
    ("surrogate-in-pairs", "/similarity", escaped({"pairs": [["ok", "\udc00"]]}), 422, "invalid_value", "pairs[0][1]"),
]


@pytest.mark.parametrize("path,kwargs,status,code,contains", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gets_a_clear_4xx(client: Any, path: str, kwargs: dict, status: int, code: str | None, contains: str | None) -> None:
    assert_error(client.post(path, **kwargs), status, code, contains)


def test_unknown_paths_and_methods_are_json_errors(client: Any) -> None:
    assert_error(client.get("/nope"), 404, contains="/nope")
    assert_error(client.get("/predict"), 405)


def test_api_key_is_required_except_for_health(server: str) -> None:
    err = assert_error(httpx.post(f"{server}/predict", json={"texts": ["a"]}), 401, "missing_api_key")
    assert err["type"] == "authentication_error"
    assert_error(httpx.get(f"{server}/info", headers={"Authorization": "Bearer nope"}), 401, "invalid_api_key")
    assert_error(httpx.get(f"{server}/metrics"), 401)
    assert httpx.get(f"{server}/info", headers={"X-API-Key": API_KEY}).status_code == 200
    assert httpx.get(f"{server}/info", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
    assert httpx.get(f"{server}/health").status_code == 200


def test_page_and_static_files_are_open_and_safe(server: str, client: Any) -> None:
    from polyhead.serving import STATIC_DIR

    index = httpx.get(f"{server}/")  # no key: the page asks for it itself
    assert index.status_code == 200
    # The page ships with the package (package-data): a missing asset is a packaging bug, not a skip.
    assert index.headers["content-type"].startswith("text/html")
    assert index.text == (STATIC_DIR / "playground.html").read_text(encoding="utf-8")
    for name, kind in (("playground.js", "text/javascript"), ("playground.css", "text/css")):
        assert f'"/static/{name}"' in index.text, f"the page no longer loads {name}"
        asset = httpx.get(f"{server}/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind), name
        assert asset.content == (STATIC_DIR / name).read_bytes()
    for bad in ("/static/..%2F__init__.py", "/static/__init__.py", "/static/.hidden.js", "/static/nope.js"):
        assert httpx.get(f"{server}{bad}").status_code == 404, bad
    assert_error(client.get("/training/metrics"), 404, contains="training")  # this tiny model was never trained
    assert_error(httpx.get(f"{server}/training/metrics"), 401)


def test_metrics_are_prometheus_text(client: Any) -> None:
    client.post("/predict", json={"texts": ["a"] * (MAX_TEXTS + 1)})  # one 413 to count
    client.post("/predict", json={"texts": ["a"]})
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = resp.text
    for line in (
        "# TYPE polyhead_requests_total counter",
        "# TYPE polyhead_request_duration_seconds histogram",
        "# TYPE polyhead_batch_texts histogram",
        "# TYPE polyhead_batch_requests histogram",
    ):
        assert line in text
    assert re.search(r'^polyhead_requests_total\{method="POST",path="/predict",status="200"\} \d+$', text, re.M)
    assert re.search(r'^polyhead_requests_total\{method="POST",path="/predict",status="413"\} \d+$', text, re.M)
    assert re.search(r'^polyhead_request_duration_seconds_bucket\{path="/predict",le="\+Inf"\} \d+$', text, re.M)
    for line in text.splitlines():  # every sample line: name{labels} number
        if line and not line.startswith("#"):
            assert re.match(r'^[a-z_]+(\{[^}]*\})? -?[0-9.e+-]+$', line), line


# -- the bare encoder, the command line ---------------------------------------------------
def test_bare_encoder_serves_embeddings_only() -> None:
    enc = make_tiny_encoder()
    want = enc.encode(TEXTS[:2])
    # A max wait of an hour: a lone request is answered at all only because its batch starts as
    # soon as no other request is on its way (the client's timeout is a hang detector, not a speed
    # limit). test_batcher.py checks the same rule without HTTP, by counting model calls.
    settings = ServeSettings(model_name="enc", max_wait_ms=3_600_000)
    with running(create_app(enc, settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
        assert c.get("/info").json()["tasks"] == []
        for text in ("warm-up", "alone"):
            assert c.post("/v1/embeddings", json={"input": text}).status_code == 200
        assert histogram(c.get("/metrics").text, "polyhead_batch_requests") == (2, 2)  # two batches of one
        results = c.post("/predict", json={"texts": TEXTS[:2]}).json()["results"]
        assert [r["tasks"] for r in results] == [{}, {}]
        np.testing.assert_allclose(np.array([r["embedding"] for r in results]), want, atol=1e-5)
        assert_error(c.post("/predict", json={"texts": ["a"], "tasks": ["topic"]}), 422, "no_tasks")
        data = c.post("/v1/embeddings", json={"model": "enc", "input": TEXTS[:2]}).json()["data"]
        np.testing.assert_allclose(np.array([d["embedding"] for d in data]), want, atol=1e-5)
        assert c.post("/similarity", json={"pairs": [["a", "a"]]}).json()["scores"][0] == pytest.approx(1.0, abs=1e-5)


def test_onnx_backend_gives_the_same_answers(tiny_model_dir: Path, reference: Any, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    export = pytest.importorskip("polyhead.onnx")
    export.export_onnx(load(tiny_model_dir, device="cpu"), tmp_path / "onnx")
    app = create_app(export.OnnxModel.load(tmp_path / "onnx"), ServeSettings(model_name="tiny-onnx", backend="onnx"))
    with running(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/info").json()["backend"] == "onnx"
        results = c.post("/predict", json={"texts": TEXTS}).json()["results"]
        for got, want in zip(results, reference.predict(TEXTS), strict=True):
            assert_same_prediction(got, want)
        data = c.post("/v1/embeddings", json={"input": TEXTS}).json()["data"]
        np.testing.assert_allclose(np.array([d["embedding"] for d in data]), reference.encode(TEXTS), atol=1e-5)


def test_polyhead_serve_command_runs_a_saved_model(tiny_model_dir: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "POLYHEAD_API_KEY": "env-key"}
    cmd = [sys.executable, "-m", "polyhead.cli", "serve", str(tiny_model_dir), "--port", "0", "--precision", "fp32"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            lines.append(line)
            if "serving" in line:
                break
        banner = "".join(lines)
        match = re.search(r"http://127\.0\.0\.1:(\d+)", banner)
        assert match, banner
        assert "precision fp32" in banner
        url = f"http://127.0.0.1:{match.group(1)}"
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        assert httpx.get(f"{url}/info", timeout=10).status_code == 401
        info = httpx.get(f"{url}/info", headers={"X-API-Key": "env-key"}, timeout=10).json()
        assert info["model"] == tiny_model_dir.name and [t["name"] for t in info["tasks"]] == ["topic", "ner", "sts"]
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=30)[1]
    assert proc.returncode == 0, banner + rest


def test_settings_and_start_up_checks() -> None:
    class Args:
        max_batch_size, max_wait_ms, max_texts, max_chars, max_body_bytes = 0, 5.0, 10, 10, 100_000
        api_key, backend = None, "torch"

    with pytest.raises(PolyheadError, match="max-batch-size"):
        settings_from_args(Args())
    assert security_warning("127.0.0.1", None) is None
    assert security_warning("0.0.0.0", "key") is None
    assert "API key" in security_warning("0.0.0.0", None)
    busy = bind_socket("127.0.0.1", 0)
    busy.listen(1)  # a port another server is listening on
    try:
        with pytest.raises(PolyheadError, match="cannot listen"):
            bind_socket("127.0.0.1", busy.getsockname()[1]).close()
    finally:
        busy.close()


def test_openapi_declares_the_error_shape_the_server_sends(client: Any) -> None:
    """/openapi.json (what schemathesis and client generators read) documents the real error body."""
    doc = client.get("/openapi.json").json()
    error_schema = doc["components"]["schemas"]["ErrorResponse"]
    assert error_schema["required"] == ["error"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]  # FastAPI's {"detail": ...}: never sent
    for path in ("/predict", "/v1/embeddings", "/similarity"):
        responses = doc["paths"][path]["post"]["responses"]
        for status in ("400", "401", "413", "415", "422"):
            ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorResponse"), (path, status)
    detail = doc["components"]["schemas"]["ErrorDetail"]
    # A real 422 body has exactly the declared fields, with the declared required ones.
    body = client.post("/predict", json={"texts": []}).json()
    assert set(body) == {"error"}
    assert set(body["error"]) == set(detail["properties"])
    assert set(detail["required"]) <= {k for k, v in body["error"].items() if v is not None}
