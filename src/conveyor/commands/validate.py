"""`conveyor validate` and `conveyor plan`: check a pipeline file, show what would run.

    validate: find file -> load (all problems at once) -> warnings -> one-line summary
    plan:     find file -> event (git checkout + flags) -> load -> plan -> render

GitLab's `include:rules` are decided while loading, for an event: `plan` uses its own;
`validate` does what GitLab's CI Lint does (it lints for a pipeline on the default branch):
a push of the checked-out commit to the default branch.

Problems end in cli.py as a ConfigError (exit 2, one `FILE:LINE:COL: message` per line on
stderr). Warnings go to stderr as `FILE:LINE:COL: warning: message` and do not fail.
Must not: import asyncio, SQLAlchemy, FastAPI or rich (validate must start fast); run jobs.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from conveyor.commands.options import (
    event_options,
    input_option,
    parse_inputs,
    parse_vars,
    strict_option,
)
from conveyor.config import find_pipeline_file, is_gitlab_file, load_pipeline
from conveyor.config.problems import render_warning
from conveyor.config.remote import GitLabFiles, is_offline
from conveyor.model import Event, EventKind, Pipeline, Plan
from conveyor.outbound.remote import HttpRemoteFetcher, allow_entries

if TYPE_CHECKING:
    from conveyor.config.gitlab.include_rules import ChangesSince

__all__ = ["plan", "plan_as_json", "render_plan", "validate"]


def _pipeline_path(file: str | Path | None) -> Path:
    return Path(file) if file else find_pipeline_file(Path())


def _lint_event(path: Path) -> Event | None:
    """The event `validate` decides GitLab's `include:rules` for (see the module's doc);
    None for the native format, which has none (and then git is not asked)."""
    if not is_gitlab_file(path):
        return None
    from conveyor.git.describe import event_from_checkout

    event = event_from_checkout(path.parent, kind=EventKind.PUSH)
    return replace(event, ref=event.default_branch or event.ref)


def _changes_lookup(path: Path, event: Event | None) -> ChangesSince | None:
    """What `include:rules:changes:compare_to` is decided with (git, only for an event)."""
    if event is None:
        return None
    from conveyor.git.describe import changes_lookup

    return changes_lookup(path.parent, event.sha)


def _remote_fetcher() -> HttpRemoteFetcher | None:
    """`include: remote` fetches; internal hosts only as CONVEYOR_REMOTE_INCLUDE_ALLOW lists.
    None in the offline mode (CONVEYOR_OFFLINE=1): remote includes are unavailable."""
    if is_offline(os.environ):
        return None
    return HttpRemoteFetcher(allow=allow_entries(os.environ))


def _gitlab_files() -> GitLabFiles | None:
    """`include: project/template/component` from CONVEYOR_GITLAB_URL (None when unset)."""
    if "CONVEYOR_GITLAB_URL" not in os.environ:
        return None
    from conveyor.outbound.gitlab_files import from_env

    return from_env(os.environ, offline=is_offline(os.environ))


def _load(path: Path, event: Event | None, *, strict: bool, inputs: tuple[str, ...]) -> Pipeline:
    """The pipeline at `path` as `event` sees it (remote and GitLab includes fetched as the
    environment allows); its warnings echoed to stderr."""
    pipeline = load_pipeline(
        path,
        event=event,
        changes_since=_changes_lookup(path, event),
        fetch=_remote_fetcher(),
        strict=strict,
        gitlab=_gitlab_files(),
        inputs=parse_inputs(inputs),
    )
    for warning in pipeline.warnings:
        click.echo(render_warning(warning), err=True)
    return pipeline


@click.command()
@click.option(
    "-f", "--file", "file", help="Pipeline file (default: .conveyor.yml, then .gitlab-ci.yml)."
)
@strict_option
@input_option
def validate(file: str | None, strict: bool, inputs: tuple[str, ...]) -> None:  # fmt: skip
    """Check a pipeline file and report every problem."""
    path = _pipeline_path(file)
    pipeline = _load(path, _lint_event(path), strict=strict, inputs=inputs)
    stages = len(pipeline.stages)
    tags = sorted({tag for job in pipeline.jobs for tag in job.tags})
    click.echo(
        f"{path}: OK ({pipeline.flavor}): {len(pipeline.jobs)} jobs, "
        f"{stages} stage{'s' if stages != 1 else ''}"
        + (f", tags {' '.join(tags)}" if tags else "")
        + (f", {len(pipeline.warnings)} warning(s)" if pipeline.warnings else "")
    )


def plan_as_json(result: Plan) -> dict[str, Any]:
    """The plan as JSON-able data (what `conveyor plan --json` prints)."""
    event = result.event
    return {
        "pipeline": result.pipeline.name,
        "file": result.pipeline.file,
        "flavor": result.pipeline.flavor,
        "event": {"kind": str(event.kind), "ref": event.ref, "sha": event.sha},
        "workflow_excluded": result.workflow_excluded,
        "jobs": [
            {
                "name": planned.name,
                "stage": planned.job.stage,
                "needs": None
                if planned.job.needs is None
                else [need.job for need in planned.job.needs],
                "depends_on": list(planned.depends_on),
                "artifacts_from": list(planned.artifacts_from),
                "when": str(planned.when),
                "allow_failure": planned.allow_failure,
                "start_in_s": planned.start_in_s,
                "tags": list(planned.job.tags),
            }
            for planned in result.jobs
        ],
        "excluded": [{"name": item.name, "reason": item.reason} for item in result.excluded],
    }


def render_plan(result: Plan) -> list[str]:
    """Human-readable lines: the jobs in order, then the excluded jobs and why."""
    event = result.event
    head = f"{result.pipeline.name} ({result.pipeline.file}) for {event.kind}"
    head += f" {event.ref or '(no ref)'}@{event.sha[:8]}"
    if result.workflow_excluded is not None:
        return [f"{head}: no jobs: {result.workflow_excluded}"]
    lines = [f"{head}: {len(result.jobs)} jobs, {len(result.excluded)} excluded"]
    width = max((len(planned.name) for planned in result.jobs), default=0)
    stage_width = max((len(planned.job.stage) for planned in result.jobs), default=0)
    for index, planned in enumerate(result.jobs, start=1):
        after = ", ".join(planned.depends_on) or "-"
        flags = [] if planned.when == "on_success" else [str(planned.when)]
        if planned.allow_failure:
            flags.append("allow_failure")
        if planned.start_in_s:
            flags.append(f"start_in {planned.start_in_s:g}s")
        if planned.job.tags:
            flags.append(f"tags {' '.join(planned.job.tags)}")
        extra = f"  [{', '.join(flags)}]" if flags else ""
        lines.append(
            f"{index:>3}. {planned.name:<{width}}  stage {planned.job.stage:<{stage_width}}"
            f"  after: {after}{extra}"
        )
    if result.excluded:
        lines.append("excluded:")
        lines.extend(f"  {item.name}: {item.reason}" for item in result.excluded)
    return lines


@click.command()
@event_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@strict_option
@input_option
def plan(
    file: Path | None,
    event: str,
    ref: str | None,
    sha: str | None,
    variables: tuple[str, ...],
    as_json: bool,
    strict: bool,
    inputs: tuple[str, ...],
) -> None:
    """Show the jobs that would run, and why the others would not."""
    from conveyor.git.describe import event_from_checkout
    from conveyor.plan import compare_to_refs
    from conveyor.plan import plan as plan_pipeline

    path = _pipeline_path(file)
    directory = path.parent
    trigger = event_from_checkout(
        directory, kind=EventKind(event), ref=ref, sha=sha, variables=parse_vars(variables)
    )
    pipeline = _load(path, trigger, strict=strict, inputs=inputs)  # the event decides include:rules
    from conveyor.git.describe import add_compare_changes  # rules:changes:compare_to diffs

    trigger = add_compare_changes(directory, trigger, compare_to_refs(pipeline, trigger))
    result = plan_pipeline(pipeline, trigger)
    if as_json:
        click.echo(json.dumps(plan_as_json(result), indent=2))
    else:
        for line in render_plan(result):
            click.echo(line)
