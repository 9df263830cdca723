"""HTTP serving: a FastAPI app over one model with micro-batching, limits, an API key and metrics.

One concern per module: settings (ServeSettings, constants), errors (the error shape), metrics
(Prometheus registry), batcher (MicroBatcher, a library object), middleware (the ASGI layers),
schemas (request models), routes (handlers), servable (the model contract), app (create_app:
wiring only) and run (`polyhead serve`).

FastAPI, pydantic and uvicorn are imported inside functions, so importing this package works
without the `serve` extra and `polyhead serve` without it fails with a one-line message.
"""
from .app import create_app
from .batcher import BatcherUnavailable, JobResult, MicroBatcher
from .errors import ApiError, error_body, validation_error_response
from .metrics import Metrics, build_metrics
from .run import bind_socket, is_loopback, load_for_serving, run_server, security_warning, settings_from_args
from .servable import as_servable, describe_model
from .settings import STATIC_DIR, ServeSettings

__all__ = [
    "STATIC_DIR",
    "ApiError",
    "BatcherUnavailable",
    "JobResult",
    "Metrics",
    "MicroBatcher",
    "ServeSettings",
    "as_servable",
    "bind_socket",
    "build_metrics",
    "create_app",
    "describe_model",
    "error_body",
    "is_loopback",
    "load_for_serving",
    "run_server",
    "security_warning",
    "settings_from_args",
    "validation_error_response",
]
