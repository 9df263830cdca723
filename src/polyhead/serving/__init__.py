"""HTTP serving: a FastAPI app over one model with micro-batching, limits, an API key and metrics.

FastAPI, pydantic and uvicorn are imported inside functions, so importing this package works
without the `serve` extra and `polyhead serve` without it fails with a one-line message.
"""
from .app import (  # noqa: F401
    STATIC_DIR,
    ServeSettings,
    bind_socket,
    create_app,
    describe_model,
    load_for_serving,
    run_server,
    security_warning,
    settings_from_args,
)
