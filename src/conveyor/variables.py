"""Predefined variables a job sees, for both pipeline flavors. Pure: values come in as
arguments (event, ids, paths), nothing is read from the environment here.

Precedence of a job's environment, lowest first (the engine applies it):
  safe base of conveyor's environment (PATH, HOME, LANG, …; never its secrets)
  < predefined (this module) < pipeline env < plan variables (workflow rules)
  < job env < rule variables < step env < event variables (--var, API) < declared secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from conveyor.model import ChangeRequest, Event, EventKind, Pipeline, PlannedJob

__all__ = ["include_variables", "job_variables", "pipeline_variables", "ref_slug"]

_SLUG_INVALID = re.compile(r"[^a-z0-9]")

# GitLab's CI_PIPELINE_SOURCE for each event kind ("manual" runs are GitLab's "web"). A
# GitHub pull request is a merge request pipeline too, so `.gitlab-ci.yml` rules written for
# merge requests decide the same for both.
_GITLAB_SOURCE = {
    EventKind.PUSH: "push",
    EventKind.TAG: "push",
    EventKind.MANUAL: "web",
    EventKind.SCHEDULE: "schedule",
    EventKind.MERGE_REQUEST: "merge_request_event",
    EventKind.PULL_REQUEST: "merge_request_event",
}


def ref_slug(ref: str) -> str:
    """GitLab's CI_COMMIT_REF_SLUG (and CI_JOB_NAME_SLUG): lowercased, *each* character
    outside a-z0-9 replaced by '-' (runs are not collapsed: `a--b` stays), cut to 63
    characters (bytes: every one left is ASCII), then '-' trimmed at both ends."""
    return _SLUG_INVALID.sub("-", ref.lower())[:63].strip("-")


def pipeline_variables(pipeline: Pipeline, event: Event) -> dict[str, str]:
    """Variables known before any job runs; rules and `if` expressions see these."""
    values = {
        "CI": "true",
        "CONVEYOR_EVENT": str(event.kind),
        "CONVEYOR_REF": event.ref,
        "CONVEYOR_SHA": event.sha,
        **_change_variables(event.change),
    }
    if pipeline.flavor == "gitlab":
        values.update(_gitlab_pipeline_variables(event))
    return values


def include_variables(event: Event) -> dict[str, str]:
    """What GitLab's `include` (and `include:rules`) see, known before the file is read: the
    predefined variables of a GitLab pipeline for `event`, then the event's own (`--var`, API),
    as GitLab's `config_variables`. Never the file's `variables:` (read after the includes)."""
    return {
        "CI": "true",
        "CONVEYOR_EVENT": str(event.kind),
        "CONVEYOR_REF": event.ref,
        "CONVEYOR_SHA": event.sha,
        **_change_variables(event.change),
        **_gitlab_pipeline_variables(event),
        **event.variables,
    }


def _change_variables(change: ChangeRequest | None) -> dict[str, str]:
    """A pull or merge request's facts, for pipelines of both flavors. Values as written by
    whoever opened the request: environment variables only, never expanded."""
    if change is None:
        return {}
    return {
        "CONVEYOR_PR_NUMBER": str(change.number),
        "CONVEYOR_PR_SOURCE_BRANCH": change.source_branch,
        "CONVEYOR_PR_TARGET_BRANCH": change.target_branch,
        "CONVEYOR_PR_TITLE": change.title,
        "CONVEYOR_PR_IS_FORK": "true" if change.is_fork else "false",
        "CONVEYOR_PR_LABELS": ",".join(change.labels),
    }


def _merge_request_variables(event: Event, change: ChangeRequest) -> dict[str, str]:
    """GitLab's CI_MERGE_REQUEST_* of a (detached) merge request pipeline."""
    ref_path = (
        f"refs/pull/{change.number}/head"
        if event.kind is EventKind.PULL_REQUEST
        else f"refs/merge-requests/{change.number}/head"
    )
    values = {
        "CI_MERGE_REQUEST_IID": str(change.number),
        "CI_MERGE_REQUEST_TITLE": change.title,
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": change.source_branch,
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": change.target_branch,
        "CI_MERGE_REQUEST_EVENT_TYPE": "detached",
        "CI_MERGE_REQUEST_PROJECT_PATH": event.repo,
        "CI_MERGE_REQUEST_SOURCE_PROJECT_PATH": change.source_repo or event.repo,
        "CI_MERGE_REQUEST_REF_PATH": ref_path,
    }
    if change.labels:  # GitLab leaves it unset when the request has no labels
        values["CI_MERGE_REQUEST_LABELS"] = ",".join(change.labels)
    if change.diff_base_sha:
        values["CI_MERGE_REQUEST_DIFF_BASE_SHA"] = change.diff_base_sha
    return values


