"""The per-request frame around every HTTP route, as one pure ASGI middleware.

It owns: the request id (`X-Request-ID` accepted when sane, generated otherwise, echoed on
every answer and bound into structlog's context), the body size limit (413 from the
Content-Length header before reading, or as soon as the streamed body passes the limit),
the request deadline (503 when no answer has *started* in time — streaming answers are free
once their headers are sent), the last-resort 500 (logged with exc_info, no traceback to the
client) and the one access event per request (`http.request`). It knows nothing of routes.

`answer_fast` is the same frame for the few reads that must be cheap (the monitor's, polled
by dashboards): the app calls it in front of its middleware stack and routing for a GET
whose path a `FastReads` table matches. Same request id, envelope (`envelope_body`) and
access event; no body limit or deadline, since a GET has no body and a fast read is a plain
function that cannot wait. A fast read is a function of the ASGI scope (no Starlette
`Request`): `require_read_scope` is `auth.require_read` over the scope's headers — public
reads pass, a good bearer token passes (constant-time compare), and anything else is handed
to `require_read` itself, so a refusal is its very 401.

The access events are logged at start-up's choice (`bind_access_log`): straight into the
JSON writer by `logconfig.access_line` under `conveyor serve`'s set-up, else through one
structlog logger bound once rather than the per-call lazy proxy.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.errors import ConveyorError
from conveyor.logconfig import AccessLine, access_line
from conveyor.server.auth import require_read, token_matches
from conveyor.server.errors import envelope_body, envelope_of

__all__ = [
    "FastRead",
    "FastReads",
    "RequestFrameMiddleware",
    "answer_fast",
    "bind_access_log",
    "new_request_id",
    "require_read_scope",
]

log = structlog.get_logger(__name__)

_SANE_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(int.from_bytes(os.urandom(4)))

# A read answered without the routing: the request's ASGI scope in (`scope["app"]` set), the
# JSON body out (a ConveyorError for an error answer). It must not await, touch the network or the
# store. Routes call the same function with `request.scope` (which has `path_params`).
FastRead = Callable[[Scope], bytes]

_JSON_HEADER = (b"content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class FastReads:
    """GET paths answered by `answer_fast`: exact paths, then the first matching prefix
    (`prefixes`: anything after it; `segments`: one non-empty path segment after it, so
    `/api/v1/runs/{id}` is fast and `/api/v1/runs/{id}/jobs/...` takes the routes)."""

    exact: Mapping[str, FastRead] = field(default_factory=dict)
    prefixes: Sequence[tuple[str, FastRead]] = ()
    segments: Sequence[tuple[str, FastRead]] = ()

    def match(self, path: str) -> FastRead | None:
        found = self.exact.get(path)
        if found is not None:
            return found
        for prefix, read in self.prefixes:
            if path.startswith(prefix):
                return read
        for prefix, read in self.segments:
            if (
                path.startswith(prefix)
                and len(path) > len(prefix)
                and "/" not in path[len(prefix) :]
            ):
                return read
        return None

    def merged(self, other: FastReads) -> FastReads:
        """Both tables in one (this one's entries first)."""
        return FastReads(
            {**other.exact, **self.exact},
            (*self.prefixes, *other.prefixes),
            (*self.segments, *other.segments),
        )


def new_request_id(given: str | None) -> str:
    """The client's X-Request-ID when it is short and plain, else a fresh id (32 hex
    digits): this process's random 64-bit prefix and a counter, unique without a system
    call per request (a request id is a correlation key, not a secret)."""
    if given and _SANE_ID.match(given):
        return given
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


class RequestFrameMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        request_timeout_s: float,
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.request_timeout_s = request_timeout_s
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter_ns()
        headers = dict(scope["headers"])
        request_id = new_request_id(_header(headers, b"x-request-id"))
        scope.setdefault("state", {})["request_id"] = request_id
        frame = _Frame(request_id, send)
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self._serve(scope, receive, frame, headers)
            finally:
                _log_access(scope["method"], scope["path"], frame.status, started, request_id)

    async def _serve(
        self, scope: Scope, receive: Receive, frame: _Frame, headers: dict[bytes, bytes]
    ) -> None:
        declared = _header(headers, b"content-length")
        size = declared or ""
        if size.isascii() and size.isdigit() and int(size) > self.max_body_bytes:
            await frame.fail(413, "payload_too_large", self._too_large_message())
            return
        limited = _limit_body(receive, self.max_body_bytes, self._too_large_message())
        deadline: asyncio.Timeout | None = None
        try:
            async with asyncio.timeout(self.request_timeout_s) as deadline:
                frame.deadline = deadline
                # A route that moves files may give itself longer (`request.state.deadline`).
                scope["state"]["deadline"] = deadline
                try:
                    await self.app(scope, limited, frame.send)
                finally:
                    frame.deadline = None  # a finished Timeout cannot be rescheduled
        except TimeoutError:
            if deadline is None or not deadline.expired():
                log.error("http.unhandled_error", exc_info=True)
                await frame.fail(500, "internal_error", "Internal error; see the server log.")
                return
            log.warning("http.deadline_passed", timeout_s=self.request_timeout_s)
            await frame.fail(
                503,
                "request_timeout",
                f"The request took longer than {self.request_timeout_s:g} s; try again later.",
            )
        except Exception:
            log.error("http.unhandled_error", exc_info=True)
            await frame.fail(500, "internal_error", "Internal error; see the server log.")

    def _too_large_message(self) -> str:
        return f"The request body is larger than {self.max_body_bytes} bytes."


class _Frame:
    """The send side of one request: echoes the id, records the status, lifts the deadline
    once an answer has started."""

    def __init__(self, request_id: str, send: Send) -> None:
        self.request_id = request_id
        self.status = 0
        self.started = False
        self.deadline: asyncio.Timeout | None = None
        self._send = send

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = int(message["status"])
            if self.deadline is not None:
                self.deadline.reschedule(None)
            message = {
                **message,
                "headers": [
                    *message.get("headers", []),
                    (b"x-request-id", self.request_id.encode()),
                ],
            }
        await self._send(message)

    async def fail(self, status: int, code: str, message: str) -> None:
        if self.started:  # too late for an envelope: the client sees a cut answer
            return
        body = envelope_body(code, message, self.request_id)
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": body})


async def answer_fast(read: FastRead, scope: Scope, send: Send) -> None:
    """Answer a GET with a fast read, in front of the routing: the same request id, envelope
    and access event as the routed answers, without routing, dependencies, body limit or
    deadline (a GET has no body and a fast read cannot wait). `scope["app"]` must be set."""
    started = time.perf_counter_ns()
    given: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given = value
            break
    request_id = new_request_id(given.decode("latin-1") if given is not None else None)
    scope["state"] = {"request_id": request_id}
    status = 200
    try:
        body = read(scope)
    except ConveyorError as exc:
        status, code, message = envelope_of(exc)
        body = envelope_body(code, message, request_id)
    except Exception:
        log.error("http.unhandled_error", request_id=request_id, exc_info=True)
        status = 500
        body = envelope_body("internal_error", "Internal error; see the server log.", request_id)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                _JSON_HEADER,
                (b"content-length", b"%d" % len(body)),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
    _log_access(scope["method"], scope["path"], status, started, request_id)


def require_read_scope(scope: Scope) -> None:
    """`auth.require_read` for a fast read, from the scope: passes when reads are public or
    the `Authorization: Bearer` token matches (constant-time); otherwise `require_read`
    decides and raises its own 401."""
    state = scope["app"].state
    # Starlette's State keeps its attributes in this dict; reading it spares two calls of
    # State.__getattr__ per request (a third of this check's cost).
    values: dict[str, Any] | None = getattr(state, "_state", None)
    if values is None:
        values = {name: getattr(state, name, None) for name in ("public_read", "api_token")}
    if values.get("public_read", False):
        return
    expected: str | None = values.get("api_token")
    if expected:
        for name, value in scope["headers"]:
            if name == b"authorization":
                if token_matches(value.decode("latin-1"), expected):
                    return
                break
    require_read(Request(scope))


class _AccessLog:
    """How the access events are logged: structlog's lazy proxy until `bind_access_log`
    binds a logger once (after logging is configured) and, under the JSON set-up, takes
    `logconfig.access_line`'s direct road."""

    logger: Any = log
    line: AccessLine | None = None


_ACCESS = _AccessLog()


def bind_access_log() -> None:
    """Bind the access-event logging to structlog's current configuration; the app calls it
    at start-up (configure logging before). Capturing tools that edit the configured
    processor list in place (structlog.testing.capture_logs) still see every event."""
    _ACCESS.logger = structlog.get_logger(__name__).bind()
    _ACCESS.line = access_line()


def _log_access(method: str, path: str, status: int, started: int, request_id: str) -> None:
    # `started`: time.perf_counter_ns() at the request's start; ms rounded to 2 places
    duration_ms = (time.perf_counter_ns() - started + 5_000) // 10_000 / 100
    line = _ACCESS.line
    if line is not None and line(request_id, method, path, status, duration_ms):
        return
    _ACCESS.logger.info(
        "http.request",
        request_id=request_id,
        method=method,
        path=path,
        status=status,
        duration_ms=duration_ms,
    )


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None


def _limit_body(receive: Receive, limit: int, message: str) -> Receive:
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        event = await receive()
        if event["type"] == "http.request":
            seen += len(event.get("body", b""))
            if seen > limit:
                # An HTTPException passes FastAPI's body parsing untouched -> 413 envelope.
                raise HTTPException(413, detail=message)
        return event

    return limited
