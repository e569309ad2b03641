"""Upstream pipeline events -> the watched targets they concern. Pure: a decoded payload
and the targets in; a decision out. No signature checks (server.webhook_parse owns those),
no network, no clock.

An event only says *which* target changed; its data is never trusted. What the monitor
serves always comes from the fetch the event triggers. The events:

- GitLab `Pipeline Hook`: `project.path_with_namespace` + `object_attributes.ref`
  (a tag pipeline, `object_attributes.tag: true`, concerns no branch target);
- GitHub `workflow_run`: `repository.full_name` + `workflow_run.head_branch` (`ping` is
  acknowledged);
- Jenkins: the Notification plugin's JSON (`{"name", "url": "job/team/job/app/job/main/",
  "build": {"phase", …}}`); `url` is the job's path as Jenkins encodes it, compared with
  each Jenkins target's path (`providers.jenkins.target_path`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.errors import WebhookRejected
from conveyor.monitor.providers.jenkins import target_path
from conveyor.settings.monitor import Target

__all__ = ["HookEvent", "HookIgnored", "match_targets", "parse_hook"]


@dataclass(frozen=True, slots=True)
class HookEvent:
    """A pipeline changed upstream: a repo and branch (GitLab, GitHub) or a Jenkins job path
    (`/job/team/job/app/job/main`); `where` names it for messages."""

    provider: str
    repo: str | None = None
    branch: str | None = None
    job_path: str | None = None

    @property
    def where(self) -> str:
        if self.job_path is not None:
            return self.job_path
        return f"{self.repo}@{self.branch}"


@dataclass(frozen=True, slots=True)
class HookIgnored:
    """An event acknowledged without a refresh (a ping, another event kind)."""

    reason: str
    status_code: int = 202


def parse_hook(
    provider: str, event_name: str, payload: Mapping[str, Any]
) -> HookEvent | HookIgnored:
    """The target an event is about, or why it is ignored. WebhookRejected (400) when the
    payload lacks what names the target."""
    if provider == "gitlab":
        if event_name != "Pipeline Hook":
            return HookIgnored(f"event {event_name or 'unknown'!r} is not a pipeline event")
        attributes = _object(payload, "object_attributes")
        if attributes.get("tag") is True:
            return HookIgnored("a tag pipeline concerns no branch")
        project = _text(_object(payload, "project"), "path_with_namespace", "project")
        return HookEvent("gitlab", project, _text(attributes, "ref", "object_attributes"))
    if provider == "github":
        if event_name == "ping":
            return HookIgnored("ping", status_code=200)
        if event_name != "workflow_run":
            return HookIgnored(f"event {event_name or 'unknown'!r} is not workflow_run")
        repo = _text(_object(payload, "repository"), "full_name", "repository")
        branch = _text(_object(payload, "workflow_run"), "head_branch", "workflow_run")
        return HookEvent("github", repo, branch)
    url = _text(payload, "url", "")
    if not url.startswith("job/"):
        raise _malformed("'url' is not a Jenkins job path (job/…/)")
    return HookEvent("jenkins", job_path="/" + url.strip("/"))


def match_targets(event: HookEvent, targets: Iterable[Target]) -> tuple[Target, ...]:
    """The watched targets the event is about (several Jenkins instances may share a path;
    repo names compare case-insensitively, as both forges treat them)."""
    if event.job_path is not None:
        wanted = event.job_path.lower()
        return tuple(
            t for t in targets if t.provider == "jenkins" and target_path(t).lower() == wanted
        )
    repo = (event.repo or "").lower()
    return tuple(
        t
        for t in targets
        if t.provider == event.provider and t.repo.lower() == repo and t.branch == event.branch
    )


def _object(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    if not isinstance(value, dict):
        raise _malformed(f"'{key}' is missing")
    return value


def _text(holder: Mapping[str, Any], key: str, parent: str) -> str:
    value = holder.get(key)
    if not isinstance(value, str) or not value:
        raise _malformed(f"'{parent + '.' if parent else ''}{key}' is missing")
    return value


def _malformed(what: str) -> WebhookRejected:
    return WebhookRejected(
        f"monitor webhook: the payload names no target ({what})",
        http_status=400,
        code="malformed_payload",
    )
