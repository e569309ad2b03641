"""An Event as the JSON-able `RunRecord.trigger` mapping, and back, so a queued run can be
checked out and planned after a restart. Pure: no I/O. Only fields known at trigger time are
kept (changed files and the file list are computed again from the checkout)."""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.model import Event, EventKind

__all__ = ["event_from_trigger", "event_to_trigger"]


def event_to_trigger(event: Event) -> dict[str, object]:
    return {
        "kind": str(event.kind),
        "ref": event.ref,
        "sha": event.sha,
        "before_sha": event.before_sha,
        "repo": event.repo,
        "message": event.message,
        "default_branch": event.default_branch,
        "variables": dict(event.variables),
    }


def event_from_trigger(data: Mapping[str, object]) -> Event:
    """The Event stored by `event_to_trigger`; unknown or missing fields take defaults."""
    variables = data.get("variables")
    before = data.get("before_sha")
    default_branch = data.get("default_branch")
    return Event(
        kind=EventKind(str(data.get("kind", EventKind.PUSH))),
        ref=str(data.get("ref", "")),
        sha=str(data.get("sha", "")),
        before_sha=before if isinstance(before, str) else None,
        repo=str(data.get("repo", "")),
        message=str(data.get("message", "")),
        default_branch=default_branch if isinstance(default_branch, str) else None,
        variables=(
            {str(k): str(v) for k, v in variables.items()} if isinstance(variables, dict) else {}
        ),
    )
