"""HTTP serving: a FastAPI app over one model, with dynamic micro-batching, limits, an API key and metrics.

Endpoints: POST /v1/embeddings (OpenAI-compatible), POST /predict, POST /similarity,
GET /info, GET /health, GET /metrics (Prometheus text), GET /v1/models.

FastAPI, pydantic and uvicorn are imported inside functions, so `import polyhead.serving` (and
`polyhead serve` without the `serve` extra) fails with a one-line message, not a traceback.
"""
# No `from __future__ import annotations` here: FastAPI reads the request models from the
# route functions' annotations at runtime, and those models are built inside create_app.
import asyncio
import base64
import collections
import hmac
import json
import logging
import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .. import __version__
from ..errors import PolyheadError

logger = logging.getLogger("polyhead.serving")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Paths that answer without an API key: liveness probes must work without secrets, and the
# playground page and its assets are static files (the page asks for the key itself).
OPEN_PATHS = ("/health", "/")
OPEN_PREFIXES = ("/static/",)
STATIC_DIR = Path(__file__).parent / "static"
STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml", ".ico": "image/x-icon"}
KNOWN_PATHS = (
    "/v1/embeddings",
    "/v1/models",
    "/predict",
    "/similarity",
    "/info",
    "/health",
    "/metrics",
    "/",
    "/docs",
    "/openapi.json",
    "/training/metrics",
    "/training/curves.png",
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
BODY_METHODS = ("POST", "PUT", "PATCH")
BATCHED_PATHS = ("/v1/embeddings", "/predict", "/similarity")
_EXPECTED = "polyhead.expected"  # scope key: this request is counted in MicroBatcher._expected


# -- settings -----------------------------------------------------------------------------
@dataclass
class ServeSettings:
    """Everything the app needs besides the model: batching, limits, API key, names."""

    max_batch_size: int = 64  # most texts in one model call, summed over the requests in it
    max_wait_ms: float = 5.0  # longest time the first request of a batch waits for company
    max_texts: int = 256  # most texts in one request
    max_chars: int = 20000  # most characters in one text
    max_body_bytes: int = 4_000_000  # largest request body, checked before parsing
    api_key: Optional[str] = None  # when set, every path but OPEN_PATHS needs it
    model_name: Optional[str] = None  # shown in /info and echoed when a request names none
    model_dir: Optional[str] = None  # the served folder: its training/ results appear under /training/
    backend: str = "torch"
    # Texts per forward pass inside one model call: the model sorts a batch by length and
    # pads each chunk to its own longest text. Kept apart from max_batch_size so that
    # `--max-batch-size 1` (no cross-request batching) still runs a many-text request fast.
    forward_batch_size: int = 64

    def validate(self) -> None:
        """Raise PolyheadError for values that cannot work."""
        for name in ("max_batch_size", "max_texts", "max_chars", "forward_batch_size"):
            if int(getattr(self, name)) < 1:
                raise PolyheadError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise PolyheadError(f"max-wait-ms must be 0 or more, got {self.max_wait_ms}")
        if self.max_body_bytes < 1024:
            raise PolyheadError(f"max-body-bytes must be at least 1024, got {self.max_body_bytes}")


# -- errors -------------------------------------------------------------------------------
class ApiError(Exception):
    """An error answered as JSON {"error": {message, type, param, code}} with an HTTP status."""

    def __init__(
        self, status: int, message: str, type_: str = "invalid_request_error", param: Optional[str] = None, code: Optional[str] = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The JSON body, shaped like the OpenAI API's errors."""
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type_: str = "invalid_request_error", param: Optional[str] = None, code: Optional[str] = None) -> dict[str, Any]:
    """The one error shape every 4xx/5xx uses: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "limit_exceeded",
    415: "invalid_request_error",
    422: "invalid_request_error",
    503: "server_unavailable",
}


async def _send_json(send: Callable, status: int, body: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer straight from an ASGI middleware (before the app has parsed anything)."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": payload})


# -- metrics ------------------------------------------------------------------------------
class Metrics:
    """A tiny Prometheus registry: labelled counters, gauges and fixed-bucket histograms.

    Written here rather than with prometheus_client to keep the serve extra at two packages;
    render() emits the text exposition format (version 0.0.4) that Prometheus scrapes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._meta: dict[str, tuple[str, str, tuple, bool]] = {}  # name -> (type, help, buckets, labelled)
        self._values: dict[str, dict[tuple, Any]] = {}

    def register(self, name: str, kind: str, help_: str, buckets: Sequence[float] = (), labelled: bool = False) -> None:
        """Declare a metric family (counter, gauge or histogram)."""
        self._meta[name] = (kind, help_, tuple(buckets), labelled)
        self._values[name] = {}

    def inc(self, name: str, labels: Optional[dict[str, str]] = None, value: float = 1.0) -> None:
        """Add to a counter (or gauge)."""
        key = _label_key(labels)
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0.0) + value

    def set(self, name: str, value: float, labels: Optional[dict[str, str]] = None) -> None:
        """Set a gauge."""
        with self._lock:
            self._values[name][_label_key(labels)] = float(value)

    def observe(self, name: str, value: float, labels: Optional[dict[str, str]] = None) -> None:
        """Record one observation in a histogram."""
        buckets = self._meta[name][2]
        key = _label_key(labels)
        with self._lock:
            series = self._values[name]
            h = series.get(key)
            if h is None:
                h = series[key] = {"counts": [0] * len(buckets), "sum": 0.0, "count": 0}
            for i, upper in enumerate(buckets):
                if value <= upper:
                    h["counts"][i] += 1
                    break
            h["sum"] += value
            h["count"] += 1

    def render(self) -> str:
        """The text exposition of every metric."""
        lines: list[str] = []
        with self._lock:
            for name, (kind, help_, buckets, labelled) in self._meta.items():
                lines.append(f"# HELP {name} {help_}")
                lines.append(f"# TYPE {name} {kind}")
                series = self._values[name]
                if kind == "histogram":
                    # An unlabelled histogram shows zeros before its first observation, so
                    # dashboards and tests see the family from the start.
                    if not series and not labelled:
                        series = {(): {"counts": [0] * len(buckets), "sum": 0.0, "count": 0}}
                    for key, h in sorted(series.items()):
                        cumulative = 0
                        for upper, n in zip(buckets, h["counts"]):
                            cumulative += n
                            lines.append(f"{name}_bucket{_labels_text(key, ('le', _num(upper)))} {cumulative}")
                        lines.append(f"{name}_bucket{_labels_text(key, ('le', '+Inf'))} {h['count']}")
                        lines.append(f"{name}_sum{_labels_text(key)} {_num(h['sum'])}")
                        lines.append(f"{name}_count{_labels_text(key)} {h['count']}")
                else:
                    for key, value in sorted(series.items()):
                        lines.append(f"{name}{_labels_text(key)} {_num(value)}")
        return "\n".join(lines) + "\n"


