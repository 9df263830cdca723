"""The route handlers: parse, check limits and task names, submit to the batcher, shape the answer.

Handlers never call the model themselves: texts go through the MicroBatcher, so requests that
arrive together share one forward pass.
"""
# No `from __future__ import annotations` here: FastAPI reads the request models from the
# route functions' annotations at runtime, and those models are built inside add_routes.
import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .. import __version__
from ..errors import PolyheadError
from ..io import read_json
from ..kinds import kind_of
from ..modeling.backend import decode_pairs
from .batcher import MicroBatcher
from .errors import ApiError
from .metrics import Metrics
from .schemas import build_schemas
from .settings import ENDPOINTS, STATIC_DIR, STATIC_TYPES, ServeSettings


@dataclass
class ServerContext:
    """What the handlers share: the settings, the model's facts, the batcher and the metrics."""

    settings: ServeSettings
    facts: dict[str, Any]
    model_name: str
    batcher: MicroBatcher
    metrics: Metrics
    specs: dict[str, Any] = field(default_factory=dict)  # task name -> TaskSpec (what pair decoding reads)
    pair_states: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # the pair heads' weights
    task_specs: dict[str, dict[str, Any]] = field(init=False)
    default_tasks: list[str] = field(init=False)
    similarity_tasks: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.task_specs = {t["name"]: t for t in self.facts["tasks"]}
        self.default_tasks = [name for name, t in self.task_specs.items() if kind_of(t["kind"]).per_text]
        self.similarity_tasks = [t for t in self.facts["tasks"] if kind_of(t["kind"]).cosine]

    def prompted(self, texts: list[str], prompt_name: Optional[str], *fallbacks: str) -> list[str]:
        """The texts with the model's prompt in front, as sentence-transformers' encode puts it: the
        named prompt, else the first of `fallbacks` the model has, else its default prompt."""
        prompts, default = self.facts.get("prompts") or {}, self.facts.get("default_prompt_name")
        if prompt_name is not None and prompt_name not in prompts:
            raise ApiError(422, f"unknown prompt_name {prompt_name!r}; this model has {', '.join(map(repr, prompts)) or 'no prompts'}",
                           param="prompt_name", code="invalid_value")
        name = prompt_name or next((f for f in fallbacks if f in prompts), None) or default
        text = prompts.get(name, "") if name else ""
        if text and not self.facts.get("include_prompt", True):
            raise ApiError(422, "this model's pooling leaves the prompt out (include_prompt=false), which the server "
                                "cannot do; embed with polyhead's Python API", param="prompt_name", code="unsupported")
        return [text + t for t in texts] if text else texts

    def check_limits(self, texts: Sequence[str], param: Callable[[int], str]) -> None:
        """Raise 413 for too many texts or a text over max_chars (param(i) names text i, param(-1) the list)."""
        settings = self.settings
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

    def check_tasks(self, tasks: Optional[Sequence[str]]) -> list[str]:
        """The heads a /predict request runs: its own list (checked) or every non-pair head."""
        if tasks is None:
            return list(self.default_tasks)
        chosen = list(dict.fromkeys(tasks))
        if chosen and not self.task_specs:
            raise ApiError(422, "this server has no task heads (it serves a bare encoder): leave out 'tasks' for embeddings only", param="tasks", code="no_tasks")
        unknown = [t for t in chosen if t not in self.task_specs]
        if unknown:
            raise ApiError(
                422,
                f"unknown task(s) {', '.join(map(repr, unknown))}; this model has {', '.join(self.task_specs)}",
                param="tasks",
                code="unknown_task",
            )
        pair_tasks = [t for t in chosen if not kind_of(self.task_specs[t]["kind"]).per_text]
        if pair_tasks:
            raise ApiError(
                422,
                f"task(s) {', '.join(map(repr, pair_tasks))} score pairs of texts: use POST /pairs (cosine scores: POST /similarity)",
                param="tasks",
                code="pair_task",
            )
        return chosen

    def training_file(self, name: str) -> Path:
        """MODEL_DIR/training/NAME, or a 404 for folders without training results."""
        folder = Path(self.settings.model_dir) / "training" if self.settings.model_dir else None
        if folder is None or not (folder / name).is_file():
            raise ApiError(404, f"this model folder has no training/{name} (it was not trained with polyhead train)", "not_found_error")
        return folder / name


