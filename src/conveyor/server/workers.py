"""`GET /api/v1/workers`: the fleet's workers (fleet.registry) with their queues, running
attempts, last heartbeat and whether they are live.

Reads need the read token unless `server.public_read`, as every read route. With the
local executor (no fleet) the list is empty and `executor` says `local`; a broker that does
not answer is a 503 `broker_unavailable` in the server's error envelope (never its URL).
This module only answers HTTP.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from conveyor.runs.queue import RunQueue
from conveyor.server.auth import require_read
from conveyor.server.errors import ApiError
from conveyor.server.serialize import json_response

__all__ = ["build_router"]


async def _allow_read(request: Request) -> None:
    require_read(request)


async def list_workers(request: Request) -> Response:
    queue: RunQueue = request.app.state.queue
    fleet = queue.fleet
    if fleet is None:
        return json_response({"executor": "local", "workers": []})
    from redis.exceptions import RedisError

    from conveyor.fleet.registry import list_workers as registered_workers
    from conveyor.fleet.registry import worker_to_dict
    from conveyor.fleet.routing import consumed_queues

    try:
        workers = await registered_workers(fleet.redis)
    except (RedisError, OSError):
        raise ApiError(
            503, "broker_unavailable", "The fleet's broker (Redis) does not answer; try again."
        ) from None
    now = queue.clock.now()
    items = [
        {
            **worker_to_dict(w),
            "consumes": list(consumed_queues(w.queues)),
            "is_live": w.is_live(now),
        }
        for w in workers
    ]
    return json_response({"executor": "celery", "workers": items})


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["workers"])
    router.add_api_route(
        "/workers", list_workers, methods=["GET"], dependencies=[Depends(_allow_read)]
    )
    return router
