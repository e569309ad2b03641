"""The HTTP connection protocol `conveyor serve` runs: uvicorn's httptools protocol with a
deadline on the request head.

Owns: closing a connection that has not sent a complete request head (request line and
headers) within `head_timeout_s` of opening, or of its previous response: uvicorn's own
keep-alive timer starts only after a response and stops at the first byte, so a client
that connects and sends nothing, or half a request line, held its connection forever.
Must not: touch requests once their head is complete (the app's request deadline and body
limit cover the rest: server.middleware).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["head_deadline_protocol"]


class _HeadDeadlineProtocol(HttpToolsProtocol):
    head_timeout_s: float = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_too_late)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_late(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request's head gets its own deadline, unless one is already waiting
        # (pipelined: its head arrived during this response).
        if not self.transport.is_closing() and not self.pipeline:
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)


def head_deadline_protocol(head_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's `http` protocol class closing connections whose request head is late."""
    return type(
        "HeadDeadlineProtocol", (_HeadDeadlineProtocol,), {"head_timeout_s": head_timeout_s}
    )