def _gitlab_pipeline_variables(event: Event) -> dict[str, str]:
    project_path = event.repo or "project"
    namespace, _, name = project_path.rpartition("/")
    title = event.message.split("\n", 1)[0] if event.message else ""
    values = {
        "GITLAB_CI": "true",
        "CI_COMMIT_SHA": event.sha,
        "CI_COMMIT_SHORT_SHA": event.sha[:8],
        "CI_COMMIT_BEFORE_SHA": event.before_sha or "0" * 40,
        "CI_COMMIT_REF_NAME": event.ref,
        "CI_COMMIT_REF_SLUG": ref_slug(event.ref),
        "CI_COMMIT_MESSAGE": event.message,
        "CI_COMMIT_TITLE": title,
        "CI_DEFAULT_BRANCH": event.default_branch or "main",
        "CI_PIPELINE_SOURCE": _GITLAB_SOURCE[event.kind],
        "CI_PROJECT_NAME": name,
        "CI_PROJECT_PATH": project_path,
        "CI_PROJECT_NAMESPACE": namespace,
    }
    if event.kind is EventKind.TAG:
        values["CI_COMMIT_TAG"] = event.ref
    elif event.kind.is_change_request:
        # GitLab sets no CI_COMMIT_BRANCH in merge request pipelines.
        values["CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"] = event.ref
        if event.change is not None:
            values.update(_merge_request_variables(event, event.change))
    else:
        values["CI_COMMIT_BRANCH"] = event.ref
    return values


def job_variables(
    pipeline: Pipeline,
    planned: PlannedJob,
    *,
    run_id: str,
    pipeline_number: int,
    job_number: int,
    attempt: int,
    project_dir: str,
) -> dict[str, str]:
    """Variables specific to one job attempt (ids, names, paths, parallel index)."""
    job = planned.job
    values = {
        "CONVEYOR_RUN_ID": run_id,
        "CONVEYOR_JOB": job.name,
        "CONVEYOR_ATTEMPT": str(attempt),
    }
    if pipeline.flavor == "gitlab":
        values.update(
            {
                "CI_PIPELINE_ID": str(pipeline_number),
                "CI_PIPELINE_IID": str(pipeline_number),
                "CI_JOB_ID": str(job_number),
                "CI_JOB_NAME": job.name,
                "CI_JOB_NAME_SLUG": ref_slug(job.name),
                "CI_JOB_STAGE": job.stage,
                "CI_PROJECT_DIR": project_dir,
                "CI_BUILDS_DIR": project_dir,
            }
        )
        if job.node_total is not None and job.node_index is not None:
            values["CI_NODE_INDEX"] = str(job.node_index)
            values["CI_NODE_TOTAL"] = str(job.node_total)
        else:
            values["CI_NODE_TOTAL"] = "1"
        if job.environment:
            values["CI_ENVIRONMENT_NAME"] = job.environment
    return values


def merged(*layers: Mapping[str, str]) -> dict[str, str]:
    """Later layers win."""
    result: dict[str, str] = {}
    for layer in layers:
        result.update(layer)
    return result
