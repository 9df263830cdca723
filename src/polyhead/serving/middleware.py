"""The four ASGI middlewares, pure ASGI so they answer before FastAPI parses (or even reads) the body.

MetricsMiddleware counts and times every answer, ArrivalMiddleware tells the batcher a model
request is on its way, ApiKeyMiddleware checks the key, BodyLimitMiddleware enforces the body
limit while reading.
"""
from __future__ import annotations

import hmac
import time
from typing import Any, Callable, Optional

from .batcher import MicroBatcher
from .errors import error_body, send_json
from .metrics import Metrics
from .settings import BATCHED_PATHS, BODY_METHODS, KNOWN_PATHS, OPEN_PATHS, OPEN_PREFIXES


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

    def __init__(self, app: Any, batcher: MicroBatcher) -> None:
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
        await send_json(
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
                    await send_json(send, 400, error_body("Content-Length is not a number", param="Content-Length"))
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
        await send_json(
            send,
            413,
            error_body(
                f"request body too large: the limit is {self.limit} bytes (--max-body-bytes), this one has {size}",
                "limit_exceeded",
                "body",
                "max_body_bytes",
            ),
        )
