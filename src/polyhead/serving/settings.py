"""What the server is configured with: ServeSettings and the constants every serving module shares."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import PolyheadError

from ..onnx.backends import BACKENDS  # noqa: E402,F401 - what `polyhead serve --backend` accepts
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Paths that answer without an API key: liveness probes must work without secrets, and the
# playground page and its assets are static files (the page asks for the key itself).
OPEN_PATHS = ("/health", "/ready", "/")
OPEN_PREFIXES = ("/static/",)
STATIC_DIR = Path(__file__).parent / "static"
STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml", ".ico": "image/x-icon"}
KNOWN_PATHS = (
    "/v1/embeddings",
    "/v1/models",
    "/predict",
    "/similarity",
    "/pairs",
    "/rerank",
    "/embed",
    "/info",
    "/health",
    "/ready",
    "/metrics",
    "/",
    "/docs",
    "/openapi.json",
    "/training/metrics",
    "/training/curves.png",
)
ENDPOINTS = [
    "POST /v1/embeddings",
    "POST /predict",
    "POST /similarity",
    "POST /pairs",
    "POST /rerank",
    "POST /embed",
    "GET /info",
    "GET /health",
    "GET /ready",
    "GET /metrics",
    "GET /v1/models",
]
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
BODY_METHODS = ("POST", "PUT", "PATCH")
BATCHED_PATHS = ("/v1/embeddings", "/predict", "/similarity", "/pairs", "/rerank", "/embed")


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
    # Overload: texts that may wait for the model at once. Past it a request is refused at once
    # with 503 and Retry-After (shedding load instead of letting every request's wait grow
    # without bound). 1,024 texts is 16 full micro-batches: a few seconds of work for a small
    # encoder on a CPU, the longest a waiting client should see.
    max_queue_texts: int = 1024
    # Per-request deadline: a request not answered within it gets 503 (its texts are dropped if
    # they have not started), so no client waits longer than this for a busy server.
    request_timeout_s: float = 30.0

    def validate(self) -> None:
        """Raise PolyheadError for values that cannot work."""
        for name in ("max_batch_size", "max_texts", "max_chars", "forward_batch_size", "max_queue_texts"):
            if int(getattr(self, name)) < 1:
                raise PolyheadError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.request_timeout_s > 0:
            raise PolyheadError(f"request-timeout must be more than 0 seconds, got {self.request_timeout_s}")
        if self.max_wait_ms < 0:
            raise PolyheadError(f"max-wait-ms must be 0 or more, got {self.max_wait_ms}")
        if self.max_body_bytes < 1024:
            raise PolyheadError(f"max-body-bytes must be at least 1024, got {self.max_body_bytes}")