def _label_key(labels: Optional[dict[str, str]]) -> tuple:
    return tuple(sorted((labels or {}).items()))


def _labels_text(key: tuple, extra: Optional[tuple[str, str]] = None) -> str:
    pairs = list(key) + ([extra] if extra else [])
    if not pairs:
        return ""
    esc = lambda v: str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")  # noqa: E731
    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in pairs) + "}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def build_metrics(model_name: str, backend: str) -> Metrics:
    """The registry with every polyhead_* family declared."""
    m = Metrics()
    m.register("polyhead_requests_total", "counter", "HTTP requests answered, by path, method and status code.")
    m.register("polyhead_request_duration_seconds", "histogram", "Time from request start to the end of the response, by path.", LATENCY_BUCKETS, labelled=True)
    m.register("polyhead_requests_in_flight", "gauge", "HTTP requests being handled now.")
    m.register("polyhead_texts_total", "counter", "Texts processed, by endpoint.")
    m.register("polyhead_batch_texts", "histogram", "Texts per model call (one micro-batch).", BATCH_BUCKETS)
    m.register("polyhead_batch_requests", "histogram", "Requests merged into one model call (one micro-batch).", BATCH_BUCKETS)
    m.register("polyhead_batch_duration_seconds", "histogram", "Time spent in the model per micro-batch.", LATENCY_BUCKETS)
    m.register("polyhead_queue_wait_seconds", "histogram", "Time a request waited before its micro-batch started.", LATENCY_BUCKETS)
    m.register("polyhead_info", "gauge", "Constant 1, labelled with the served model, backend and polyhead version.")
    m.set("polyhead_info", 1, {"model": model_name, "backend": backend, "version": __version__})
    m.set("polyhead_requests_in_flight", 0)
    return m


# -- the model behind the server ----------------------------------------------------------
def as_servable(obj: Any) -> Any:
    """The object the server calls: a model with predict/encode as is, a bare Encoder wrapped."""
    if hasattr(obj, "predict") and hasattr(obj, "encode") and hasattr(obj, "tasks"):
        return obj
    if hasattr(obj, "encode") and hasattr(obj, "tokenizer"):
        from ..modeling.model import MultiTaskModel

        return MultiTaskModel(obj, [])  # a model with no heads: embeddings, similarity, info
    raise PolyheadError(f"cannot serve a {type(obj).__name__}: it needs encode() (and predict()/tasks for heads)")


def _find_encoder(model: Any) -> Any:
    return getattr(model, "encoder", None)


def _tokenizer_of(model: Any) -> Any:
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        tok = getattr(_find_encoder(model), "tokenizer", None)
    return tok


def _task_attr(spec: Any, name: str, default: Any = None) -> Any:
    return spec.get(name, default) if isinstance(spec, dict) else getattr(spec, name, default)


