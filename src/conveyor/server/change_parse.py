"""Pull request (GitHub `pull_request`) and merge request (GitLab `Merge Request Hook`)
deliveries -> Events. Pure: a decoded payload in, an Event or an `Ignored` out; no store,
queue, network or clock. `webhook_parse` hands these deliveries here after the signature
was checked.

Which deliveries run, as on the services themselves:
- GitHub: `opened`, `synchronize` (new commits), `reopened`. Every other action (closed,
  labeled, edited, …) is acknowledged and runs nothing.
- GitLab: `open`, `reopen`, and `update` when it brings new commits (`oldrev` present);
  an update of the title or labels only, approvals, `close` and `merge` run nothing.

The run is of the request's head commit; its `ref` is the source branch, and the request's
facts (number, branches, title, labels, fork) travel in `Event.change`. The title and the
labels are written by whoever opened the request: they reach jobs only as environment
variables (`conveyor.variables`), never as shell text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.errors import WebhookRejected
from conveyor.inputs import check_ref
from conveyor.model import ChangeRequest, Event, EventKind

__all__ = ["GITHUB_PR_ACTIONS", "parse_github_pull_request", "parse_gitlab_merge_request"]

GITHUB_PR_ACTIONS = frozenset({"opened", "synchronize", "reopened"})
_GITLAB_MR_ACTIONS = frozenset({"open", "reopen", "update"})
_SHA_LENGTH = 40


def parse_github_pull_request(payload: Mapping[str, Any], repo: str) -> Event | str:
    """A `pull_request` delivery -> the Event to run, or why it runs nothing."""
    action = _text(payload, "action")
    if action not in GITHUB_PR_ACTIONS:
        return (
            f"pull_request action {action or 'unknown'!r} does not run "
            "(opened, synchronize and reopened do)"
        )
    pull = _mapping(payload, "pull_request")
    head, base = _mapping(pull, "head"), _mapping(pull, "base")
    sha = _text(head, "sha")
    source_branch, target_branch = _text(head, "ref"), _text(base, "ref")
    if len(sha) != _SHA_LENGTH or not source_branch or not target_branch:
        raise _bad_request("the pull request has no head sha or no head and base refs")
    _check_branches(source_branch, target_branch)
    base_repo = _text(_mapping(base, "repo"), "full_name")
    # A deleted fork leaves `head.repo` null: still a fork.
    head_repo = _text(_mapping(head, "repo"), "full_name")
    number = pull.get("number", payload.get("number"))
    repository = _mapping(payload, "repository")
    default_branch = _text(repository, "default_branch")
    return Event(
        kind=EventKind.PULL_REQUEST,
        ref=source_branch,
        sha=sha,
        repo=repo,
        default_branch=default_branch or None,
        change=ChangeRequest(
            number=number if isinstance(number, int) else 0,
            source_branch=source_branch,
            target_branch=target_branch,
            title=_text(pull, "title"),
            is_fork=not head_repo or head_repo.lower() != (base_repo or repo).lower(),
            source_repo=head_repo,
            labels=_label_names(pull.get("labels"), "name"),
            url=_text(pull, "html_url"),
        ),
    )


def _check_branches(source_branch: str, target_branch: str) -> None:
    """Both branches as git's rules for branch names allow them (the API's and the push
    webhooks' rule, conveyor.inputs): InvalidRef, 422 `invalid_ref`, otherwise."""
    check_ref(source_branch, where="webhook: the request's source branch")
    check_ref(target_branch, where="webhook: the request's target branch")


def parse_gitlab_merge_request(payload: Mapping[str, Any], repo: str) -> Event | str:
    """A `Merge Request Hook` delivery -> the Event to run, or why it runs nothing."""
    attributes = _mapping(payload, "object_attributes")
    action = _text(attributes, "action")
    if action not in _GITLAB_MR_ACTIONS:
        return f"merge request action {action or 'unknown'!r} does not run"
    if action == "update" and not _text(attributes, "oldrev"):
        return "merge request updated without new commits"
    last_commit = _mapping(attributes, "last_commit")
    sha = _text(last_commit, "id")
    source_branch = _text(attributes, "source_branch")
    target_branch = _text(attributes, "target_branch")
    if len(sha) != _SHA_LENGTH or not source_branch or not target_branch:
        raise _bad_request(
            "the merge request has no last_commit.id or no source and target branches"
        )
    _check_branches(source_branch, target_branch)
    source_id = attributes.get("source_project_id")
    target_id = attributes.get("target_project_id")
    iid = attributes.get("iid")
    project = _mapping(payload, "project")
    default_branch = _text(project, "default_branch")
    return Event(
        kind=EventKind.MERGE_REQUEST,
        ref=source_branch,
        sha=sha,
        repo=repo,
        message=_text(last_commit, "message"),
        default_branch=default_branch or None,
        change=ChangeRequest(
            number=iid if isinstance(iid, int) else 0,
            source_branch=source_branch,
            target_branch=target_branch,
            title=_text(attributes, "title"),
            is_fork=source_id != target_id,
            source_repo=_text(_mapping(attributes, "source"), "path_with_namespace"),
            labels=_label_names(attributes.get("labels"), "title"),
            url=_text(attributes, "url"),
        ),
    )


def _label_names(labels: object, key: str) -> tuple[str, ...]:
    if not isinstance(labels, list):
        return ()
    return tuple(
        label[key]
        for label in labels
        if isinstance(label, dict) and isinstance(label.get(key), str)
    )


def _mapping(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, dict) else {}


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    return value if isinstance(value, str) else ""


def _bad_request(what: str) -> WebhookRejected:
    return WebhookRejected(f"webhook: {what}", http_status=400, code="malformed_payload")
