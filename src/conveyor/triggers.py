"""An Event as the JSON-able `RunRecord.trigger` mapping, and back, so a queued run can be
checked out and planned after a restart. Pure: no I/O. Only fields known at trigger time are
kept (changed files and the file list are computed again from the checkout). Core: the
CLI and the server both store and read triggers through it.

A variable whose value holds a secret (`conveyor run --var X=$TOKEN`) is stored masked (the
one rule of `conveyor.masking`): the stored trigger is in the database file. When the value
is exactly one secret, the trigger names that secret (`secret_variables`), so a later play
reads the value from the environment again; a value that only contains a secret stays
masked."""

from __future__ import annotations

import re
from collections.abc import Mapping

from conveyor.masking import Masker
from conveyor.model import ChangeRequest, Event, EventKind

__all__ = [
    "event_from_trigger",
    "event_to_trigger",
    "hide_secret_variables",
    "needs_head_message",
    "skip_ci_reason",
]

# GitLab's and GitHub's convention, anywhere in the head commit's message, any case.
_SKIP_CI = re.compile(r"\[(skip ci|ci skip)\]", re.IGNORECASE)


_NEVER_SKIPPED = (EventKind.MANUAL, EventKind.SCHEDULE)


def skip_ci_reason(event: Event) -> str | None:
    """Why the run is skipped, when the head commit's message asks for it (`[skip ci]` or
    `[ci skip]`); None otherwise. A run asked for by hand or by a schedule is never
    skipped (as in GitLab: the convention is about pushes and requests)."""
    if event.kind in _NEVER_SKIPPED:
        return None
    found = _SKIP_CI.search(event.message)
    if found is None:
        return None
    return f"skipped: the head commit's message says {found.group(0)}"


def needs_head_message(event: Event) -> bool:
    """Whether `[skip ci]` can be decided only once the head commit's message is read from
    git: its delivery carried none (a GitHub `pull_request` payload has no commit message;
    a GitLab push may list no commits) and the convention applies to its kind."""
    return not event.message and event.kind not in _NEVER_SKIPPED


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
        **({"change": _change_to_dict(event.change)} if event.change is not None else {}),
    }


def _change_to_dict(change: ChangeRequest) -> dict[str, object]:
    return {
        "number": change.number,
        "source_branch": change.source_branch,
        "target_branch": change.target_branch,
        "title": change.title,
        "is_fork": change.is_fork,
        "source_repo": change.source_repo,
        "labels": list(change.labels),
        "url": change.url,
    }


def _change_from_dict(data: object) -> ChangeRequest | None:
    if not isinstance(data, dict):
        return None
    number = data.get("number")
    labels = data.get("labels")
    return ChangeRequest(
        number=number if isinstance(number, int) else 0,
        source_branch=str(data.get("source_branch", "")),
        target_branch=str(data.get("target_branch", "")),
        title=str(data.get("title", "")),
        is_fork=data.get("is_fork") is True,
        source_repo=str(data.get("source_repo", "")),
        labels=tuple(str(x) for x in labels) if isinstance(labels, list) else (),
        url=str(data.get("url", "")),
    )


def hide_secret_variables(
    trigger: Mapping[str, object], secrets: Mapping[str, str]
) -> dict[str, object]:
    """`trigger` with every secret value in its variables masked; a variable equal to a
    secret is listed under `secret_variables` (variable -> secret name) to be read again."""
    variables = trigger.get("variables")
    if not secrets or not isinstance(variables, dict):
        return dict(trigger)
    by_value = {value: name for name, value in secrets.items()}
    masker = Masker(by_value)
    hidden: dict[str, str] = {}
    masked: dict[str, object] = {}
    for key, value in variables.items():
        text = str(value)
        if text in by_value:
            hidden[key] = by_value[text]
        masked[key] = masker.mask(text)
    return {**trigger, "variables": masked, "secret_variables": hidden}


def event_from_trigger(data: Mapping[str, object], env: Mapping[str, str] | None = None) -> Event:
    """The Event stored by `event_to_trigger`; unknown or missing fields take defaults.
    With `env`, variables stored as a secret's name take that secret's value again."""
    variables = data.get("variables")
    hidden = data.get("secret_variables")
    if env is not None and isinstance(variables, dict) and isinstance(hidden, dict):
        found = {key: env[name] for key, name in hidden.items() if env.get(str(name))}
        variables = {**variables, **found}
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
        change=_change_from_dict(data.get("change")),
    )
