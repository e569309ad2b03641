"""Jenkins builds: `GET /job/a/job/b/api/json?tree=builds[…]{0,5}` and `POST …/build`.

A target is a branch of a multibranch project (`repo = "team/app"`, `branch = "main"` ->
`/job/team/job/app/job/main`; the branch job's name is the branch encoded as Jenkins'
branch-api does, `feature/x` -> `feature%2Fx`, itself URL-encoded in the path) or, with
`job = "folder/app"`, a plain job (`/job/folder/job/app`).

`parse_build` maps one build onto PipelineView (pure, validated; the ref is the target's
branch, the sha comes from the Git plugin's `lastBuiltRevision` when present). `Jenkins`
authenticates with basic auth (user + API token). A build POST needs a CSRF crumb from
`/crumbIssuer/api/json`, valid only with the session cookie it was issued with: both are
kept together per Jenkins, and a 403 (crumb expired) fetches a new crumb once and retries.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import quote

from conveyor.errors import UpstreamAuthError, UpstreamBadPayload, UpstreamError
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
    check_url,
    epoch_ms_to_time,
)
from conveyor.settings.monitor import Target

__all__ = [
    "RESULT",
    "TREE",
    "Crumb",
    "Jenkins",
    "branch_job_name",
    "job_path",
    "parse_build",
    "target_path",
]

TREE = (
    "builds[number,url,result,building,timestamp,duration,"
    f"actions[lastBuiltRevision[SHA1]]]{{0,{PER_PAGE}}}"
)
RESULT: dict[str, Status] = {
    "SUCCESS": Status.SUCCESS,
    "UNSTABLE": Status.FAILED,
    "FAILURE": Status.FAILED,
    "ABORTED": Status.CANCELED,
    "NOT_BUILT": Status.SKIPPED,
}


def job_path(repo: str) -> str:
    """`folder/app` -> `/job/folder/job/app` (a job inside folders)."""
    return "".join(f"/job/{quote(part, safe='')}" for part in repo.split("/") if part)


def branch_job_name(branch: str) -> str:
    """The name a multibranch project gives a branch's job: `%` and `/` percent-encoded
    (`feature/x` -> `feature%2Fx`), as Jenkins' branch-api NameEncoder does."""
    return branch.replace("%", "%25").replace("/", "%2F")


def target_path(target: Target) -> str:
    """The job path of a target: its plain `job`, else the branch job of the multibranch
    project `repo` (`team/app` + `feature/x` -> `/job/team/job/app/job/feature%252Fx`)."""
    if target.job is not None:
        return job_path(target.job)
    return f"{job_path(target.repo)}/job/{quote(branch_job_name(target.branch), safe='')}"


def _sha(actions: Any) -> str | None:
    if not isinstance(actions, list):
        return None
    for action in actions:
        if isinstance(action, dict) and isinstance(action.get("lastBuiltRevision"), dict):
            return check_sha(action["lastBuiltRevision"].get("SHA1"))
    return None


def parse_build(branch: str, item: dict[str, Any]) -> PipelineView:
    building = item.get("building")
    if building is True:
        status = Status.RUNNING
    elif item.get("result") is None:
        status = Status.PENDING
    else:
        status = check_one_of(RESULT, item.get("result"), "build result")
    created_at = epoch_ms_to_time(item.get("timestamp"))
    duration_ms = item.get("duration")
    if isinstance(duration_ms, bool) or not isinstance(duration_ms, int) or duration_ms < 0:
        raise Invalid("duration must be milliseconds")
    ended_at = created_at + timedelta(milliseconds=duration_ms)
    return PipelineView(
        id=check_id(item.get("number")),
        status=status,
        ref=check_ref(branch),
        sha=_sha(item.get("actions")),
        web_url=check_url(item.get("url")),
        created_at=created_at,
        updated_at=ended_at,
        duration_s=duration_ms / 1000 if status.is_final else None,
        started_at=created_at,  # a build's timestamp is its start
        finished_at=ended_at if status.is_final else None,
    )


class Crumb:
    """A CSRF crumb and the session cookie(s) it belongs to."""

    __slots__ = ("cookie", "field", "value")

    def __init__(self, field: str, value: str, cookie: str) -> None:
        self.field, self.value, self.cookie = field, value, cookie

    def headers(self) -> dict[str, str]:
        headers = {self.field: self.value} if self.field else {}
        if self.cookie:
            headers["Cookie"] = self.cookie
        return headers


class Jenkins:
    name = "jenkins"

    def __init__(self, upstream: Upstream, *, include_canceled: bool) -> None:
        self.upstream = upstream
        self.include_canceled = include_canceled
        self._crumbs: dict[tuple[str, str | None], Crumb] = {}

    def _auth(self, target: Target) -> dict[str, str]:
        if not target.user or not target.token:
            return {}
        raw = f"{target.user}:{target.token}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}

    async def fetch(self, target: Target, memo: Memo) -> Fetched:
        reply = await self.upstream.request(
            self.name,
            "GET",
            f"{target.base_url}{target_path(target)}/api/json",
            gate=f"jenkins:{target.base_url}",
            headers=self._auth(target),
            params={"tree": TREE},
            digest=True,  # Jenkins sends no ETag: the same body as last time is not parsed again
            known_digest=memo.digest,
        )
        if reply.is_unchanged:
            return Fetched(memo.pipelines, 0, memo, not_modified=True)
        builds = reply.data.get("builds") if isinstance(reply.data, dict) else None
        try:
            views, dropped = parse_records(builds, partial(parse_build, target.branch))
        except Invalid as exc:
            raise UpstreamBadPayload(f"invalid payload: {exc}") from exc
        pipelines = keep_shown(views, include_canceled=self.include_canceled)
        return Fetched(pipelines, dropped, Memo(pipelines=pipelines, digest=reply.digest))

    async def _crumb(self, target: Target) -> Crumb:
        cache_key = (target.base_url, target.user)
        crumb = self._crumbs.get(cache_key)
        if crumb is not None:
            return crumb
        try:
            reply = await self.upstream.request(
                self.name,
                "GET",
                f"{target.base_url}/crumbIssuer/api/json",
                gate=f"jenkins:{target.base_url}",
                headers=self._auth(target),
            )
        except UpstreamError as exc:
            if exc.status_code != 404:
                raise
            crumb = Crumb("", "", "")  # CSRF protection is off on this Jenkins
        else:
            data = reply.data if isinstance(reply.data, dict) else {}
            field, value = data.get("crumbRequestField"), data.get("crumb")
            if not isinstance(field, str) or not isinstance(value, str) or not field.isprintable():
                raise UpstreamBadPayload("unexpected crumb JSON")
            crumb = Crumb(field, value, "; ".join(reply.cookies))
        self._crumbs[cache_key] = crumb
        return crumb

    async def retry(self, target: Target, latest: PipelineView | None) -> None:
        for attempt in (1, 2):
            crumb = await self._crumb(target)
            try:
                await self.upstream.request(
                    self.name,
                    "POST",
                    f"{target.base_url}{target_path(target)}/build",
                    gate=f"jenkins:{target.base_url}",
                    headers={**self._auth(target), **crumb.headers()},
                    expect_json=False,
                )
            except UpstreamAuthError as exc:
                # 403 is what Jenkins answers for an expired crumb: re-crumb once.
                self._crumbs.pop((target.base_url, target.user), None)
                if attempt == 2 or exc.status_code != 403:
                    raise
            else:
                return
