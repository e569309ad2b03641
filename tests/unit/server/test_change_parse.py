"""Pull and merge request deliveries -> Events, from the services' own example payloads
(tests/payloads/README.md says where each comes from)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from conveyor.errors import WebhookRejected
from conveyor.model import ChangeRequest, Event, EventKind
from conveyor.server.webhook_parse import Ignored, parse_github, parse_gitlab

PAYLOADS = Path(__file__).parents[2] / "payloads"
PR_HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
MR_HEAD = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"


def github(action: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(
        (PAYLOADS / "github" / f"pull_request.{action}.json").read_bytes()
    )
    return data


def gitlab_mr(**attributes: Any) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(
        (PAYLOADS / "gitlab" / "merge_request.open.json").read_bytes()
    )
    data["object_attributes"].update(attributes)
    return data


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened"])
def test_github_pull_request_runs_the_head_commit(action: str) -> None:
    event = parse_github("pull_request", github(action), "Codertocat/Hello-World")
    assert isinstance(event, Event)
    assert (event.kind, event.ref, event.sha, event.repo) == (
        EventKind.PULL_REQUEST,
        "changes",
        PR_HEAD,
        "Codertocat/Hello-World",
    )
    assert event.change == ChangeRequest(
        number=2,
        source_branch="changes",
        target_branch="master",
        title="Update the README with new information.",
        is_fork=False,
        source_repo="Codertocat/Hello-World",
        labels=("bug",),
        url="https://github.com/Codertocat/Hello-World/pull/2",
    )


def test_github_pull_request_closed_runs_nothing() -> None:
    outcome = parse_github("pull_request", github("closed"), "Codertocat/Hello-World")
    assert isinstance(outcome, Ignored)
    assert outcome.status_code == 202
    assert "'closed' does not run" in outcome.reason


def test_github_pull_request_from_a_fork_is_marked_fork() -> None:
    payload = github("opened")
    payload["pull_request"]["head"]["repo"]["full_name"] = "stranger/Hello-World"
    event = parse_github("pull_request", payload, "Codertocat/Hello-World")
    assert isinstance(event, Event) and event.change is not None
    assert (event.change.is_fork, event.change.source_repo) == (True, "stranger/Hello-World")


def test_github_pull_request_of_a_deleted_fork_is_a_fork() -> None:
    payload = github("synchronize")
    payload["pull_request"]["head"]["repo"] = None
    event = parse_github("pull_request", payload, "Codertocat/Hello-World")
    assert isinstance(event, Event) and event.change is not None
    assert event.change.is_fork is True


def test_github_pull_request_without_head_sha_is_400() -> None:
    payload = github("opened")
    del payload["pull_request"]["head"]["sha"]
    with pytest.raises(WebhookRejected) as caught:
        parse_github("pull_request", payload, "Codertocat/Hello-World")
    assert caught.value.http_status == 400


def test_github_pull_request_title_is_kept_verbatim_as_data() -> None:
    payload = github("opened")
    payload["pull_request"]["title"] = '"; rm -rf / #$(id)'
    event = parse_github("pull_request", payload, "Codertocat/Hello-World")
    assert isinstance(event, Event) and event.change is not None
    assert event.change.title == '"; rm -rf / #$(id)'


def test_gitlab_merge_request_open_runs_the_last_commit() -> None:
    event = parse_gitlab("Merge Request Hook", gitlab_mr(), "gitlabhq/gitlab-test")
    assert isinstance(event, Event)
    assert (event.kind, event.ref, event.sha, event.message, event.default_branch) == (
        EventKind.MERGE_REQUEST,
        "ms-viewport",
        MR_HEAD,
        "fixed readme",
        "master",
    )
    assert event.change == ChangeRequest(
        number=1,
        source_branch="ms-viewport",
        target_branch="master",
        title="MS-Viewport",
        is_fork=False,
        source_repo="awesome_space/awesome_project",
        labels=("API",),
        url="http://example.com/diaspora/merge_requests/1",
    )


def test_gitlab_merge_request_update_with_new_commits_runs() -> None:
    payload = gitlab_mr(action="update", oldrev="b" * 40)
    assert isinstance(parse_gitlab("Merge Request Hook", payload, "g/p"), Event)


def test_gitlab_merge_request_reopen_runs() -> None:
    assert isinstance(parse_gitlab("Merge Request Hook", gitlab_mr(action="reopen"), "g/p"), Event)


def test_gitlab_merge_request_update_without_new_commits_runs_nothing() -> None:
    outcome = parse_gitlab("Merge Request Hook", gitlab_mr(action="update"), "g/p")
    assert outcome == Ignored("merge request updated without new commits")


@pytest.mark.parametrize("action", ["close", "merge", "approved", "unapproval"])
def test_gitlab_merge_request_other_actions_run_nothing(action: str) -> None:
    outcome = parse_gitlab("Merge Request Hook", gitlab_mr(action=action), "g/p")
    assert isinstance(outcome, Ignored)


def test_gitlab_merge_request_from_another_project_is_a_fork() -> None:
    event = parse_gitlab("Merge Request Hook", gitlab_mr(source_project_id=99), "g/p")
    assert isinstance(event, Event) and event.change is not None
    assert event.change.is_fork is True


def test_gitlab_merge_request_without_last_commit_is_400() -> None:
    payload = gitlab_mr()
    del payload["object_attributes"]["last_commit"]
    with pytest.raises(WebhookRejected):
        parse_gitlab("Merge Request Hook", payload, "g/p")


def test_gitlab_payload_fixture_is_not_changed_by_parsing() -> None:
    payload = gitlab_mr()
    before = copy.deepcopy(payload)
    parse_gitlab("Merge Request Hook", payload, "g/p")
    assert payload == before
