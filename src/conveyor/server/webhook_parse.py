"""Webhook deliveries -> Events, and the signature checks. Pure: bytes, headers and secrets
in; a decision out. No store, no queue, no network, no clock.

GitHub: `X-Hub-Signature-256: sha256=<hex>` is HMAC-SHA256 of the raw body; the body is
JSON or form-encoded (`payload=<json>`); `X-GitHub-Event` is `ping`, `push`, … GitLab:
`X-Gitlab-Token` is the shared secret; `X-Gitlab-Event` is `Push Hook` or `Tag Push Hook`.
Pull and merge requests (`pull_request`, `Merge Request Hook`) are parsed by `change_parse`.
Comparisons are constant-time. Messages never contain a secret or the body.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

from conveyor.errors import WebhookRejected
from conveyor.inputs import check_ref
from conveyor.model import Event, EventKind
from conveyor.server.change_parse import parse_github_pull_request, parse_gitlab_merge_request

__all__ = [
    "Ignored",
    "decode_payload",
    "github_signature",
    "match_github_secret",
    "match_gitlab_token",
    "parse_github",
    "parse_gitlab",
    "payload_repo",
]

_ZERO_SHA = "0" * 40
_GITLAB_PUSH_EVENTS = ("Push Hook", "Tag Push Hook")


@dataclass(frozen=True, slots=True)
class Ignored:
    """A delivery that is acknowledged and triggers nothing. `status_code` is 200 for a ping
    and 202 otherwise."""

    reason: str
    status_code: int = 202


def github_signature(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def match_github_secret(
    secrets: Mapping[str, str], body: bytes, signature: str | None
) -> tuple[str, ...]:
    """Repos whose secret signed `body` (several repos may share one secret). Every secret
    is tried, in constant time each, so the answer time does not depend on which matched."""
    if not signature or not signature.startswith("sha256="):
        return ()
    given = signature.encode("ascii", "replace")
    return tuple(
        repo
        for repo, secret in secrets.items()
        if hmac.compare_digest(github_signature(secret, body).encode(), given)
    )


def match_gitlab_token(tokens: Mapping[str, str], given: str | None) -> tuple[str, ...]:
    """Repos whose secret equals the `X-Gitlab-Token` header (constant time each)."""
    if not given:
        return ()
    raw = given.encode("utf-8", "replace")
    return tuple(repo for repo, token in tokens.items() if hmac.compare_digest(token.encode(), raw))


def decode_payload(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The JSON object of a delivery, from a JSON or a form-encoded (`payload=`) body."""
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(body.decode("utf-8"), strict_parsing=False)
        except UnicodeDecodeError:
            raise _bad_request("the form body is not UTF-8") from None
        if "payload" not in fields:
            raise _bad_request("the form body has no 'payload' field")
        raw: bytes | str = fields["payload"][0]
    elif media == "application/json" or media.endswith("+json"):
        raw = body
    else:
        raise WebhookRejected(
            f"webhook: unsupported content type {media!r} "
            "(send application/json or application/x-www-form-urlencoded)",
            http_status=415,
            code="unsupported_media_type",
        )
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _bad_request(f"the payload is not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise _bad_request("the payload is not a JSON object")
    return data


def payload_repo(provider: str, payload: Mapping[str, Any]) -> str | None:
    """The repository's full name as the provider writes it ("acme/app")."""
    holder = payload.get("repository" if provider == "github" else "project")
    if not isinstance(holder, dict):
        return None
    name = holder.get("full_name" if provider == "github" else "path_with_namespace")
    return name if isinstance(name, str) and name else None


def parse_github(event_name: str, payload: Mapping[str, Any], repo: str) -> Event | Ignored:
    """A GitHub delivery -> the Event to run, or why it is ignored."""
    if event_name == "ping":
        return Ignored("ping", status_code=200)
    if event_name == "pull_request":
        outcome = parse_github_pull_request(payload, repo)
        return Ignored(outcome) if isinstance(outcome, str) else outcome
    if event_name != "push":
        return Ignored(f"event {event_name or 'unknown'!r} is not built")
    if payload.get("deleted") is True:
        return Ignored("branch or tag deleted")
    kind, ref = _split_ref(_text(payload, "ref"))
    sha = _text(payload, "after")
    if not sha or sha == _ZERO_SHA:
        raise _bad_request("the push has no 'after' commit")
    head = payload.get("head_commit")
    message = head.get("message", "") if isinstance(head, dict) else ""
    if kind is EventKind.TAG and isinstance(head, dict) and isinstance(head.get("id"), str):
        sha = head["id"]  # an annotated tag's `after` is the tag object, not the commit
    before = _text(payload, "before")
    repository = payload.get("repository")
    default_branch = repository.get("default_branch") if isinstance(repository, dict) else None
    return Event(
        kind=kind,
        ref=ref,
        sha=sha,
        before_sha=None if before in ("", _ZERO_SHA) or payload.get("created") else before,
        repo=repo,
        message=message if isinstance(message, str) else "",
        default_branch=default_branch if isinstance(default_branch, str) else None,
    )


def parse_gitlab(event_name: str, payload: Mapping[str, Any], repo: str) -> Event | Ignored:
    """A GitLab delivery -> the Event to run, or why it is ignored."""
    if event_name == "Merge Request Hook":
        outcome = parse_gitlab_merge_request(payload, repo)
        return Ignored(outcome) if isinstance(outcome, str) else outcome
    if event_name not in _GITLAB_PUSH_EVENTS:
        return Ignored(f"event {event_name or 'unknown'!r} is not built")
    kind, ref = _split_ref(_text(payload, "ref"))
    sha = _text(payload, "checkout_sha") or _text(payload, "after")
    if not sha or sha == _ZERO_SHA:
        return Ignored("branch or tag deleted")
    commits = payload.get("commits")
    message = ""
    if isinstance(commits, list):
        for commit in commits:
            if isinstance(commit, dict) and commit.get("id") == sha:
                message = str(commit.get("message", ""))
    before = _text(payload, "before")
    project = payload.get("project")
    default_branch = project.get("default_branch") if isinstance(project, dict) else None
    return Event(
        kind=kind,
        ref=ref,
        sha=sha,
        before_sha=None if before in ("", _ZERO_SHA) else before,
        repo=repo,
        message=message,
        default_branch=default_branch if isinstance(default_branch, str) else None,
    )


def _split_ref(ref: str) -> tuple[EventKind, str]:
    if ref.startswith("refs/heads/"):
        kind, name = EventKind.PUSH, ref.removeprefix("refs/heads/")
    elif ref.startswith("refs/tags/"):
        kind, name = EventKind.TAG, ref.removeprefix("refs/tags/")
    else:
        raise _bad_request("the push has no 'ref' of the form refs/heads/… or refs/tags/…")
    check_ref(name, where="webhook: the pushed ref")  # the API's rule (conveyor.inputs)
    return kind, name


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    return value if isinstance(value, str) else ""


def _bad_request(what: str) -> WebhookRejected:
    return WebhookRejected(f"webhook: {what}", http_status=400, code="malformed_payload")
