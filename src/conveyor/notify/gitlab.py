"""GitLab commit statuses: `POST {api_url}/projects/:id/statuses/:sha` (api_url ends in
`/api/v4`).

`running` when a run starts, then `success`, `failed` or `canceled`; `name` is the context
`conveyor/<pipeline name>`, `ref` the run's ref, `target_url` the run in the API. The project is
the numeric id or the URL-encoded path. Pure body builders plus a thin sender; the token goes
only into the PRIVATE-TOKEN header.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from conveyor.model import RunRecord, Status
from conveyor.notify.base import CommitStatuses, Phase, StatusRepo, describe_run
from conveyor.notify.github import status_context

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


class GitLabStatuses(CommitStatuses):
    """Notifier for repos whose provider is GitLab."""

    target = "gitlab"

    def request(
        self, repo: StatusRepo, run: RunRecord, phase: Phase, target_url: str
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        project = quote(repo.project or repo.name, safe="")
        url = f"{repo.api_url.rstrip('/')}/projects/{project}/statuses/{quote(run.sha, safe='')}"
        body = gitlab_status_body(run, phase, target_url=target_url)
        return url, body, {"PRIVATE-TOKEN": repo.token}
