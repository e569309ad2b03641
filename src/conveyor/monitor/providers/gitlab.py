"""GitLab CI pipelines: `GET /api/v4/projects/:id/pipelines` and `POST …/pipeline`.

`parse_pipeline` maps one pipeline object onto PipelineView (pure, validated). `GitLab`
fetches the 5 most recently updated pipelines of a ref (`PRIVATE-TOKEN`, project path
URL-encoded) and, once it has a watermark, only those updated after it, merged with the
last good ones, so an unchanged project costs one small request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from conveyor.errors import UpstreamBadPayload
from conveyor.model import Status
from conveyor.monitor.providers.base import PER_PAGE, Fetched, Memo, keep_shown, parse_records
from conveyor.monitor.upstream import Upstream
from conveyor.monitor.validate import (
    Invalid,
    PipelineView,
    check_id,
    check_one_of,
    check_ref,
    check_sha,
    check_time,
    check_url,
)
from conveyor.settings.monitor import Target

__all__ = ["STATUS", "GitLab", "parse_pipeline"]

STATUS: dict[str, Status] = {
    "created": Status.PENDING,
    "waiting_for_resource": Status.PENDING,
    "waiting_for_callback": Status.PENDING,
    "preparing": Status.PENDING,
    "pending": Status.PENDING,
    "scheduled": Status.PENDING,
    "running": Status.RUNNING,
    "success": Status.SUCCESS,
    "failed": Status.FAILED,
    "canceling": Status.CANCELED,
    "canceled": Status.CANCELED,
    "skipped": Status.SKIPPED,
    "manual": Status.MANUAL,
}


def parse_pipeline(item: dict[str, Any]) -> PipelineView:
    status = check_one_of(STATUS, item.get("status"), "pipeline status")
    created_at = check_time(item.get("created_at"))
    updated_at = check_time(item.get("updated_at"))
    duration = item.get("duration")
    duration_s: float | None = None
    if isinstance(duration, int | float) and not isinstance(duration, bool) and duration >= 0:
        duration_s = float(duration)
    elif status.is_final and created_at is not None and updated_at is not None:
        duration_s = max(0.0, (updated_at - created_at).total_seconds())
    finished_at = check_time(item.get("finished_at"))
    if finished_at is None and status.is_final:
        finished_at = updated_at
    return PipelineView(
        id=check_id(item.get("id")),
        status=status,
        ref=check_ref(item.get("ref")),
        sha=check_sha(item.get("sha")),
        web_url=check_url(item.get("web_url")),
        created_at=created_at,
        updated_at=updated_at,
        duration_s=duration_s,
        started_at=check_time(item.get("started_at")),
        finished_at=finished_at,
    )


class GitLab:
    name = "gitlab"

    def __init__(self, upstream: Upstream, *, include_canceled: bool) -> None:
        self.upstream = upstream
        self.include_canceled = include_canceled

    def _project_url(self, target: Target) -> str:
        return f"{target.base_url}/api/v4/projects/{quote(target.repo, safe='')}"

    def _headers(self, target: Target) -> dict[str, str]:
        return {"PRIVATE-TOKEN": target.token} if target.token else {}

    async def fetch(self, target: Target, memo: Memo) -> Fetched:
        params = {
            "ref": target.branch,
            "per_page": str(PER_PAGE),
            "order_by": "updated_at",
            "sort": "desc",
        }
        if memo.watermark is not None:
            params["updated_after"] = memo.watermark.strftime("%Y-%m-%dT%H:%M:%SZ")
        reply = await self.upstream.request(
            self.name,
            "GET",
            f"{self._project_url(target)}/pipelines",
            gate=f"gitlab:{target.base_url}",
            headers=self._headers(target),
            params=params,
        )
        try:
            views, dropped = parse_records(reply.data, parse_pipeline)
        except Invalid as exc:
            raise UpstreamBadPayload(f"invalid payload: {exc}") from exc
        stamps = [v.updated_at for v in views if v.updated_at is not None]
        watermark = max([*stamps, *([memo.watermark] if memo.watermark else [])], default=None)
        if memo.watermark is not None and not views and not dropped:
            return Fetched(memo.pipelines, 0, memo, not_modified=True)
        pipelines = keep_shown([*views, *memo.pipelines], include_canceled=self.include_canceled)
        return Fetched(pipelines, dropped, Memo(watermark=watermark, pipelines=pipelines))

    async def retry(self, target: Target, latest: PipelineView | None) -> None:
        await self.upstream.request(
            self.name,
            "POST",
            f"{self._project_url(target)}/pipeline",
            gate=f"gitlab:{target.base_url}",
            headers=self._headers(target),
            params={"ref": target.branch},
            expect_json=False,
        )