def describe_model(model: Any) -> dict[str, Any]:
    """Static facts for /info: dimensions, pooling, precision, device, max length, tasks."""
    try:
        info = model.info() if hasattr(model, "info") else {}
    except Exception:  # an info() failure must not stop the server from starting
        info = {}
    enc_info = dict(info.get("encoder", {}) or {})
    enc = _find_encoder(model)
    dim = enc_info.get("dim") or getattr(enc, "dim", None) or getattr(model, "dim", None)
    if not dim:
        dim = int(np.asarray(model.encode(["dimension probe"])).shape[-1])
    device = getattr(enc, "device", None) or getattr(model, "device", None)
    tasks = []
    for name, spec in (getattr(model, "tasks", None) or {}).items():
        entry = {"name": name, "kind": _task_attr(spec, "kind"), "labels": list(_task_attr(spec, "labels", []) or [])}
        if entry["kind"] == "similarity":
            entry["score_range"] = list(_task_attr(spec, "score_range", (0.0, 1.0)))
        tasks.append(entry)
    return {
        "dimensions": int(dim),
        "max_length": enc_info.get("max_length", getattr(enc, "max_length", None)),
        "pooling": enc_info.get("pooling"),
        "normalize": enc_info.get("normalize"),
        "precision": enc_info.get("precision", getattr(enc, "precision", getattr(model, "precision", None))),
        "device": str(device) if device is not None else None,
        "encoder": enc_info.get("name_or_path", getattr(enc, "name_or_path", None)),
        "parameters": info.get("parameters"),
        "tasks": tasks,
    }


# -- micro-batching -----------------------------------------------------------------------
@dataclass
class _Job:
    texts: list[str]
    tasks: tuple[str, ...]  # heads this request wants (empty: embeddings only)
    embeddings: bool
    count_tokens: bool
    future: "asyncio.Future[JobResult]"
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class JobResult:
    """One request's share of a micro-batch, in its own text order."""

    embeddings: list[Optional[np.ndarray]]
    tasks: list[dict[str, Any]]
    tokens: Optional[list[int]] = None


