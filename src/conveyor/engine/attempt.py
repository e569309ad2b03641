"""One attempt of a job as the scheduler sees it: the spec handed to the executor, the job
record made from its result, and the job's own log lines.

The scheduler decides *whether* and *when* a job runs (with status.py) and hands each
attempt to the run's `Executor` (engine.executor) as an `AttemptSpec`: this module builds
that spec (the job's environment, CI_PROJECT_DIR the folder the attempt runs in, the
secrets to add and to mask, artifacts, caches, time limit, runner tags with their `$VARS`
expanded by the job's variables as GitLab does) and turns the `AttemptResult`
into a `JobRecord` (an allowed failure decided by status.py). `JobLog` writes a job's lines
to the LogSink and the observer: the executor's batches as they come (masked and numbered
already) and the scheduler's own `system` lines (retries, skips), numbered after them.
Must not: run processes or touch workspaces (the executor does), decide retries (status.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from conveyor.clock import SYSTEM_CLOCK, Clock
from conveyor.config.expr import expand
from conveyor.engine.artifacts import safe_segment
from conveyor.engine.env import job_environment, safe_base
from conveyor.engine.executor import AttemptResult, AttemptSpec, Executor, WorkspaceSource
from conveyor.engine.sandbox import NO_SANDBOX, Sandbox
from conveyor.masking import Masker
from conveyor.model import JobRecord, LogRecord, Plan, PlannedJob, Status, Stream
from conveyor.status import is_allowed_failure
from conveyor.store.base import LogSink

__all__ = [
    "DEFAULT_JOB_TIMEOUT_S",
    "AttemptState",
    "JobLog",
    "RunContext",
    "RunObserver",
    "attempt_record",
    "attempt_spec",
    "runner_tags",
]

DEFAULT_JOB_TIMEOUT_S = 3600.0  # GitLab's default job timeout, when a job sets none


class RunObserver(Protocol):
    """What a live view (terminal, SSE) learns while a run executes. Calls are synchronous
    and must be quick: they happen on the event loop, between output chunks."""

    def job_updated(self, record: JobRecord) -> None: ...

    def lines_written(self, job: str, records: Sequence[LogRecord]) -> None: ...


@dataclass(slots=True)
class RunContext:
    """What every attempt of a run shares."""

    plan: Plan
    run_id: str
    run_number: int
    logs: LogSink
    workspace: Path
    run_dir: Path
    secrets: Mapping[str, str]
    base_env: Mapping[str, str]
    executor: Executor
    masker: Masker
    observer: RunObserver | None
    clock: Clock = SYSTEM_CLOCK
    line_counts: dict[str, int] = field(default_factory=dict)
    sandbox: Sandbox = NO_SANDBOX


class JobLog:
    """Writes one job's lines to the LogSink, then to the observer; numbers go on from 1
    across attempts."""

    __slots__ = ("_ctx", "_job")

    def __init__(self, ctx: RunContext, job: str) -> None:
        self._ctx = ctx
        self._job = job

    @property
    def last_line(self) -> int:
        return self._ctx.line_counts.get(self._job, 0)

    def write_records(self, records: Sequence[LogRecord]) -> None:
        """A batch from the executor: masked and numbered already."""
        if not records:
            return
        ctx = self._ctx
        ctx.line_counts[self._job] = records[-1].n
        ctx.logs.write_many(records)
        if ctx.observer is not None:
            ctx.observer.lines_written(self._job, records)

    def system(self, text: str, step: str = "") -> None:
        """One line of the scheduler's own (a retry, a skip, a cancel), masked."""
        ctx = self._ctx
        n = self.last_line + 1
        line = ctx.masker.mask(text)
        self.write_records(
            [LogRecord(ctx.clock.now(), ctx.run_id, self._job, step, Stream.SYSTEM, n, line)]
        )


@dataclass(slots=True)
class AttemptState:
    """The attempt's record while it runs; the scheduler records it if it is canceled."""

    record: JobRecord

    def snapshot(self, **changes: object) -> JobRecord:
        return replace(self.record, **changes)  # type: ignore[arg-type]  # changes are JobRecord fields


def attempt_spec(
    ctx: RunContext, planned: PlannedJob, *, attempt: int, job_number: int, first_line: int
) -> AttemptSpec:
    """The executor's spec for attempt `attempt` of `planned` (engine.executor): the job's
    environment built here, with CI_PROJECT_DIR the folder the attempt will run in."""
    job = planned.job
    isolate = ctx.plan.pipeline.isolate_jobs
    job_dir = (
        ctx.run_dir / "work" / safe_segment(f"{job.name}-{attempt}") if isolate else ctx.workspace
    )
    env = job_environment(
        ctx.plan,
        planned,
        base_env=ctx.base_env,
        run_id=ctx.run_id,
        pipeline_number=ctx.run_number,
        job_number=job_number,
        attempt=attempt,
        project_dir=str(job_dir),
    )
    names = (*ctx.plan.pipeline.secrets, *job.secrets)
    return AttemptSpec(
        run_id=ctx.run_id,
        job=job.name,
        attempt=attempt,
        first_line=first_line,
        workspace=WorkspaceSource(str(ctx.workspace), isolate, ctx.plan.event.sha, str(job_dir)),
        env=env,
        steps=job.steps,
        after_steps=job.after_steps,
        shell=job.shell,
        workdir=job.workdir,
        timeout_s=job.timeout_s if job.timeout_s is not None else DEFAULT_JOB_TIMEOUT_S,
        event_variables=ctx.plan.event.variables,
        secrets={name: ctx.secrets[name] for name in names if name in ctx.secrets},
        mask=ctx.masker.values,  # the run's secrets and conveyor's own
        artifacts_from=planned.artifacts_from,
        artifacts=job.artifacts,
        caches=job.caches,
        sandbox=ctx.sandbox,
        tags=runner_tags(job.tags, {**env, **ctx.plan.event.variables}),
        inherited=inherited_names(env, ctx.base_env),
    )


def inherited_names(env: Mapping[str, str], base_env: Mapping[str, str]) -> tuple[str, ...]:
    """The names of `env` still holding the value of conveyor's safe base (not set again by
    the pipeline): a remote host gives its own values for these."""
    return tuple(name for name, value in safe_base(base_env).items() if env.get(name) == value)


def runner_tags(tags: Sequence[str], env: Mapping[str, str]) -> tuple[str, ...]:
    """The job's tags with `$VARS` expanded as GitLab does (`expand_existing`: a variable
    the job does not have stays as written); blank results dropped, duplicates too. Never
    with secrets: tags name queues, which are not masked."""
    expanded = (expand(tag, env, keep_unknown=True) if "$" in tag else tag for tag in tags)
    return tuple(dict.fromkeys(tag for tag in expanded if tag.strip()))


def attempt_record(
    planned: PlannedJob, state: AttemptState, result: AttemptResult, finished_at: datetime
) -> JobRecord:
    """The job record of a finished attempt: its outcome, and for a failure whether it is
    allowed (status.is_allowed_failure)."""
    if result.status is Status.SUCCESS:
        return state.snapshot(
            status=Status.SUCCESS,
            exit_code=0,
            finished_at=finished_at,
            steps=result.steps,
            worker=result.worker,
        )
    codes = planned.job.allow_failure_exit_codes
    allowed = is_allowed_failure(planned.allow_failure, codes, result.exit_code)
    return state.snapshot(
        status=result.status,
        exit_code=result.exit_code,
        finished_at=finished_at,
        allow_failure=allowed,
        reason=result.reason or "failed",
        steps=result.steps,
        worker=result.worker,
    )
