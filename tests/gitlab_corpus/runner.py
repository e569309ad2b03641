"""Run one corpus case through conveyor (load_gitlab for its event → plan → execute_run)
and compare the result with its expectation file. Shared by the pytest corpus test and
`make compat`.

A case is a folder holding `.gitlab-ci.yml` (plus any files it includes or tests for) and
`expect.yml`:

    source: gitlab-ci-local 4.75.1 | GitLab docs <page>   where the expectation comes from
    event: push            push | tag | manual | schedule | merge_request_event (default push)
    ref: main              branch or tag name (default main)
    changed: [paths]       files changed by the push (default: unknown, so changes hold)
    changes_by_ref: {ref: [paths]}   files changed since each ref git resolves, for
                           rules:changes:compare_to (default: not looked up)
    play: [jobs]           manual jobs to play
    status: success        final run status
    jobs: {name: status}   every planned job and its final status
    excluded: [names]      jobs that are not in the pipeline
    order: [[a, b], ...]   a finished before b started
    exclusive: [[a, b]]    a and b never ran at the same time
    attempts: {name: n}    executions of a job
    exit_codes: {name: n}  exit code of a job
    allowed_failures: [n]  failed jobs whose failure is allowed
    logs: {name: [text]}   texts that appear in the job's output lines
    absent_logs: {...}     texts that must not appear
    warnings: [keyword]    unsupported keywords reported as warnings
    workflow_excluded: true   workflow rules create no pipeline
    config_error: text     the file (or its plan for the event) is refused with a problem
                           containing this text (or every text of a list)
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from conveyor.config.gitlab import load_gitlab
from conveyor.engine.runner import LocalRunner, ProcessGroups
from conveyor.engine.scheduler import RunSetup, execute_run
from conveyor.errors import ConfigError
from conveyor.model import Event, EventKind, Plan, RunRecord, Status
from conveyor.plan import plan
from tests.fakes.memory_logs import MemoryLogs
from tests.fakes.memory_store import MemoryRunStore

__all__ = ["CORPUS", "Outcome", "case_dirs", "check", "load_expect", "run_case"]

CORPUS = Path(__file__).parent
SHA = "0123456789abcdef0123456789abcdef01234567"


def case_dirs() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if (p / ".gitlab-ci.yml").is_file())


def load_expect(case: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((case / "expect.yml").read_text())
    return data


@dataclass
class Outcome:
    plan: Plan | None
    warnings: tuple[str, ...]
    record: RunRecord | None = None
    logs: MemoryLogs = field(default_factory=MemoryLogs)
    problems: tuple[str, ...] = ()


def _files(root: Path) -> tuple[str, ...]:
    return tuple(
        sorted(
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and p.name != "expect.yml"
        )
    )


def event_for(expect: dict[str, Any], workspace: Path) -> Event:
    changed = expect.get("changed")
    by_ref = expect.get("changes_by_ref")
    return Event(
        kind=EventKind(expect.get("event", "push")),
        ref=str(expect.get("ref", "main")),
        sha=SHA,
        repo="corpus/" + workspace.name,
        message="corpus case",
        default_branch="main",
        changed_files=tuple(changed) if changed is not None else None,
        files=_files(workspace),
        changes_by_ref=(
            {str(ref): tuple(paths) for ref, paths in by_ref.items()}
            if by_ref is not None
            else None
        ),
    )


async def run_case(case: Path, tmp: Path) -> Outcome:
    """Copy the case to `tmp`, plan it for its event, execute it with the real engine."""
    expect = load_expect(case)
    workspace = tmp / case.name
    shutil.copytree(case, workspace, ignore=shutil.ignore_patterns("expect.yml"))
    event = event_for(expect, workspace)
    try:
        pipeline = load_gitlab(workspace / ".gitlab-ci.yml", event=event)  # include:rules
        the_plan = plan(pipeline, event)
    except ConfigError as exc:
        return Outcome(None, (), problems=tuple(str(p) for p in exc.problems))
    outcome = Outcome(the_plan, pipeline.warnings)
    if the_plan.workflow_excluded is not None:
        return outcome
    store = MemoryRunStore()
    run = store.create_run(
        RunRecord(
            run_id="corpus",
            repo=the_plan.event.repo,
            ref=the_plan.event.ref,
            sha=SHA,
            event=the_plan.event.kind,
            status=Status.PENDING,
            created_at=datetime.now(UTC),
            number=1,
        )
    )
    outcome.record = await execute_run(
        the_plan,
        run,
        RunSetup(
            store=store,
            logs=outcome.logs,
            workspace=workspace,
            run_dir=tmp / f"{case.name}-run",
            concurrency=4,
            secrets={},
            base_env=os.environ,
            play=frozenset(expect.get("play", ())),
            runner=LocalRunner(store=store, grace_s=0.5, groups=ProcessGroups()),
            grace_s=0.5,
        ),
    )
    return outcome


def check(expect: dict[str, Any], outcome: Outcome) -> list[str]:
    """Every difference between the expectation and what conveyor did (empty: all agree)."""
    if "config_error" in expect:
        raw = expect["config_error"]
        wanted = [str(t) for t in raw] if isinstance(raw, list) else [str(raw)]
        if not any(all(t in problem for t in wanted) for problem in outcome.problems):
            return [f"expected a problem containing {wanted}, got {list(outcome.problems)}"]
        return []
    if outcome.plan is None:
        return [f"the file was refused: {list(outcome.problems)}"]
    if expect.get("workflow_excluded"):
        if outcome.plan.workflow_excluded is None:
            return ["expected the workflow rules to exclude the pipeline"]
        return []
    if outcome.record is None:
        return [f"workflow rules excluded the pipeline: {outcome.plan.workflow_excluded}"]
    diffs: list[str] = []
    jobs = {job.name: job for job in outcome.record.jobs}
    actual = {name: str(job.status) for name, job in jobs.items()}
    if actual != expect.get("jobs", {}):
        diffs.append(f"jobs: expected {expect.get('jobs')}, got {actual}")
    if str(outcome.record.status) != expect.get("status"):
        diffs.append(f"run status: expected {expect.get('status')}, got {outcome.record.status}")
    excluded = {e.name for e in outcome.plan.excluded}
    for name in expect.get("excluded", ()):
        if name not in excluded:
            diffs.append(f"{name}: expected to be excluded")
    for first, second in expect.get("order", ()):
        a, b = jobs.get(first), jobs.get(second)
        if a is None or b is None or a.finished_at is None or b.started_at is None:
            diffs.append(f"order {first} -> {second}: a job did not run")
        elif a.finished_at > b.started_at:
            diffs.append(f"order: {second} started before {first} finished")
    for first, second in expect.get("exclusive", ()):
        a, b = jobs[first], jobs[second]
        if None in (a.started_at, a.finished_at, b.started_at, b.finished_at):
            diffs.append(f"exclusive {first}, {second}: a job did not run")
        elif a.started_at < b.finished_at and b.started_at < a.finished_at:  # type: ignore[operator]
            diffs.append(f"exclusive: {first} and {second} overlapped")
    for name, attempts in expect.get("attempts", {}).items():
        if jobs[name].attempt != attempts:
            diffs.append(f"{name}: expected {attempts} attempts, got {jobs[name].attempt}")
    for name, code in expect.get("exit_codes", {}).items():
        if jobs[name].exit_code != code:
            diffs.append(f"{name}: expected exit code {code}, got {jobs[name].exit_code}")
    for name in expect.get("allowed_failures", ()):
        if not jobs[name].allow_failure:
            diffs.append(f"{name}: expected its failure to be allowed")
    for name, texts in expect.get("logs", {}).items():
        output = "\n".join(outcome.logs.texts(name))
        diffs.extend(f"{name}: output lacks {t!r}" for t in texts if t not in output)
    for name, texts in expect.get("absent_logs", {}).items():
        output = "\n".join(outcome.logs.texts(name))
        diffs.extend(f"{name}: output has {t!r}" for t in texts if t in output)
    for keyword in expect.get("warnings", ()):
        if not any(f"warning: {keyword} " in w for w in outcome.warnings):
            diffs.append(f"no warning for {keyword}")
    return diffs