class MicroBatcher:
    """Merges concurrent requests into one model call: an asyncio queue and a single worker.

    The worker takes the first waiting request, then keeps adding requests until the batch
    holds max_batch_size texts or max_wait_ms have passed, and runs the model once, in one
    dedicated thread. One worker thread means torch is never called concurrently (no lock
    contention, no oversubscribed cores), and while it runs, the next batch fills up.

    The queue is a deque plus an asyncio.Event rather than an asyncio.Queue: on Python < 3.12,
    wait_for(queue.get(), timeout) can lose an item when the timeout and a put coincide.
    """

    def __init__(
        self,
        model: Any,
        max_batch_size: int = 64,
        max_wait_ms: float = 5.0,
        forward_batch_size: int = 64,
        metrics: Optional[Metrics] = None,
        early_start: bool = False,
    ) -> None:
        self.model = model
        self.early_start = bool(early_start)
        self.max_batch_size = int(max_batch_size)
        self.max_wait = float(max_wait_ms) / 1000.0
        self.forward_batch_size = int(forward_batch_size)
        self.metrics = metrics
        self.tokenizer = _tokenizer_of(model)
        self.max_length = getattr(_find_encoder(model), "max_length", None) or getattr(model, "max_length", None)
        self._pending: collections.deque[_Job] = collections.deque()
        self._wakeup: Optional[asyncio.Event] = None
        self._task: Optional[asyncio.Task] = None
        self._executor: Optional[ThreadPoolExecutor] = None
        self._accepting = False
        # Requests received (body being read, parsed, validated) that have not submitted yet,
        # as reported through expect()/unexpect(). With early_start, a batch stops waiting
        # as soon as there are none: waiting for company that is not on its way only adds
        # latency (a lone client would pay max_wait_ms on every request).
        self._expected = 0

    def expect(self, scope: dict) -> None:
        """Note a request that will probably submit texts soon (called as it arrives)."""
        scope[_EXPECTED] = True
        self._expected += 1

    def unexpect(self, scope: dict) -> None:
        """The request submitted, or finished without submitting."""
        if scope.pop(_EXPECTED, False):
            self._expected -= 1

    @property
    def pending_texts(self) -> int:
        """Texts waiting for the next batch."""
        return sum(len(j.texts) for j in self._pending)

    async def start(self) -> None:
        """Start the worker in the running event loop."""
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="polyhead-model")
        self._accepting = True
        self._task = asyncio.get_running_loop().create_task(self._worker(), name="polyhead-microbatcher")

    async def stop(self) -> None:
        """Stop taking work, fail whatever still waits, and end the worker."""
        self._accepting = False
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        while self._pending:
            job = self._pending.popleft()
            if not job.future.done():
                job.future.set_exception(ApiError(503, "the server is shutting down", "server_unavailable"))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def submit(
        self,
        texts: Sequence[str],
        tasks: Sequence[str] = (),
        embeddings: bool = True,
        count_tokens: bool = False,
        scope: Optional[dict] = None,
    ) -> JobResult:
        """Queue texts for the next batch and wait for their results."""
        if scope is not None:
            self.unexpect(scope)
        if not self._accepting or self._wakeup is None:
            raise ApiError(503, "the server is not accepting work (starting up or shutting down)", "server_unavailable")
        future: asyncio.Future[JobResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Job(list(texts), tuple(tasks), bool(embeddings), bool(count_tokens), future))
        self._wakeup.set()
        return await future

    async def _next_batch(self) -> list[_Job]:
        assert self._wakeup is not None
        while not self._pending:
            self._wakeup.clear()
            await self._wakeup.wait()
        loop = asyncio.get_running_loop()
        batch = [self._pending.popleft()]
        size = len(batch[0].texts)
        deadline = loop.time() + self.max_wait
        try:
            while size < self.max_batch_size:
                if self._pending:
                    nxt = self._pending[0]
                    if size + len(nxt.texts) > self.max_batch_size:
                        break  # it leads the next batch; requests are never split
                    batch.append(self._pending.popleft())
                    size += len(nxt.texts)
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0 or (self.early_start and self._expected <= 0):
                    break  # waited long enough, or no other request is on its way
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
        except asyncio.CancelledError:
            # Stopped while collecting: put the jobs back so stop() answers them (503).
            self._pending.extendleft(reversed(batch))
            raise
        # A request whose client went away is dropped before it costs compute.
        return [j for j in batch if not j.future.done()]

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self.run_batch, batch)
            except asyncio.CancelledError:
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(ApiError(503, "the server is shutting down", "server_unavailable"))
                raise
            except Exception as exc:  # the model failed: fail this batch, keep serving
                logger.exception("model call failed for a batch of %d requests", len(batch))
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            for job, result in zip(batch, results):
                if not job.future.done():
                    job.future.set_result(result)
            if self.metrics is not None:
                m = self.metrics
                m.observe("polyhead_batch_texts", sum(len(j.texts) for j in batch))
                m.observe("polyhead_batch_requests", len(batch))
                m.observe("polyhead_batch_duration_seconds", time.perf_counter() - started)
                for job in batch:
                    m.observe("polyhead_queue_wait_seconds", started - job.enqueued)

    def run_batch(self, jobs: Sequence[_Job]) -> list[JobResult]:
        """Run one model call for every job's texts (in the worker thread) and split the results."""
        texts = [t for job in jobs for t in job.texts]
        wanted: list[str] = []
        for job in jobs:
            wanted += [t for t in job.tasks if t not in wanted]
        need_embeddings = any(job.embeddings for job in jobs)
        embs: list[Optional[np.ndarray]]
        if wanted:
            # One forward pass serves every head any request in the batch asked for.
            preds = self.model.predict(texts, tasks=wanted, batch_size=self.forward_batch_size, embeddings=need_embeddings)
            embs = [p.get("embedding") for p in preds]
            heads = [p.get("tasks", {}) for p in preds]
        elif need_embeddings:
            # No heads wanted: encode() skips character offsets and head decoding.
            arr = np.asarray(self.model.encode(texts, batch_size=self.forward_batch_size))
            embs = list(arr)
            heads = [{} for _ in texts]
        else:
            embs = [None] * len(texts)
            heads = [{} for _ in texts]
        counted = [t for job in jobs if job.count_tokens for t in job.texts]
        counts = iter(self.count_tokens(counted)) if counted else iter(())
        out: list[JobResult] = []
        start = 0
        for job in jobs:
            end = start + len(job.texts)
            out.append(
                JobResult(
                    embeddings=[e if job.embeddings else None for e in embs[start:end]],
                    tasks=[{name: h[name] for name in job.tasks if name in h} for h in heads[start:end]],
                    tokens=[next(counts) for _ in job.texts] if job.count_tokens else None,
                )
            )
            start = end
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens the model reads per text (special tokens included, truncated at max_length)."""
        if self.tokenizer is None:
            return [len(t.split()) for t in texts]  # no tokenizer exposed: a word count
        kwargs: dict[str, Any] = {"truncation": True, "max_length": self.max_length} if self.max_length else {}
        ids = self.tokenizer(list(texts), **kwargs)["input_ids"]
        return [len(x) for x in ids]


# -- ASGI middlewares (pure ASGI: they answer before FastAPI parses the body) -------------
class MetricsMiddleware:
    """Counts requests by path/method/status and times them, including those refused early."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        # Unknown paths share one label, so a scanner cannot grow the label set without bound.
        path = path if path in KNOWN_PATHS else ("/static" if path.startswith("/static/") else "other")
        started = time.perf_counter()
        status = {"code": 500}
        self.metrics.inc("polyhead_requests_in_flight")

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.inc("polyhead_requests_in_flight", value=-1)
            self.metrics.inc("polyhead_requests_total", {"path": path, "method": scope.get("method", ""), "status": str(status["code"])})
            self.metrics.observe("polyhead_request_duration_seconds", time.perf_counter() - started, {"path": path})


class ArrivalMiddleware:
    """Tells the batcher a request for the model has arrived, before its body is even read."""

    def __init__(self, app: Any, batcher: "MicroBatcher") -> None:
        self.app = app
        self.batcher = batcher

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in BATCHED_PATHS:
            await self.app(scope, receive, send)
            return
        self.batcher.expect(scope)
        try:
            await self.app(scope, receive, send)
        finally:
            self.batcher.unexpect(scope)  # refused, failed or answered without submitting


