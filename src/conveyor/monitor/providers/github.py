"""GitHub Actions workflow runs: `GET /repos/{owner}/{repo}/actions/runs` and re-runs.

`parse_run` maps one workflow run (status + conclusion) onto PipelineView (pure, validated).
`GitHub` sends `Authorization: Bearer`, the API version header and `If-None-Match` with the
last ETag: a 304 keeps the last good runs and costs no rate limit. Rate limiting (403/429)
closes the provider's gate until the reset time (see monitor.upstream).
"""

from __future__ import annotations

from typing import Any

from conveyor.errors import UpstreamBadPayload, UpstreamError
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

__all__ = ["API_VERSION", "CONCLUSION", "GitHub", "parse_run"]

API_VERSION = "2022-11-28"
RUNNING_STATUS: dict[str, Status] = {
    "in_progress": Status.RUNNING,
    "queued": Status.PENDING,
    "requested": Status.PENDING,
    "waiting": Status.PENDING,
    "pending": Status.PENDING,
}
CONCLUSION: dict[str, Status] = {
    "success": Status.SUCCESS,
    "neutral": Status.SUCCESS,
    "failure": Status.FAILED,
    "timed_out": Status.FAILED,
    "startup_failure": Status.FAILED,
    "cancelled": Status.CANCELED,
    "skipped": Status.SKIPPED,
    "stale": Status.SKIPPED,
    "action_required": Status.MANUAL,
}


def _status(item: dict[str, Any]) -> Status:
    if item.get("status") == "completed":
        return check_one_of(CONCLUSION, item.get("conclusion"), "workflow run conclusion")
    return check_one_of(RUNNING_STATUS, item.get("status"), "workflow run status")


def parse_run(item: dict[str, Any]) -> PipelineView:
    status = _status(item)
    created_at = check_time(item.get("created_at"))
    updated_at = check_time(item.get("updated_at"))
    started_at = check_time(item.get("run_started_at")) or created_at
    duration_s = None
    if status.is_final and started_at is not None and updated_at is not None:
        duration_s = max(0.0, (updated_at - started_at).total_seconds())
    return PipelineView(
        id=check_id(item.get("id")),
        status=status,
        ref=check_ref(item.get("head_branch")),
        sha=check_sha(item.get("head_sha")),
        web_url=check_url(item.get("html_url")),
        created_at=created_at,
        updated_at=updated_at,
        duration_s=duration_s,
        started_at=started_at,
        finished_at=updated_at if status.is_final else None,
    )


class GitHub:
    name = "github"

    def __init__(self, upstream: Upstream, *, include_canceled: bool) -> None:
        self.upstream = upstream
        self.include_canceled = include_canceled

    def _headers(self, target: Target) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        if target.token:
            headers["Authorization"] = f"Bearer {target.token}"
        return headers

    async def fetch(self, target: Target, memo: Memo) -> Fetched:
        headers = self._headers(target)
        if memo.etag:
            headers["If-None-Match"] = memo.etag
        reply = await self.upstream.request(
            self.name,
            "GET",
            f"{target.base_url}/repos/{target.repo}/actions/runs",
            gate=f"github:{target.base_url}",
            headers=headers,
            params={"branch": target.branch, "per_page": str(PER_PAGE)},
        )
        if reply.status_code == 304:
            return Fetched(memo.pipelines, 0, memo, not_modified=True)
        runs = reply.data.get("workflow_runs") if isinstance(reply.data, dict) else None
        try:
            views, dropped = parse_records(runs, parse_run)
        except Invalid as exc:
            raise UpstreamBadPayload(f"invalid payload: {exc}") from exc
        pipelines = keep_shown(views, include_canceled=self.include_canceled)
        etag = reply.headers.get("etag")
        return Fetched(pipelines, dropped, Memo(etag=etag, pipelines=pipelines))

    async def retry(self, target: Target, latest: PipelineView | None) -> None:
        if latest is None:
            raise UpstreamError("no workflow run to re-run yet")
        await self.upstream.request(
            self.name,
            "POST",
            f"{target.base_url}/repos/{target.repo}/actions/runs/{latest.id}/rerun",
            gate=f"github:{target.base_url}",
            headers=self._headers(target),
            expect_json=False,
        )
