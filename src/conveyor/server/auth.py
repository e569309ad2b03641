"""Bearer-token checks for the HTTP API, as FastAPI dependencies.

The app stores the expected token (read from the environment variable named in
conveyor.toml) in `app.state.api_token` and `server.public_read` in `app.state.public_read`.
Comparison is constant-time and of bytes: a header with non-ASCII characters (which
`hmac.compare_digest` refuses to compare as text) is a wrong token, answered 401 like any
other. Routes: `Depends(require_write)` / `Depends(require_read)`.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from conveyor.server.errors import ApiError

__all__ = ["require_read", "require_write", "token_matches"]


def token_matches(header: str, expected: str) -> bool:
    """Whether an `Authorization` header value (as the ASGI server decoded it: latin-1)
    carries `Bearer <expected>`, compared in constant time over the header's raw bytes."""
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    raw = given.strip().encode("latin-1", "replace")
    return hmac.compare_digest(raw, expected.encode("utf-8"))


def _check(request: Request) -> None:
    expected: str | None = getattr(request.app.state, "api_token", None)
    if not expected:
        raise ApiError(
            401,
            "unauthorized",
            "This server has no API token configured (set server.api_token_env in conveyor.toml).",
        )
    if not token_matches(request.headers.get("authorization", ""), expected):
        raise ApiError(
            401, "unauthorized", "Missing or wrong token: send 'Authorization: Bearer <token>'."
        )


def require_write(request: Request) -> None:
    _check(request)


def require_read(request: Request) -> None:
    if getattr(request.app.state, "public_read", False):
        return
    _check(request)