class ApiKeyMiddleware:
    """Requires the key as `Authorization: Bearer KEY` or `X-API-Key: KEY` (except OPEN_PATHS)."""

    def __init__(self, app: Any, api_key: str) -> None:
        self.app = app
        self.key = api_key.encode()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope.get("headers", []):
            if name == b"x-api-key":
                given = value.strip()
            elif name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
        # compare_digest: the time taken says nothing about how much of the key matched.
        if given is not None and hmac.compare_digest(given, self.key):
            await self.app(scope, receive, send)
            return
        message = "missing API key: send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'" if given is None else "invalid API key"
        await _send_json(
            send,
            401,
            error_body(message, "authentication_error", None, "missing_api_key" if given is None else "invalid_api_key"),
            [(b"www-authenticate", b"Bearer")],
        )


class BodyLimitMiddleware:
    """Refuses bodies over max_body_bytes with 413, by Content-Length and by the bytes actually sent.

    The body is read (up to the limit) and replayed to the app, so a chunked upload without a
    Content-Length cannot make the server buffer more than the limit either.
    """

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self.limit = int(max_body_bytes)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("method") not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, error_body("Content-Length is not a number", param="Content-Length"))
                    return
        if declared is not None and declared > self.limit:
            await self._too_large(send, declared)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(send, None)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as ASGI expects

        await self.app(scope, replay, send)

    async def _too_large(self, send: Callable, declared: Optional[int]) -> None:
        size = f"{declared} bytes" if declared is not None else "more bytes than that"
        await _send_json(
            send,
            413,
            error_body(
                f"request body too large: the limit is {self.limit} bytes (--max-body-bytes), this one has {size}",
                "limit_exceeded",
                "body",
                "max_body_bytes",
            ),
        )


# -- the app ------------------------------------------------------------------------------
def _schemas() -> Any:
    """The pydantic request models (built lazily so the module imports without pydantic)."""
    from types import SimpleNamespace

    from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

    class EmbeddingsRequest(BaseModel):
        # OpenAI clients send fields this server does not use (user, future options): accepted.
        model_config = ConfigDict(extra="allow")
        input: Any = Field(..., description="a string or a list of strings")
        model: Optional[StrictStr] = None
        encoding_format: Optional[str] = "float"
        dimensions: Optional[int] = None
        user: Optional[str] = None

        @field_validator("input")
        @classmethod
        def _input(cls, v: Any) -> list[str]:
            if isinstance(v, str):
                return [v]
            if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
                return v
            if isinstance(v, list) and not v:
                raise ValueError("must hold at least one string")
            if isinstance(v, list) and all(isinstance(x, int) or (isinstance(x, list) and all(isinstance(y, int) for y in x)) for x in v):
                raise ValueError("token ids are not supported: send text, as a string or a list of strings")
            raise ValueError("must be a string or a list of strings")

        @field_validator("encoding_format")
        @classmethod
        def _format(cls, v: Optional[str]) -> str:
            if v in (None, "float", "base64"):
                return v or "float"
            raise ValueError("must be 'float' or 'base64'")

    class PredictRequest(BaseModel):
        # Typos ("task" for "tasks") must fail loudly rather than silently run every head.
        model_config = ConfigDict(extra="forbid")
        texts: list[StrictStr] = Field(..., min_length=1, description="the texts to run every (or each chosen) head on")
        tasks: Optional[list[StrictStr]] = Field(None, description="head names; default: every classification/token head")
        embeddings: StrictBool = Field(True, description="include each text's sentence embedding")

    class SimilarityRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        pairs: list[tuple[StrictStr, StrictStr]] = Field(..., min_length=1, description="[[text_a, text_b], ...]")

    return SimpleNamespace(EmbeddingsRequest=EmbeddingsRequest, PredictRequest=PredictRequest, SimilarityRequest=SimilarityRequest)


