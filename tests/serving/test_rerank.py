"""POST /rerank (Cohere / text-embeddings-inference shape) and POST /embed (TEI), over real HTTP.

The server, client and reference fixtures are test_serve.py's (imported, so this module gets its
own server with the same small limits and API key).
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from polyhead.serving import ServeSettings, create_app  # noqa: E402

from conftest import make_tiny_encoder  # noqa: E402
from serving_helpers import running  # noqa: E402
from test_serve import API_KEY, MAX_CHARS, MAX_TEXTS, TEXTS, assert_error, client, escaped, reference, server  # noqa: E402,F401

QUERY = "Who travelled to Paris?"


def cosines(model: Any, query: str, documents: list[str]) -> np.ndarray:
    """In-process: the cosine of the query's embedding with each document's."""
    vecs = np.asarray(model.encode([query, *documents]), dtype=np.float64)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs[1:] @ vecs[0]


def test_rerank_orders_by_in_process_cosine(client: Any, reference: Any) -> None:
    resp = client.post("/rerank", json={"query": QUERY, "documents": TEXTS})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model"] == "tiny" and body["usage"]["total_tokens"] > 0
    want = cosines(reference, QUERY, TEXTS)
    results = body["results"]
    assert sorted(r["index"] for r in results) == list(range(len(TEXTS)))  # every document once
    assert [r["index"] for r in results] == sorted(range(len(TEXTS)), key=lambda i: (-want[i], i))
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    for r in results:
        assert set(r) == {"index", "relevance_score"}  # no document unless asked for
        assert r["relevance_score"] == pytest.approx(want[r["index"]], abs=1e-5)
    # /similarity scores the same pairs the same way.
    sim = client.post("/similarity", json={"pairs": [[QUERY, d] for d in TEXTS]}).json()["scores"]
    np.testing.assert_allclose([scores[[r["index"] for r in results].index(i)] for i in range(len(TEXTS))], sim, atol=1e-6)


def test_rerank_top_n_and_return_documents(client: Any, reference: Any) -> None:
    full = client.post("/rerank", json={"query": QUERY, "documents": TEXTS}).json()["results"]
    top = client.post("/rerank", json={"query": QUERY, "documents": TEXTS, "top_n": 2, "return_documents": True, "model": "m"})
    assert top.status_code == 200, top.text
    body = top.json()
    assert body["model"] == "m"  # echoed, as Cohere clients send one
    assert [r["index"] for r in body["results"]] == [r["index"] for r in full[:2]]
    for r in body["results"]:
        assert r["document"] == {"text": TEXTS[r["index"]]}
    # top_n beyond the number of documents: all of them.
    assert len(client.post("/rerank", json={"query": QUERY, "documents": TEXTS[:2], "top_n": 10}).json()["results"]) == 2
    # A document equal to the query ranks first with cosine 1.
    same = client.post("/rerank", json={"query": TEXTS[1], "documents": TEXTS}).json()["results"][0]
    assert same["index"] == 1 and same["relevance_score"] == pytest.approx(1.0, abs=1e-5)


BAD_RERANK = [
    ("empty-documents", {"json": {"query": "q", "documents": []}}, 422, "invalid_value", "documents"),
    ("top-n-zero", {"json": {"query": "q", "documents": ["a"], "top_n": 0}}, 422, "invalid_value", "top_n"),
    ("top-n-negative", {"json": {"query": "q", "documents": ["a"], "top_n": -3}}, 422, "invalid_value", "top_n"),
    ("top-n-not-int", {"json": {"query": "q", "documents": ["a"], "top_n": "2"}}, 422, "invalid_value", "top_n"),
    ("top-n-float", {"json": {"query": "q", "documents": ["a"], "top_n": 1.5}}, 422, "invalid_value", "top_n"),
    ("missing-query", {"json": {"documents": ["a"]}}, 422, "invalid_value", "query: field required"),
    ("missing-documents", {"json": {"query": "q"}}, 422, "invalid_value", "documents: field required"),
    ("query-not-string", {"json": {"query": 3, "documents": ["a"]}}, 422, "invalid_value", "query"),
    ("documents-not-list", {"json": {"query": "q", "documents": "abc"}}, 422, "invalid_value", "documents"),
    ("document-not-string", {"json": {"query": "q", "documents": ["a", {"text": "b"}]}}, 422, "invalid_value", "documents[1]"),
    ("return-documents-not-bool", {"json": {"query": "q", "documents": ["a"], "return_documents": "yes"}}, 422, "invalid_value", "return_documents"),
    ("unknown-field", {"json": {"query": "q", "documents": ["a"], "top_k": 2}}, 422, "invalid_value", "unknown field 'top_k'"),
    ("body-not-an-object", {"json": ["q", "a"]}, 422, None, "JSON object"),
    ("surrogate-in-query", escaped({"query": "a\ud800", "documents": ["a"]}), 422, "invalid_value", "query: holds a lone UTF-16 surrogate"),
    ("surrogate-in-document", escaped({"query": "q", "documents": ["ok", "\udc00"]}), 422, "invalid_value", "documents[1]"),
    ("malformed-json", {"content": b'{"query": "q", "documents": [', "headers": {"content-type": "application/json"}}, 400, "malformed_json", None),
    ("not-json-content-type", {"content": b'{"query": "q", "documents": ["a"]}', "headers": {"content-type": "text/plain"}}, 415, None, None),
    # The query counts against --max-texts too: MAX_TEXTS documents plus the query is one too many.
    ("too-many-texts", {"json": {"query": "q", "documents": ["a"] * MAX_TEXTS}}, 413, "max_texts", "--max-texts"),
    ("query-too-long", {"json": {"query": "q" * (MAX_CHARS + 1), "documents": ["a"]}}, 413, "max_chars", "query has"),
    ("document-too-long", {"json": {"query": "q", "documents": ["a", "b" * (MAX_CHARS + 1)]}}, 413, "max_chars", "documents[1]"),
]


@pytest.mark.parametrize("kwargs,status,code,contains", [c[1:] for c in BAD_RERANK], ids=[c[0] for c in BAD_RERANK])
def test_rerank_bad_input_gets_a_clear_4xx(client: Any, kwargs: dict, status: int, code: str | None, contains: str | None) -> None:
    assert_error(client.post("/rerank", **kwargs), status, code, contains)


def test_rerank_limit_params_name_the_field(client: Any) -> None:
    err = assert_error(client.post("/rerank", json={"query": "q", "documents": ["a"] * MAX_TEXTS}), 413, "max_texts")
    assert err["param"] == "documents" and err["type"] == "limit_exceeded"
    err = assert_error(client.post("/rerank", json={"query": "q", "documents": ["a", "b" * (MAX_CHARS + 1)]}), 413, "max_chars")
    assert err["param"] == "documents[1]"
    # Exactly at the limit (query + MAX_TEXTS - 1 documents): answered.
    ok = client.post("/rerank", json={"query": "q", "documents": ["a"] * (MAX_TEXTS - 1)})
    assert ok.status_code == 200 and len(ok.json()["results"]) == MAX_TEXTS - 1


def test_embed_equals_in_process_encode(client: Any, reference: Any) -> None:
    resp = client.post("/embed", json={"inputs": TEXTS})
    assert resp.status_code == 200, resp.text
    vectors = resp.json()
    assert isinstance(vectors, list) and len(vectors) == len(TEXTS) and all(len(v) == 32 for v in vectors)
    np.testing.assert_allclose(np.array(vectors), reference.encode(TEXTS), atol=1e-5)
    single = client.post("/embed", json={"inputs": TEXTS[0]}).json()
    assert len(single) == 1  # a string gives a list of one vector, as in TEI
    np.testing.assert_allclose(single[0], reference.encode([TEXTS[0]])[0], atol=1e-5)
    raw = client.post("/embed", json={"inputs": TEXTS[:2], "normalize": False, "truncate": True}).json()
    np.testing.assert_allclose(np.array(raw), reference.encode(TEXTS[:2]), atol=1e-5)  # this model normalises itself


BAD_EMBED = [
    ("missing-inputs", {"json": {"input": "a"}}, 422, "invalid_value", None),
    ("empty-list", {"json": {"inputs": []}}, 422, "invalid_value", "at least one string"),
    ("wrong-type", {"json": {"inputs": 5}}, 422, "invalid_value", "inputs"),
    ("token-ids", {"json": {"inputs": [[1, 2, 3]]}}, 422, "invalid_value", "token ids"),
    ("normalize-not-bool", {"json": {"inputs": "a", "normalize": "no"}}, 422, "invalid_value", "normalize"),
    ("unknown-field", {"json": {"inputs": "a", "truncation_direction": "Left"}}, 422, "invalid_value", "unknown field 'truncation_direction'"),
    ("unknown-prompt", {"json": {"inputs": "a", "prompt_name": "query"}}, 422, "invalid_value", "unknown prompt_name 'query'; this model has no prompts"),
    ("surrogate", escaped({"inputs": ["ok", "\ud83d"]}), 422, "invalid_value", "element 1"),
    ("too-many-texts", {"json": {"inputs": ["a"] * (MAX_TEXTS + 1)}}, 413, "max_texts", None),
    ("text-too-long", {"json": {"inputs": ["a", "b" * (MAX_CHARS + 1)]}}, 413, "max_chars", "inputs[1]"),
]


@pytest.mark.parametrize("kwargs,status,code,contains", [c[1:] for c in BAD_EMBED], ids=[c[0] for c in BAD_EMBED])
def test_embed_bad_input_gets_a_clear_4xx(client: Any, kwargs: dict, status: int, code: str | None, contains: str | None) -> None:
    assert_error(client.post("/embed", **kwargs), status, code, contains)


def test_unnormalised_encoder_embed_and_rerank() -> None:
    """With an encoder that does not normalise, /embed normalises unless told not to; /rerank is cosine anyway."""
    enc = make_tiny_encoder(normalize=False)
    raw = np.asarray(enc.encode(TEXTS), dtype=np.float32)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)  # the test means something
    with running(create_app(enc, ServeSettings(model_name="raw"))) as url, httpx.Client(base_url=url, timeout=60) as c:
        np.testing.assert_allclose(np.array(c.post("/embed", json={"inputs": TEXTS, "normalize": False}).json()), raw, atol=1e-5)
        unit = np.array(c.post("/embed", json={"inputs": TEXTS}).json())
        np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)
        results = c.post("/rerank", json={"query": QUERY, "documents": TEXTS}).json()["results"]
        want = cosines(enc, QUERY, TEXTS)
        for r in results:
            assert r["relevance_score"] == pytest.approx(want[r["index"]], abs=1e-5)


def test_rerank_and_embed_need_the_key_and_are_counted(server: str, client: Any) -> None:
    for path, body in (("/rerank", {"query": "q", "documents": ["a"]}), ("/embed", {"inputs": "a"})):
        assert_error(httpx.post(f"{server}{path}", json=body), 401, "missing_api_key")
        assert_error(httpx.post(f"{server}{path}", json=body, headers={"Authorization": "Bearer nope"}), 401, "invalid_api_key")
        assert httpx.post(f"{server}{path}", json=body, headers={"X-API-Key": API_KEY}).status_code == 200
    info = client.get("/info").json()
    assert "POST /rerank" in info["endpoints"] and "POST /embed" in info["endpoints"]
    before = client.get("/metrics").text
    assert client.post("/rerank", json={"query": "q", "documents": ["a", "b"]}).status_code == 200
    assert client.post("/embed", json={"inputs": ["a", "b", "c", "d"]}).status_code == 200
    after = client.get("/metrics").text

    def texts(text: str, endpoint: str) -> int:
        m = re.search(rf'^polyhead_texts_total\{{endpoint="{endpoint}"\}} (\d+)$', text, re.M)
        return int(m.group(1)) if m else 0

    assert texts(after, "/rerank") - texts(before, "/rerank") == 3  # the query counts
    assert texts(after, "/embed") - texts(before, "/embed") == 4
    for path in ("/rerank", "/embed"):  # its own path label, not "other"
        assert re.search(rf'^polyhead_requests_total\{{method="POST",path="{path}",status="200"\}} \d+$', after, re.M), path
        assert re.search(rf'^polyhead_requests_total\{{method="POST",path="{path}",status="401"\}} \d+$', after, re.M), path


def test_openapi_documents_the_new_routes(client: Any) -> None:
    doc = client.get("/openapi.json").json()
    for path in ("/rerank", "/embed"):
        responses = doc["paths"][path]["post"]["responses"]
        for status in ("400", "401", "413", "415", "422", "503"):
            assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse"), (path, status)
    rerank = doc["components"]["schemas"]["RerankRequest"]
    assert rerank["required"] == ["query", "documents"] and rerank["additionalProperties"] is False
