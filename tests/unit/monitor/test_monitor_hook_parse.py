"""monitor.hooks: upstream events -> the targets they concern (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.errors import WebhookRejected
from conveyor.monitor.hooks import HookEvent, HookIgnored, match_targets, parse_hook
from conveyor.settings.monitor import Target

TARGETS = (
    Target("gitlab", "Group/App", "main", "https://gitlab.com"),
    Target("github", "octo/api", "feature/x", "https://api.github.com"),
    Target("jenkins", "team/app", "feature/x", "https://j.example"),
    Target("jenkins", "folder/plain", "main", "https://j.example", job="folder/plain"),
)


def _gitlab(**attributes: Any) -> dict[str, Any]:
    return {
        "object_attributes": {"ref": "main", "tag": False, **attributes},
        "project": {"path_with_namespace": "group/app"},
    }


def test_gitlab_pipeline_hook_names_project_and_ref() -> None:
    event = parse_hook("gitlab", "Pipeline Hook", _gitlab())
    assert HookEvent("gitlab", "group/app", "main") == event
    assert (TARGETS[0],) == match_targets(event, TARGETS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("provider", "event_name", "payload", "reason"),
    [
        ("gitlab", "Push Hook", _gitlab(), "event 'Push Hook' is not a pipeline event"),
        ("gitlab", "Pipeline Hook", _gitlab(tag=True), "a tag pipeline concerns no branch"),
        ("github", "ping", {}, "ping"),
        ("github", "push", {}, "event 'push' is not workflow_run"),
    ],
)
def test_other_events_are_ignored(
    provider: str, event_name: str, payload: dict[str, Any], reason: str
) -> None:
    outcome = parse_hook(provider, event_name, payload)
    assert isinstance(outcome, HookIgnored) and reason == outcome.reason


def test_github_workflow_run_names_repo_and_branch() -> None:
    payload = {
        "workflow_run": {"head_branch": "feature/x"},
        "repository": {"full_name": "octo/api"},
    }
    event = parse_hook("github", "workflow_run", payload)
    assert (TARGETS[1],) == match_targets(event, TARGETS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "index"),
    [("job/team/job/app/job/feature%252Fx/", 2), ("job/folder/job/plain/", 3)],
)
def test_jenkins_notification_matches_branch_and_plain_jobs(url: str, index: int) -> None:
    event = parse_hook("jenkins", "", {"name": "x", "url": url, "build": {"phase": "COMPLETED"}})
    assert (TARGETS[index],) == match_targets(event, TARGETS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("provider", "event_name", "payload"),
    [
        ("gitlab", "Pipeline Hook", {"object_attributes": {"ref": "main"}}),
        ("github", "workflow_run", {"repository": {"full_name": "o/r"}, "workflow_run": {}}),
        ("jenkins", "", {"url": "https://evil.example/"}),
    ],
)
def test_payload_without_target_is_400(
    provider: str, event_name: str, payload: dict[str, Any]
) -> None:
    with pytest.raises(WebhookRejected) as caught:
        parse_hook(provider, event_name, payload)
    assert (caught.value.http_status, caught.value.code) == (400, "malformed_payload")


def test_unwatched_branch_matches_nothing() -> None:
    assert match_targets(HookEvent("gitlab", "group/app", "dev"), TARGETS) == ()
