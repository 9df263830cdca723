"""Overload over real HTTP: a bounded queue sheds load with 503 + Retry-After at once, a request
past its deadline gets a 503, /ready says whether to send traffic while /health stays alive, and
the rejections are counted in /metrics. The model is the tiny one, slowed down on purpose."""
from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from conftest import make_tiny_encoder  # noqa: E402
from serving_helpers import running  # noqa: E402

from polyhead import MultiTaskModel  # noqa: E402
from polyhead.serving import ServeSettings, create_app  # noqa: E402


def slow_model(first_seconds: float, then_seconds: float) -> MultiTaskModel:
    """The tiny model whose first model call takes `first_seconds`, the others `then_seconds`."""
    model = MultiTaskModel(make_tiny_encoder(), [])
    encode = model.encode
    calls = {"n": 0}
    lock = threading.Lock()

    def slow_encode(*args: Any, **kwargs: Any) -> Any:
        with lock:
            calls["n"] += 1
            first = calls["n"] == 1
        time.sleep(first_seconds if first else then_seconds)
        return encode(*args, **kwargs)

    model.encode = slow_encode  # type: ignore[method-assign]
    return model


@pytest.fixture
def busy_server() -> Iterator[str]:
    settings = ServeSettings(max_batch_size=2, max_wait_ms=0, max_queue_texts=4, request_timeout_s=20, model_name="busy")
    with running(create_app(slow_model(0.6, 0.6), settings)) as url:
        yield url


def test_past_the_queue_bound_requests_are_shed_at_once_and_ready_says_so(busy_server: str) -> None:
    with httpx.Client(base_url=busy_server, timeout=30) as http:
        assert http.get("/ready").status_code == 200

        def one(i: int) -> tuple[int, float, Any]:
            started = time.perf_counter()
            r = http.post("/v1/embeddings", json={"input": [f"text number {i}"]})
            return r.status_code, time.perf_counter() - started, r

        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(one, i) for i in range(16)]
            time.sleep(0.3)  # the queue is full now: 2 texts in the model, 4 waiting
            ready = http.get("/ready")
            started = time.perf_counter()
            health = http.get("/health")
            health_seconds = time.perf_counter() - started
            results = [f.result() for f in futures]
        codes = [c for c, _, _ in results]
        assert set(codes) <= {200, 503} and codes.count(200) >= 4 and codes.count(503) >= 4, codes
        for code, seconds, r in results:
            if code == 503:
                assert r.headers["Retry-After"] == "1"
                error = r.json()["error"]
                assert (error["type"], error["code"]) == ("server_unavailable", "overloaded") and "--max-queue-texts" in error["message"]
                assert seconds < 0.5  # refused at once, not after waiting in line
        assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
        assert health.status_code == 200 and health_seconds < 1.0  # alive while shedding
        assert http.get("/ready").status_code == 200  # the queue drained: ready again at once
        assert http.post("/v1/embeddings", json={"input": ["after the storm"]}).status_code == 200
        metrics = http.get("/metrics").text
        shed = [line for line in metrics.splitlines() if line.startswith('polyhead_rejected_total{reason="queue_full"}')]
        assert shed and float(shed[0].split()[-1]) == codes.count(503)
        assert "polyhead_queue_texts 0" in metrics


def test_a_request_past_its_deadline_gets_a_503_and_the_server_goes_on() -> None:
    settings = ServeSettings(max_wait_ms=0, request_timeout_s=0.3, model_name="slow")
    with running(create_app(slow_model(1.5, 0.0), settings)) as url, httpx.Client(base_url=url, timeout=30) as http:
        started = time.perf_counter()
        r = http.post("/v1/embeddings", json={"input": ["this one meets a slow model"]})
        assert r.status_code == 503 and time.perf_counter() - started < 1.2
        assert r.headers["Retry-After"] == "1" and r.json()["error"]["code"] == "deadline_exceeded"
        assert "not answered within 0.3 s" in r.json()["error"]["message"]
        time.sleep(1.5)  # the slow call ends; its result is dropped
        assert http.post("/v1/embeddings", json={"input": ["fast now"]}).status_code == 200
        assert 'polyhead_rejected_total{reason="deadline"} 1' in http.get("/metrics").text


def test_bad_overload_settings_are_one_line_errors() -> None:
    from polyhead.errors import PolyheadError

    with pytest.raises(PolyheadError, match="max-queue-texts must be at least 1"):
        ServeSettings(max_queue_texts=0).validate()
    with pytest.raises(PolyheadError, match="request-timeout must be more than 0"):
        ServeSettings(request_timeout_s=0).validate()


def test_a_request_that_would_wait_past_its_deadline_is_refused_at_once() -> None:
    # One text per 0.5 s: the model gets through about 2 texts a second, so with a 1 s deadline a
    # request behind 2 waiting texts cannot be answered in time and is refused at once.
    settings = ServeSettings(max_batch_size=1, max_wait_ms=0, max_queue_texts=1000, request_timeout_s=1.0, model_name="rate")
    with running(create_app(slow_model(0.5, 0.5), settings)) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/v1/embeddings", json={"input": ["warm up: the rate is measured"]}).status_code == 200

        def one(i: int) -> tuple[int, float, Any]:
            started = time.perf_counter()
            r = http.post("/v1/embeddings", json={"input": [f"text number {i}"]})
            return r.status_code, time.perf_counter() - started, r

        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(one, range(10)))
        codes = [c for c, _, _ in results]
        assert codes.count(200) >= 1 and codes.count(503) >= 5, codes
        for code, seconds, r in results:
            if code == 503:
                error = r.json()["error"]
                assert error["code"] == "overloaded" and "would take about" in error["message"], error
                assert seconds < 0.5  # refused at once, not after waiting out the deadline
        assert 'polyhead_rejected_total{reason="expected_wait"}' in http.get("/metrics").text


def test_the_model_thread_hands_freed_memory_back_at_most_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    from polyhead.serving import batcher as batcher_module

    calls: list[int] = []
    b = batcher_module.MicroBatcher(MultiTaskModel(make_tiny_encoder(), []))
    b._trim = calls.append  # glibc's malloc_trim(0) where there is one
    monkeypatch.setattr(batcher_module, "TRIM_INTERVAL_S", 0.2)
    b._trimmed = time.monotonic() - 1
    b.release_memory()
    b.release_memory()  # too soon after the first
    assert calls == [0]
    time.sleep(0.25)
    b.release_memory()
    assert calls == [0, 0]
    assert batcher_module._malloc_trim() is not None or not sys.platform.startswith("linux")
