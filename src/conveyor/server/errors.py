"""The one error envelope of the HTTP API:
`{"error": {"code": "snake_case", "message": "human sentence", "request_id": "…"}}`.

Routes raise ApiError; the app's handlers (installed by server.app) render it, and render the
framework's own errors (404, 405, 422, 413, 500, timeouts) in the same shape.
"""

from __future__ import annotations

__all__ = ["ApiError"]


class ApiError(Exception):
    """An error answer: HTTP status, a snake_case code and a human sentence (no secrets)."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
