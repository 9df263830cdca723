"""create_app: wire a model, its batcher, the middlewares, the error handlers and the routes together.

Endpoints (routes.py): POST /v1/embeddings (OpenAI-compatible), POST /predict, POST /similarity,
POST /rerank (Cohere/TEI-style), POST /embed (TEI-style), GET /info, GET /health, GET /metrics (Prometheus text), GET /v1/models, and the playground page.
FastAPI is imported inside create_app, so importing this module works without the `serve` extra.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Optional

from .. import __version__
from .batcher import BatcherUnavailable, MicroBatcher
from .errors import error_body, install_error_handlers
from .metrics import build_metrics
from .middleware import ApiKeyMiddleware, ArrivalMiddleware, BodyLimitMiddleware, MetricsMiddleware
from .routes import ServerContext, add_routes
from .servable import as_servable, describe_model
from .settings import ServeSettings


def create_app(model_or_encoder: Any, settings: Optional[ServeSettings] = None) -> Any:
    """The FastAPI app serving one model (a MultiTaskModel, an OnnxModel, or a bare Encoder)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    settings = settings or ServeSettings()
    settings.validate()
    model = as_servable(model_or_encoder)
    facts = describe_model(model)
    model_name = settings.model_name or Path(str(facts.get("encoder") or "polyhead")).name
    metrics = build_metrics(model_name, settings.backend)
    batcher = MicroBatcher(
        model, settings.max_batch_size, settings.max_wait_ms, settings.forward_batch_size, metrics,
        early_start=True, max_length=facts.get("max_length"),
        max_queue_texts=settings.max_queue_texts, request_timeout_s=settings.request_timeout_s,
    )

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

    install_error_handlers(app)

    @app.exception_handler(BatcherUnavailable)
    async def _unavailable(request: Request, exc: BatcherUnavailable) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return JSONResponse(error_body(str(exc), "server_unavailable", code=exc.code), status_code=503, headers=headers)

    # Outermost last: metrics see every answer, auth runs before the body is read, the body
    # limit runs before FastAPI parses anything.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    if settings.api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key)
    app.add_middleware(ArrivalMiddleware, batcher=batcher)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    pair_states = model.pair_head_states() if hasattr(model, "pair_head_states") else {}
    add_routes(app, ServerContext(settings, facts, model_name, batcher, metrics, dict(model.tasks), pair_states))
    return app