def _loc_text(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def validation_error_response(errors: Sequence[dict]) -> tuple[int, dict[str, Any]]:
    """Turn pydantic/FastAPI validation errors into (status, OpenAI-like error body)."""
    errors = list(errors)
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        loc = first.get("loc", ())
        pos = loc[1] if len(loc) > 1 else "?"
        detail = (first.get("ctx") or {}).get("error", "JSON decode error")
        return 400, error_body(f"malformed JSON in the request body at character {pos}: {detail}", param="body", code="malformed_json")
    if tuple(first.get("loc", ())) == ("body",) and isinstance(first.get("input"), (bytes, bytearray)):
        return 415, error_body("the request body must be JSON sent with 'Content-Type: application/json'", param="body", code="unsupported_media_type")
    if tuple(first.get("loc", ())) == ("body",) and first.get("type") == "missing":
        return 422, error_body("the request has no body: send a JSON object", param="body", code="missing_body")
    messages = []
    for err in errors[:5]:
        where = _loc_text(err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err.get("type") == "extra_forbidden":
            messages.append(f"unknown field {where!r}")
        elif err.get("type") == "missing":
            messages.append(f"{where}: field required")
        elif where == "body":
            messages.append(f"the request body must be a JSON object ({msg})")
        else:
            messages.append(f"{where}: {msg}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return 422, error_body("; ".join(messages) + more, param=_loc_text(first.get("loc", ())), code="invalid_value")


def create_app(model_or_encoder: Any, settings: Optional[ServeSettings] = None) -> Any:
    """The FastAPI app serving one model (a MultiTaskModel, an Encoder, or any object with the same API)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    settings = settings or ServeSettings()
    settings.validate()
    model = as_servable(model_or_encoder)
    facts = describe_model(model)
    model_name = settings.model_name or Path(str(facts.get("encoder") or "polyhead")).name
    metrics = build_metrics(model_name, settings.backend)
    batcher = MicroBatcher(model, settings.max_batch_size, settings.max_wait_ms, settings.forward_batch_size, metrics, early_start=True)
    task_specs = {t["name"]: t for t in facts["tasks"]}
    default_tasks = [name for name, t in task_specs.items() if t["kind"] != "similarity"]
    similarity_tasks = [t for t in facts["tasks"] if t["kind"] == "similarity"]
    S = _schemas()

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="polyhead",
        version=__version__,
        description="Multi-task sentence transformer: embeddings and every task head from one forward pass.",
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    app.state.metrics = metrics
    app.state.settings = settings
    app.state.model = model
    app.state.facts = facts

    # -- error handlers: every error body is {"error": {...}}, never FastAPI's {"detail": ...}
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, body = validation_error_response(exc.errors())
        return JSONResponse(body, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path} (see GET /info for the endpoints)"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        kind = _STATUS_TYPES.get(exc.status_code, "server_error" if exc.status_code >= 500 else "invalid_request_error")
        return JSONResponse(error_body(message, kind), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(PolyheadError)
    async def _polyhead_error(request: Request, exc: PolyheadError) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), status_code=422)

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return JSONResponse(error_body(f"internal error: {type(exc).__name__}", "server_error"), status_code=500)

    # Outermost last: metrics see every answer, auth runs before the body is read, the body
    # limit runs before FastAPI parses anything.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    if settings.api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key)
    app.add_middleware(ArrivalMiddleware, batcher=batcher)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    def check_limits(texts: Sequence[str], param: Callable[[int], str]) -> None:
        n = len(texts)
        if n > settings.max_texts:
            raise ApiError(
                413,
                f"too many texts: {n} in one request, the limit is {settings.max_texts} (--max-texts)",
                "limit_exceeded",
                param(-1),
                "max_texts",
            )
        for i, text in enumerate(texts):
            if len(text) > settings.max_chars:
                raise ApiError(
                    413,
                    f"{param(i)} has {len(text)} characters, the limit is {settings.max_chars} (--max-chars)",
                    "limit_exceeded",
                    param(i),
                    "max_chars",
                )

    def check_tasks(tasks: Optional[Sequence[str]]) -> list[str]:
        if tasks is None:
            return list(default_tasks)
        chosen = list(dict.fromkeys(tasks))
        if chosen and not task_specs:
            raise ApiError(422, "this server has no task heads (it serves a bare encoder): leave out 'tasks' for embeddings only", param="tasks", code="no_tasks")
        unknown = [t for t in chosen if t not in task_specs]
        if unknown:
            raise ApiError(
                422,
                f"unknown task(s) {', '.join(map(repr, unknown))}; this model has {', '.join(task_specs)}",
                param="tasks",
                code="unknown_task",
            )
        pair_tasks = [t for t in chosen if task_specs[t]["kind"] == "similarity"]
        if pair_tasks:
            raise ApiError(
                422,
                f"task(s) {', '.join(map(repr, pair_tasks))} score pairs of texts: use POST /similarity",
                param="tasks",
                code="pair_task",
            )
        return chosen

    # -- endpoints ----------------------------------------------------------------------
    @app.post("/v1/embeddings")
    async def embeddings(body: S.EmbeddingsRequest, request: Request) -> JSONResponse:  # type: ignore[name-defined]
        """OpenAI-compatible embeddings: input is a string or a list of strings."""
        texts: list[str] = body.input
        check_limits(texts, lambda i: "input" if i < 0 else f"input[{i}]")
        if body.dimensions is not None and body.dimensions != facts["dimensions"]:
            raise ApiError(
                422,
                f"dimensions={body.dimensions} is not available: this model's embeddings have {facts['dimensions']} dimensions",
                param="dimensions",
                code="invalid_value",
            )
        result = await batcher.submit(texts, embeddings=True, count_tokens=True, scope=request.scope)
        metrics.inc("polyhead_texts_total", {"endpoint": "/v1/embeddings"}, len(texts))
        data = []
        for i, vec in enumerate(result.embeddings):
            vec = np.asarray(vec, dtype=np.float32)
            value: Any = base64.b64encode(vec.astype("<f4").tobytes()).decode() if body.encoding_format == "base64" else vec.tolist()
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(result.tokens or [])
        return JSONResponse(
            {"object": "list", "data": data, "model": body.model or model_name, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        )

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        """The one served model, in the OpenAI list shape."""
        return JSONResponse({"object": "list", "data": [{"id": model_name, "object": "model", "created": 0, "owned_by": "polyhead"}]})

    @app.post("/predict")
    async def predict(body: S.PredictRequest, request: Request) -> JSONResponse:  # type: ignore[name-defined]
        """Every head's output (or the chosen heads') for each text, plus its embedding."""
        check_limits(body.texts, lambda i: "texts" if i < 0 else f"texts[{i}]")
        chosen = check_tasks(body.tasks)
        result = await batcher.submit(body.texts, tasks=chosen, embeddings=body.embeddings, scope=request.scope)
        metrics.inc("polyhead_texts_total", {"endpoint": "/predict"}, len(body.texts))
        items = []
        for text, vec, heads in zip(body.texts, result.embeddings, result.tasks):
            item: dict[str, Any] = {"text": text}
            if body.embeddings:
                item["embedding"] = np.asarray(vec, dtype=np.float32).tolist()
            item["tasks"] = heads
            items.append(item)
        return JSONResponse({"model": model_name, "results": items})

    @app.post("/similarity")
    async def similarity(body: S.SimilarityRequest, request: Request) -> JSONResponse:  # type: ignore[name-defined]
        """Cosine similarity per pair, and each similarity head's score on its own scale."""
        firsts = [a for a, _ in body.pairs]
        seconds = [b for _, b in body.pairs]
        texts = firsts + seconds
        n = len(body.pairs)
        check_limits(texts, lambda i: "pairs" if i < 0 else f"pairs[{i % n}][{i // n}]")
        result = await batcher.submit(texts, embeddings=True, scope=request.scope)
        metrics.inc("polyhead_texts_total", {"endpoint": "/similarity"}, len(texts))
        vecs = np.stack([np.asarray(v, dtype=np.float32) for v in result.embeddings])
        # Normalised here whatever the encoder's own setting: similarity is always cosine.
        vecs = vecs / np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)
        cos = (vecs[:n] * vecs[n:]).sum(axis=1)
        heads = {}
        for t in similarity_tasks:
            # Training maps gold scores onto [0, 1] cosine targets; this is the inverse, clipped
            # because a cosine below 0 has no meaning on a 0-5 scale.
            low, high = t["score_range"]
            heads[t["name"]] = [float(np.clip(low + c * (high - low), low, high)) for c in cos]
        return JSONResponse({"model": model_name, "scores": [float(c) for c in cos], "tasks": heads})

    @app.get("/info")
    async def info() -> JSONResponse:
        """Model, tasks, labels, dimensions, version, limits and batching settings."""
        return JSONResponse(
            {
                "model": model_name,
                "version": __version__,
                "backend": settings.backend,
                **facts,
                "limits": {"max_texts": settings.max_texts, "max_chars": settings.max_chars, "max_body_bytes": settings.max_body_bytes},
                "batching": {"max_batch_size": settings.max_batch_size, "max_wait_ms": settings.max_wait_ms},
                "auth": bool(settings.api_key),
                "endpoints": ["POST /v1/embeddings", "POST /predict", "POST /similarity", "GET /info", "GET /health", "GET /metrics", "GET /v1/models"],
            }
        )

    @app.get("/health")
    async def health() -> JSONResponse:
        """Liveness: 200 while the batching worker runs."""
        task = batcher._task
        ok = task is not None and not task.done()
        return JSONResponse({"status": "ok" if ok else "unavailable", "queued_texts": batcher.pending_texts}, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics_endpoint() -> PlainTextResponse:
        """Prometheus text exposition."""
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    async def index() -> Any:
        """The playground page (polyhead/static/playground.html) if installed, else a pointer to /info."""
        page = STATIC_DIR / "playground.html"
        if page.is_file():
            return HTMLResponse(page.read_text(encoding="utf-8"))
        return JSONResponse({"name": "polyhead", "version": __version__, "model": model_name, "see": "GET /info"})

    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Any:
        """A file of the playground page: a plain name inside polyhead/static, known types only."""
        path = STATIC_DIR / name
        # A bare file name (no '/' or '..' can reach here through the route) of a known type.
        if name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
            raise ApiError(404, f"no such file: /static/{name}", "not_found_error")
        return FileResponse(path, media_type=STATIC_TYPES[path.suffix])

    def training_file(name: str) -> Path:
        folder = Path(settings.model_dir) / "training" if settings.model_dir else None
        if folder is None or not (folder / name).is_file():
            raise ApiError(404, f"this model folder has no training/{name} (it was not trained with polyhead train)", "not_found_error")
        return folder / name

    @app.get("/training/metrics")
    async def training_metrics() -> JSONResponse:
        """MODEL_DIR/training/metrics.json: the evaluation written by `polyhead train`."""
        try:
            data = json.loads(training_file("metrics.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ApiError(404, f"training/metrics.json is unreadable: {exc}", "not_found_error") from None
        return JSONResponse(data)

    @app.get("/training/curves.png")
    async def training_curves() -> Any:
        """MODEL_DIR/training/curves.png: the training curves plot."""
        return FileResponse(training_file("curves.png"), media_type="image/png")

    return app


# -- running it ---------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def security_warning(host: str, api_key: Optional[str]) -> Optional[str]:
    """The start-up warning for a server reachable from other machines without a key, if any."""
    if is_loopback(host) or api_key:
        return None
    return (
        f"listening on {host} without an API key: anyone who can reach this port can use the model; "
        "set --api-key or POLYHEAD_API_KEY"
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready socket on host:port (port 0 picks a free one), with a one-line error on failure."""
    if not 0 <= int(port) <= 65535:
        raise PolyheadError(f"port must be between 0 and 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise PolyheadError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    family, socktype, proto, _, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise PolyheadError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def settings_from_args(args: Any) -> ServeSettings:
    """ServeSettings from the `polyhead serve` arguments (and POLYHEAD_API_KEY)."""
    settings = ServeSettings(
        max_batch_size=int(getattr(args, "max_batch_size", 64)),
        max_wait_ms=float(getattr(args, "max_wait_ms", 5.0)),
        max_texts=int(getattr(args, "max_texts", 256)),
        max_chars=int(getattr(args, "max_chars", 20000)),
        max_body_bytes=int(getattr(args, "max_body_bytes", 4_000_000)),
        api_key=getattr(args, "api_key", None) or os.environ.get("POLYHEAD_API_KEY") or None,
        backend=getattr(args, "backend", "torch") or "torch",
    )
    settings.validate()
    return settings


def load_for_serving(model_dir: Optional[str], backend: str = "torch", device: Optional[str] = None, precision: str = "auto") -> tuple[Any, str]:
    """Load what `polyhead serve` serves: (model, name). No folder: the bundled encoder."""
    if backend == "onnx":
        if not model_dir:
            raise PolyheadError("--backend onnx needs MODEL_DIR (an exported model: polyhead export MODEL_DIR)")
        try:
            from ..onnx.export import OnnxModel  # written separately; optional onnxruntime dependency
        except Exception as exc:  # ImportError, or onnxruntime missing underneath
            raise PolyheadError(f"--backend onnx is not available: {exc}") from None
        try:
            # MODEL_DIR or its onnx/ folder (where `polyhead export MODEL_DIR` writes by default).
            return OnnxModel.load(str(model_dir)), Path(model_dir).resolve().name
        except PolyheadError:
            raise
        except Exception as exc:
            raise PolyheadError(f"could not load the ONNX model from {model_dir}: {exc}") from None
    if backend != "torch":
        raise PolyheadError(f"unknown backend {backend!r}; choose torch or onnx")
    if not model_dir:
        from ..modeling.encoder import Encoder

        enc = Encoder(device=device, precision=precision)
        return as_servable(enc), "all-MiniLM-L6-v2"
    from ..modeling.model import load

    return load(model_dir, device=device, precision=precision), Path(model_dir).resolve().name


def _say(message: str) -> None:
    print(f"polyhead: {message}", file=sys.stderr, flush=True)


class _Stop(Exception):
    """Raised by the SIGTERM handler once uvicorn has shut down gracefully."""


def _run_until_signal(server: Any, sock: socket.socket) -> None:
    """Run uvicorn; Ctrl-C and SIGTERM end it cleanly (exit status 0, not 130 or -15).

    uvicorn shuts down gracefully on either signal and then re-raises it with the previous
    handlers restored; the handlers installed here turn that into a normal return.
    """
    import signal

    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None

    def _on_term(signum: int, frame: Any) -> None:
        raise _Stop()

    if main:
        signal.signal(signal.SIGTERM, _on_term)
    try:
        server.run(sockets=[sock])
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def run_server(args: Any) -> int:
    """`polyhead serve`: load the model, bind host:port, serve until interrupted."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise PolyheadError(f"polyhead serve needs fastapi and uvicorn ({exc}): pip install 'polyhead[serve]'") from None
    settings = settings_from_args(args)
    host = getattr(args, "host", "127.0.0.1") or "127.0.0.1"
    port = int(getattr(args, "port", 8000))
    sock = bind_socket(host, port)  # before the slow model load: a busy port fails at once
    try:
        precision = getattr(args, "precision", "auto") or "auto"
        model, name = load_for_serving(getattr(args, "model_dir", None), settings.backend, getattr(args, "device", None), precision)
        settings.model_name = name
        settings.model_dir = getattr(args, "model_dir", None)
        app = create_app(model, settings)
        facts = app.state.facts
        _say(
            f"precision {facts.get('precision') or 'as exported'} on {facts.get('device') or 'cpu'}"
            + (" (auto; use --precision fp32 for exact fp32)" if precision == "auto" and settings.backend == "torch" else "")
        )
        warning = security_warning(host, settings.api_key)
        if warning:
            _say(f"warning: {warning}")
        # A first call outside the server: pays one-time costs (allocator, kernels) before
        # the first client does.
        app.state.model.encode(["warm-up"], batch_size=1)
        tasks = ", ".join(t["name"] for t in facts["tasks"]) or "none (embeddings only)"
        bound = sock.getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        _say(
            f"serving {name} on http://{shown}:{bound[1]} (tasks: {tasks}; micro-batching: up to "
            f"{settings.max_batch_size} texts, {settings.max_wait_ms:g} ms; API key {'required' if settings.api_key else 'off'})"
        )
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=10)
        server = uvicorn.Server(config)
        _run_until_signal(server, sock)
    finally:
        sock.close()
    _say("server stopped")
    return 0


__all__ = [
    "ApiError",
    "Metrics",
    "MicroBatcher",
    "ServeSettings",
    "as_servable",
    "bind_socket",
    "create_app",
    "describe_model",
    "error_body",
    "load_for_serving",
    "run_server",
    "security_warning",
    "settings_from_args",
]