def unit_rows(vecs: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length (an all-zero row stays zero)."""
    return vecs / np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)


def cosine_to_first(embeddings: Sequence[Any]) -> np.ndarray:
    """The cosine of embeddings[0] with each of embeddings[1:] (what /rerank scores by)."""
    vecs = unit_rows(np.stack([np.asarray(v, dtype=np.float32) for v in embeddings]))
    return vecs[1:] @ vecs[0]


def add_routes(app: Any, ctx: ServerContext) -> None:
    """Register every endpoint on app."""
    from fastapi import Request
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse

    S = build_schemas()
    settings, facts, model_name, batcher, metrics = ctx.settings, ctx.facts, ctx.model_name, ctx.batcher, ctx.metrics

    @app.post("/v1/embeddings", responses=S.errors(400, 401, 413, 415, 422, 503))
    async def embeddings(body: S.EmbeddingsRequest, request: Request) -> JSONResponse:  # type: ignore[name-defined]
        """OpenAI-compatible embeddings: input is a string or a list of strings."""
        texts: list[str] = body.input
        ctx.check_limits(texts, lambda i: "input" if i < 0 else f"input[{i}]")
        if body.dimensions is not None and body.dimensions != facts["dimensions"]:
            raise ApiError(
                422,
                f"dimensions={body.dimensions} is not available: this model's embeddings have {facts['dimensions']} dimensions",
                param="dimensions",
                code="invalid_value",
            )
        result = await batcher.submit(ctx.prompted(texts, body.prompt_name), embeddings=True, count_tokens=True, scope=request.scope)
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

    @app.get("/v1/models", responses=S.errors(401))
    async def models() -> JSONResponse:
        """The one served model, in the OpenAI list shape."""
        return JSONResponse({"object": "list", "data": [{"id": model_name, "object": "model", "created": 0, "owned_by": "polyhead"}]})

    @app.post("/predict", responses=S.errors(400, 401, 413, 415, 422, 503))
    async def predict(body: S.PredictRequest, request: Request) -> JSONResponse:  # type: ignore[name-defined]
        """Every head's output (or the chosen heads') for each text, plus its embedding."""
        ctx.check_limits(body.texts, lambda i: "texts" if i < 0 else f"texts[{i}]")
        chosen = ctx.check_tasks(body.tasks)
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

    async def embed_pairs(pairs: Sequence[Sequence[str]], request: Any, endpoint: str) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
        """Both texts of every pair embedded in one batcher job (limits checked, texts counted):
        (first texts, second texts, their embeddings as two float32 arrays)."""
        firsts = [a for a, _ in pairs]
        seconds = [b for _, b in pairs]
        texts = firsts + seconds
        n = len(pairs)
        ctx.check_limits(texts, lambda i: "pairs" if i < 0 else f"pairs[{i % n}][{i // n}]")
        result = await batcher.submit(texts, embeddings=True, scope=request.scope)
        metrics.inc("polyhead_texts_total", {"endpoint": endpoint}, len(texts))
        vecs = np.stack([np.asarray(v, dtype=np.float32) for v in result.embeddings])
        return firsts, seconds, vecs[:n], vecs[n:]

    @app.post("/similarity", responses=S.errors(400, 401, 413, 415, 422, 503))
    async def similarity(body: S.SimilarityRequest, request: Request) -> JSONResponse:  # type: ignore[name-defined]
        """Cosine similarity per pair, and each similarity head's score on its own scale."""
        _, _, a, b = await embed_pairs(body.pairs, request, "/similarity")
        # Normalised here whatever the encoder's own setting: similarity is always cosine.
        cos = (unit_rows(a) * unit_rows(b)).sum(axis=1)
        heads = {}
        for t in ctx.similarity_tasks:
            heads[t["name"]] = kind_of(t["kind"]).from_cosine(t, cos)
        return JSONResponse({"model": model_name, "scores": [float(c) for c in cos], "tasks": heads})

    @app.post("/pairs", responses=S.errors(400, 401, 413, 415, 422, 503))
    async def pairs(body: S.PairsRequest, request: Request) -> JSONResponse:  # type: ignore[name-defined]
        """Every (or each chosen) pair head's prediction per pair: pair classification (label and
        probabilities), similarity (score on its scale and cosine). Each text is encoded once."""
        names = [t for t, spec in ctx.specs.items() if kind_of(spec.kind).pairs] if body.tasks is None else list(dict.fromkeys(body.tasks))
        unknown = [t for t in names if t not in ctx.specs]
        if unknown:
            raise ApiError(422, f"unknown task(s) {', '.join(map(repr, unknown))}; this model has {', '.join(ctx.specs) or 'none'}",
                           param="tasks", code="unknown_task")
        single = [t for t in names if not kind_of(ctx.specs[t].kind).pairs]
        if single:
            raise ApiError(422, f"task(s) {', '.join(map(repr, single))} predict one text at a time: use POST /predict",
                           param="tasks", code="text_task")
        firsts, seconds, a, b = await embed_pairs(body.pairs, request, "/pairs")
        items = decode_pairs(ctx.specs, ctx.pair_states, names, firsts, a, seconds, b)
        return JSONResponse({"model": model_name, "results": items})

    @app.post("/rerank", responses=S.errors(400, 401, 413, 415, 422, 503))
    async def rerank(body: S.RerankRequest, request: Request) -> JSONResponse:  # type: ignore[name-defined]
        """Documents ranked by cosine similarity to the query (Cohere / text-embeddings-inference shape)."""
        texts = [body.query, *body.documents]
        ctx.check_limits(texts, lambda i: "documents" if i < 0 else ("query" if i == 0 else f"documents[{i - 1}]"))
        # Prompts as sentence-transformers' encode_query / encode_document choose them; the query
        # and the documents in one submit: one job, so they share a micro-batch.
        sent = ctx.prompted([body.query], None, "query") + ctx.prompted(list(body.documents), None, "document", "passage", "corpus")
        result = await batcher.submit(sent, embeddings=True, count_tokens=True, scope=request.scope)
        metrics.inc("polyhead_texts_total", {"endpoint": "/rerank"}, len(texts))
        scores = cosine_to_first(result.embeddings)
        order = sorted(range(len(body.documents)), key=lambda i: (-scores[i], i))  # ties: input order
        if body.top_n is not None:
            order = order[: body.top_n]
        results = []
        for i in order:
            item: dict[str, Any] = {"index": i, "relevance_score": float(scores[i])}
            if body.return_documents:
                item["document"] = {"text": body.documents[i]}
            results.append(item)
        tokens = sum(result.tokens or [])
        return JSONResponse({"model": body.model or model_name, "results": results, "usage": {"total_tokens": tokens}})

    @app.post("/embed", responses=S.errors(400, 401, 413, 415, 422, 503))
    async def embed(body: S.EmbedRequest, request: Request) -> JSONResponse:  # type: ignore[name-defined]
        """text-embeddings-inference's /embed: a list of vectors, one per input text."""
        texts: list[str] = body.inputs
        ctx.check_limits(texts, lambda i: "inputs" if i < 0 else f"inputs[{i}]")
        result = await batcher.submit(ctx.prompted(texts, body.prompt_name), embeddings=True, scope=request.scope)
        metrics.inc("polyhead_texts_total", {"endpoint": "/embed"}, len(texts))
        vecs = np.stack([np.asarray(v, dtype=np.float32) for v in result.embeddings])
        if body.normalize:
            vecs = unit_rows(vecs)
        return JSONResponse(vecs.tolist())

    @app.get("/info", responses=S.errors(401))
    async def info() -> JSONResponse:
        """Model, tasks, labels, dimensions, version, limits and batching settings."""
        return JSONResponse(
            {
                "model": model_name,
                "version": __version__,
                "backend": settings.backend,
                **facts,
                "limits": {"max_texts": settings.max_texts, "max_chars": settings.max_chars, "max_body_bytes": settings.max_body_bytes},
                "batching": {"max_batch_size": settings.max_batch_size, "max_wait_ms": settings.max_wait_ms,
                             "max_queue_texts": settings.max_queue_texts, "request_timeout_s": settings.request_timeout_s},
                "auth": bool(settings.api_key),
                "endpoints": ENDPOINTS,
            }
        )

    @app.get("/health")
    async def health() -> JSONResponse:
        """Liveness: 200 while the batching worker runs."""
        ok = batcher.running
        return JSONResponse({"status": "ok" if ok else "unavailable", "queued_texts": batcher.pending_texts}, status_code=200 if ok else 503)

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Readiness (for a load balancer): 200 while the model is loaded, the worker runs and its
        queue has room; 503 while starting, shutting down or full (then send traffic elsewhere)."""
        ok = batcher.ready
        body = {"status": "ready" if ok else "not_ready", "queued_texts": batcher.pending_texts, "max_queue_texts": settings.max_queue_texts}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", responses=S.errors(401))
    async def metrics_endpoint() -> PlainTextResponse:
        """Prometheus text exposition."""
        metrics.set("polyhead_queue_texts", batcher.pending_texts)
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    async def index() -> Any:
        """The playground page (serving/static/playground.html) if installed, else a pointer to /info."""
        page = STATIC_DIR / "playground.html"
        if page.is_file():
            return HTMLResponse(page.read_text(encoding="utf-8"))
        return JSONResponse({"name": "polyhead", "version": __version__, "model": model_name, "see": "GET /info"})

    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Any:
        """A file of the playground page: a plain name inside serving/static, known types only."""
        path = STATIC_DIR / name
        # A bare file name (no '/' or '..' can reach here through the route) of a known type.
        if name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
            raise ApiError(404, f"no such file: /static/{name}", "not_found_error")
        return FileResponse(path, media_type=STATIC_TYPES[path.suffix])

    @app.get("/training/metrics", responses=S.errors(401, 404))
    async def training_metrics() -> JSONResponse:
        """MODEL_DIR/training/metrics.json: the evaluation written by `polyhead train`."""
        try:
            data = read_json(ctx.training_file("metrics.json"))
        except PolyheadError as exc:
            raise ApiError(404, f"training/metrics.json is unreadable: {exc}", "not_found_error") from None
        return JSONResponse(data)

    @app.get("/training/curves.png", responses=S.errors(401, 404))
    async def training_curves() -> Any:
        """MODEL_DIR/training/curves.png: the training curves plot."""
        return FileResponse(ctx.training_file("curves.png"), media_type="image/png")
