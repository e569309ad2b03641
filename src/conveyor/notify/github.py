"""GitHub commit statuses: `POST {api_url}/repos/{owner}/{repo}/statuses/{sha}`.

`pending` when a run starts, then `success`, `failure` (a job failed) or `error` (conveyor
could not run it: canceled, checkout failed, interrupted). The context is
`conveyor/<pipeline name>`, `target_url` the run in the API, the description within GitHub's
140 characters. Builds request bodies with pure functions; sends through notify.poster. Never
puts the token anywhere but the Authorization header.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from conveyor.model import RunRecord, Status
from conveyor.notify.base import CommitStatuses, Phase, StatusRepo, describe_run, failed_jobs

__all__ = ["GitHubStatuses", "github_state", "github_status_body", "status_context"]


def status_context(run: RunRecord) -> str:
    """`conveyor/<pipeline name>`: statuses of the same pipeline replace each other."""
    return f"conveyor/{run.pipeline_name or 'pipeline'}"


def github_state(run: RunRecord, phase: Phase) -> str:
    """One of GitHub's four states for this run at this phase."""
    if phase == "started" or not run.status.is_final:
        return "pending"
    if run.status in (Status.SUCCESS, Status.SKIPPED):
        return "success"
    if run.status is Status.FAILED and failed_jobs(run):
        return "failure"
    return "error"


def github_status_body(run: RunRecord, phase: Phase, *, target_url: str) -> dict[str, Any]:
    return {
        "state": github_state(run, phase),
        "target_url": target_url,
        "description": describe_run(run, phase),
        "context": status_context(run),
    }


class GitHubStatuses(CommitStatuses):
    """Notifier for repos whose provider is GitHub."""

    target = "github"

    def request(
        self, repo: StatusRepo, run: RunRecord, phase: Phase, target_url: str
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        owner_repo = "/".join(quote(part, safe="") for part in repo.name.split("/"))
        url = f"{repo.api_url.rstrip('/')}/repos/{owner_repo}/statuses/{quote(run.sha, safe='')}"
        headers = {
            "Authorization": f"Bearer {repo.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        return url, github_status_body(run, phase, target_url=target_url), headers
