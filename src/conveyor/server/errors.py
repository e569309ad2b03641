"""The one error envelope of the HTTP API:
`{"error": {"code": "snake_case", "message": "human sentence", "request_id": "…"}}`.

Routes raise ApiError or any other ConveyorError; `install_error_handlers` renders every
ConveyorError by its class attributes (`http_status`, `code`, `http_message`: see
`conveyor.errors`; a StoreError is 503 `store_unavailable`, so webhook senders retry) and
the framework's own errors (404, 405, 422, 413, other HTTPExceptions) in the same shape.
The 500 and timeout answers come from `server.middleware`, which uses `envelope_body` too.
This module never puts a traceback, a secret or a raw request body into an answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from conveyor.errors import ConveyorError

__all__ = [
    "ApiError",
    "envelope_body",
    "envelope_of",
    "error_response",
    "install_error_handlers",
]

log = structlog.get_logger(__name__)

# Codes for the framework's own HTTP errors.
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(ConveyorError):
    """A refusal of the HTTP API that no other ConveyorError names: its HTTP status, a
    snake_case code and a human sentence (no secrets)."""

    def __init__(self, http_status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code


def envelope_of(exc: ConveyorError) -> tuple[int, str, str]:
    """The HTTP status, code and message of the envelope answering `exc`."""
    message = exc.http_message if exc.http_message is not None else str(exc)
    return exc.http_status, exc.code, message


def envelope_body(code: str, message: str, request_id: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "request_id": request_id}})


def error_response(
    status_code: int,
    code: str,
    message: str,
    request: Request,
    headers: Mapping[str, str] | None = None,
) -> Response:
    request_id = str(getattr(request.state, "request_id", ""))
    return Response(
        envelope_body(code, message, request_id),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


async def _conveyor_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ConveyorError):  # registered for this type only
        raise exc
    status, code, message = envelope_of(exc)
    if status >= 500:  # ours or an upstream's failure, not the caller's: keep it in the log
        log.error("http.request_failed", code=code, error=str(exc))
    return error_response(status, code, message, request)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # registered for this type only
        raise exc
    status = exc.status_code
    code = _CODES.get(status, "http_error")
    if isinstance(exc.detail, str) and exc.detail != HTTPStatus(status).phrase:
        message = exc.detail
    elif status == 404:
        message = f"No route for {request.url.path} (see /openapi.json for the routes)."
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}."
    else:
        message = f"{HTTPStatus(status).phrase}."
    return error_response(status, code, message, request, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # registered for this type only
        raise exc
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    message = "Invalid request: " + "; ".join(parts) + "."
    return error_response(422, "invalid_request", message, request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ConveyorError, _conveyor_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
