"""`GET /metrics`: the Monitor's own Prometheus registry in the text exposition format.

Renders what the sync loop recorded (pipeline status per target, last duration, last sync
time and duration, sync errors by target and kind, upstream requests by provider and code,
rate limit remaining, dropped records). No network, no global registry.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from conveyor.monitor.service import Monitor
from conveyor.server.auth import require_read

__all__ = ["build_router"]


def build_router(monitor: Monitor) -> APIRouter:
    router = APIRouter(tags=["monitor"], dependencies=[Depends(require_read)])

    @router.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics of the pipeline monitor."""
        return Response(generate_latest(monitor.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
