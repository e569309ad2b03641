"""GitLab commit statuses: `POST {api_url}/projects/:id/statuses/:sha` (api_url ends in
`/api/v4`).

`running` when a run starts, then `success`, `failed` or `canceled`; `name` is the context
`conveyor/<pipeline name>`, `ref` the run's ref, `target_url` the run in the API. The project is
the numeric id or the URL-encoded path. Pure body builders plus a thin sender; the token goes
only into the PRIVATE-TOKEN header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from conveyor.model import RunRecord, Status
from conveyor.notify.base import Phase, StatusRepo, describe_run, run_url
from conveyor.notify.github import status_context
from conveyor.notify.http import OutgoingHttp

__all__ = ["GitLabStatuses", "gitlab_state", "gitlab_status_body"]


def gitlab_state(run: RunRecord, phase: Phase) -> str:
    """One of GitLab's states (pending running success failed canceled)."""
    if phase == "started":
        return "running"
    states = {
        Status.PENDING: "pending",
        Status.RUNNING: "running",
        Status.SUCCESS: "success",
        Status.SKIPPED: "success",
        Status.FAILED: "failed",
        Status.CANCELED: "canceled",
        Status.MANUAL: "pending",
    }
    return states[run.status]


def gitlab_status_body(run: RunRecord, phase: Phase, *, target_url: str) -> dict[str, Any]:
    return {
        "state": gitlab_state(run, phase),
        "ref": run.ref,
        "name": status_context(run),
        "target_url": target_url,
        "description": describe_run(run, phase),
    }


class GitLabStatuses:
    """Notifier for repos whose provider is GitLab; other runs are left alone."""

    target = "gitlab"

    def __init__(
        self, repos: Mapping[str, StatusRepo], http: OutgoingHttp, *, public_url: str
    ) -> None:
        self._repos = dict(repos)
        self._http = http
        self._public_url = public_url

    async def run_started(self, run: RunRecord) -> None:
        await self._post(run, "started")

    async def run_finished(self, run: RunRecord) -> None:
        await self._post(run, "finished")

    async def _post(self, run: RunRecord, phase: Phase) -> None:
        repo = self._repos.get(run.repo)
        if repo is None or not run.sha:
            return
        project = quote(repo.project or repo.name, safe="")
        url = f"{repo.api_url.rstrip('/')}/projects/{project}/statuses/{quote(run.sha, safe='')}"
        body = gitlab_status_body(run, phase, target_url=run_url(self._public_url, run.run_id))
        await self._http.post_json(
            url,
            body,
            headers={"PRIVATE-TOKEN": repo.token},
            target=self.target,
            log_fields={"run_id": run.run_id},
        )
