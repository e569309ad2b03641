"""`GET /healthz` (the process answers) and `GET /readyz` (the store answers and the run
queue is running; otherwise 503 in the error envelope). No authentication, no details that
could leak configuration."""

from __future__ import annotations

import asyncio

import structlog
from fastapi import APIRouter, Request

from conveyor.errors import StoreError
from conveyor.server.errors import ApiError

__all__ = ["build_router"]

log = structlog.get_logger(__name__)

_STORE_PROBE_S = 2.0


def build_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> dict[str, str]:
        queue = request.app.state.queue
        if not queue.is_running:
            raise ApiError(503, "not_ready", "The run queue is not running (starting or stopping).")
        store = request.app.state.store
        try:
            async with asyncio.timeout(_STORE_PROBE_S):
                await asyncio.to_thread(store.list_runs, limit=1)
        except (StoreError, TimeoutError) as exc:
            log.warning("server.store_unready", error=type(exc).__name__)
            raise ApiError(503, "not_ready", "The run store does not answer.") from None
        return {"status": "ready"}

    return router
