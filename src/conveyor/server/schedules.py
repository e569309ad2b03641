"""`GET /api/v1/schedules` and `POST /api/v1/schedules/{schedule_id}/run`: the
`[[schedules]]` of conveyor.toml with their next run time, and a schedule run by hand.

Reads need the read token unless `server.public_read`; running one needs the write token,
as every write route. The loop that fires them on their ticks is `runs.schedules`; this
module only answers HTTP.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from conveyor.errors import GitError
from conveyor.records import format_ts
from conveyor.runs.schedules import ScheduleLoop
from conveyor.server.auth import require_read, require_write
from conveyor.server.errors import ApiError
from conveyor.server.serialize import json_response

__all__ = ["build_router"]


async def _allow_read(request: Request) -> None:
    require_read(request)


async def _allow_write(request: Request) -> None:
    require_write(request)


async def list_schedules(request: Request) -> Response:
    loop: ScheduleLoop = request.app.state.schedules
    next_runs = loop.next_runs()
    last = loop.last_fired()
    items = [
        {
            "id": s.id,
            "repo": s.repo,
            "ref": s.ref,
            "cron": s.cron,
            "timezone": s.timezone,
            "description": s.description,
            "variables": dict(s.variables),
            "next_run_at": format_ts(next_runs[s.id]),
            "last_run_at": format_ts(last.get(s.id)),
        }
        for s in loop.schedules
    ]
    return json_response({"schedules": items})


async def run_schedule(request: Request, schedule_id: str) -> Response:
    loop: ScheduleLoop = request.app.state.schedules
    try:
        run_id = await loop.run_now(schedule_id)
    except KeyError:
        known = ", ".join(s.id for s in loop.schedules) or "none is configured"
        raise ApiError(
            404,
            "unknown_schedule",
            f"Schedule {schedule_id!r} is not declared in conveyor.toml (known: {known}).",
        ) from None
    except GitError as error:
        raise ApiError(
            422, "ref_not_found", f"{error} (push it, or fix the schedule's ref)"
        ) from None
    return json_response(
        {"run_id": run_id, "schedule": schedule_id},
        status_code=202,
        headers={"Location": f"/api/v1/runs/{run_id}"},
    )


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["schedules"])
    router.add_api_route(
        "/schedules", list_schedules, methods=["GET"], dependencies=[Depends(_allow_read)]
    )
    router.add_api_route(
        "/schedules/{schedule_id}/run",
        run_schedule,
        methods=["POST"],
        dependencies=[Depends(_allow_write)],
    )
    return router
