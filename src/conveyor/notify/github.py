"""GitHub commit statuses: `POST {api_url}/repos/{owner}/{repo}/statuses/{sha}`.

`pending` when a run starts, then `success`, `failure` (a job failed) or `error` (conveyor
could not run it: canceled, checkout failed, interrupted). The context is
`conveyor/<pipeline name>`, `target_url` the run in the API, the description within GitHub's
140 characters. Builds request bodies with pure functions; sends through notify.http. Never
puts the token anywhere but the Authorization header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from conveyor.model import RunRecord, Status
from conveyor.notify.base import Phase, StatusRepo, describe_run, failed_jobs, run_url
from conveyor.notify.http import OutgoingHttp

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


class GitHubStatuses:
    """Notifier for repos whose provider is GitHub; other runs are left alone."""

    target = "github"

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
        owner_repo = "/".join(quote(part, safe="") for part in repo.name.split("/"))
        url = f"{repo.api_url.rstrip('/')}/repos/{owner_repo}/statuses/{quote(run.sha, safe='')}"
        body = github_status_body(run, phase, target_url=run_url(self._public_url, run.run_id))
        headers = {
            "Authorization": f"Bearer {repo.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        await self._http.post_json(
            url, body, headers=headers, target=self.target, log_fields={"run_id": run.run_id}
        )
