"""Schema-driven fuzzing: schemathesis generates requests from the server's own /openapi.json and
sends them to the real server (uvicorn on a free loopback port, the tiny multi-task model).

Every operation gets valid bodies (positive mode) and invalid ones (negative mode: wrong types,
missing fields, extra fields, other media types). Whatever arrives, the server must answer
without a 5xx, every error must be the documented JSON {"error": {...}}, and it must still be
healthy afterwards. Bounded: MAX_EXAMPLES per operation and mode, no shrinking, no example
database, so the run takes seconds and always tries the same inputs (derandomized).
"""
from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any, Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis")
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

from polyhead import load  # noqa: E402
from polyhead.serving import ServeSettings, create_app  # noqa: E402

from serving_helpers import running  # noqa: E402

API_KEY = "fuzz-key-0123456789"
MAX_EXAMPLES = 40  # per operation and generation mode
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[str]:
    """The tiny model with small limits (so generated lists and strings also meet the 413 paths)."""
    settings = ServeSettings(max_texts=8, max_chars=300, max_body_bytes=16_384, api_key=API_KEY, model_name="tiny", max_wait_ms=2)
    with running(create_app(load(tiny_model_dir, device="cpu", precision="fp32"), settings)) as url:
        yield url


def problems_with(response: Any) -> list[str]:
    """What is wrong with one answer: a 5xx, or an error that is not the documented JSON shape."""
    found = []
    if response.status_code >= 500:
        found.append(f"server error {response.status_code}")
    if response.status_code >= 400:
        ctype = response.headers.get("content-type", "")
        try:
            err = json.loads(response.content)["error"]
            ok = ctype.startswith("application/json") and set(err) == {"message", "type", "param", "code"} and bool(err["message"])
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            found.append(f"{response.status_code} without the JSON error body ({ctype or 'no content-type'})")
    return found


def fuzz(url: str) -> tuple[collections.Counter, dict[str, list[str]]]:
    """Run every operation of /openapi.json in both modes; (status counts, problems by kind with an example)."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", headers=AUTH, timeout=30)
    statuses: collections.Counter = collections.Counter()
    problems: dict[str, list[str]] = {}
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

                @settings(
                    max_examples=MAX_EXAMPLES,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy(generation_mode=mode))
                def send(case: Any) -> None:
                    kwargs = case.as_transport_kwargs(base_url=url, headers=AUTH)
                    response = client.request(
                        kwargs["method"], kwargs["url"], headers=kwargs.get("headers"), params=kwargs.get("params"),
                        content=_body_bytes(kwargs),
                    )
                    statuses[(operation.label, response.status_code)] += 1
                    for problem in problems_with(response):
                        problems.setdefault(f"{operation.label}: {problem}", []).append(
                            f"{kwargs.get('headers', {}).get('Content-Type')} {_body_bytes(kwargs)[:200]!r} -> {response.text[:200]}"
                        )

                try:
                    send()
                except Unsatisfiable:
                    # No invalid input exists for an operation without parameters or body
                    # (GET /health in negative mode): nothing to send.
                    assert mode == schemathesis.GenerationMode.NEGATIVE and operation.method.upper() == "GET", operation.label
    return statuses, problems


def _body_bytes(kwargs: dict[str, Any]) -> bytes:
    """The request body schemathesis built, as the bytes to send (JSON, or raw data for other media types)."""
    if "json" in kwargs:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data", kwargs.get("content", b""))
    if data is None:
        return b""
    return data.encode() if isinstance(data, str) else bytes(data) if isinstance(data, (bytes, bytearray)) else json.dumps(data).encode()


def test_fuzzed_requests_never_get_a_5xx_or_a_non_json_error(server: str) -> None:
    statuses, problems = fuzz(server)
    tried = sum(statuses.values())
    print(f"\nfuzzing: {tried} requests over {len({op for op, _ in statuses})} operations")
    for (op, status), n in sorted(statuses.items()):
        print(f"  {op:<28} {status}: {n}")
    assert tried >= 100, "the fuzzer sent almost nothing: is /openapi.json empty?"
    assert {op for op, _ in statuses} >= {"POST /predict", "POST /similarity", "POST /v1/embeddings", "POST /rerank", "POST /embed"}
    assert not problems, "\n".join(f"{kind} ({len(ex)}x), e.g. {ex[0]}" for kind, ex in problems.items())
    health = httpx.get(f"{server}/health", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "ok"


# schemathesis draws strings that encode as UTF-8, but JSON can carry any code point, lone
# surrogates included (as \udXXX escapes), and clients do send them. So the text fields are also
# fuzzed with every code point, sent as ASCII-escaped JSON.
# Lists of characters joined, not st.text(): text() leaves surrogates (category Cs) out whatever the alphabet.
ANY_TEXT = st.text(max_size=40) | st.lists(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=40).map("".join)
ANY_BODY = st.one_of(
    st.builds(lambda t, tasks: ("/predict", {"texts": t, **({"tasks": tasks} if tasks is not None else {})}),
              st.lists(ANY_TEXT, min_size=1, max_size=4), st.none() | st.lists(ANY_TEXT, max_size=2)),
    st.builds(lambda t, m: ("/v1/embeddings", {"input": t, "model": m}), ANY_TEXT | st.lists(ANY_TEXT, min_size=1, max_size=4), ANY_TEXT),
    st.builds(lambda p: ("/similarity", {"pairs": p}), st.lists(st.tuples(ANY_TEXT, ANY_TEXT).map(list), min_size=1, max_size=3)),
    st.builds(lambda q, d: ("/rerank", {"query": q, "documents": d, "return_documents": True}), ANY_TEXT, st.lists(ANY_TEXT, min_size=1, max_size=4)),
    st.builds(lambda t: ("/embed", {"inputs": t}), ANY_TEXT | st.lists(ANY_TEXT, min_size=1, max_size=4)),
)


def test_texts_with_any_code_point_never_get_a_5xx(server: str) -> None:
    seen: collections.Counter = collections.Counter()
    problems: dict[str, list[str]] = {}
    with httpx.Client(base_url=server, headers={**AUTH, "content-type": "application/json"}, timeout=60) as client:

        @settings(max_examples=3 * MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(ANY_BODY)
        def send(path_body: tuple[str, dict]) -> None:
            path, body = path_body
            raw = json.dumps(body).encode()  # ensure_ascii: a lone surrogate travels as an escape
            response = client.post(path, content=raw)
            seen[(path, response.status_code)] += 1
            for problem in problems_with(response):
                problems.setdefault(f"POST {path}: {problem}", []).append(f"{raw[:200]!r} -> {response.text[:200]}")

        send()
    print(f"\ntext fuzzing: {sum(seen.values())} requests: " + ", ".join(f"{p} {s}: {n}" for (p, s), n in sorted(seen.items())))
    assert sum(seen.values()) >= 3 * MAX_EXAMPLES // 2
    assert not problems, "\n".join(f"{kind} ({len(ex)}x), e.g. {ex[0]}" for kind, ex in problems.items())
    assert httpx.get(f"{server}/health", timeout=30).status_code == 200
