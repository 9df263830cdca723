"""The one error shape every 4xx/5xx answer uses (the OpenAI API's), and how errors become it.

{"error": {"message", "type", "param", "code"}}: raised in handlers as ApiError, sent from ASGI
middlewares with send_json, made from pydantic's validation errors by validation_error_response,
and installed on the app (for every other exception too) by install_error_handlers.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable, Optional, Sequence

from ..errors import PolyheadError

logger = logging.getLogger("polyhead.serving")

STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "limit_exceeded",
    415: "invalid_request_error",
    422: "invalid_request_error",
    503: "server_unavailable",
}


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


async def send_json(send: Callable, status: int, body: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
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


def install_error_handlers(app: Any) -> None:
    """Make every error body {"error": {...}}, never FastAPI's {"detail": ...} or a bare 500 page."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

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
        kind = STATUS_TYPES.get(exc.status_code, "server_error" if exc.status_code >= 500 else "invalid_request_error")
        return JSONResponse(error_body(message, kind), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(PolyheadError)
    async def _polyhead_error(request: Request, exc: PolyheadError) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), status_code=422)

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return JSONResponse(error_body(f"internal error: {type(exc).__name__}", "server_error"), status_code=500)
