"""One execution of one job: workspace, cache and artifacts in, steps, after_steps, cache,
artifacts and dotenv report out (GitLab's cache.py and dotenv.py do the file work).

The scheduler decides *whether* and *when* a job runs (with status.py); this module runs one
attempt and returns its record. Every output line is masked, numbered per job and written
to the LogSink as it arrives (a batch per chunk the runner reads), then shown to the
observer. The job deadline covers every step; a step's own timeout can only shorten it.
`after_steps` (GitLab's after_script) run after the steps, even after a failure, with their
own limit, and never change the job's status. Cancellation is never swallowed here: the
scheduler reads the partial state from `AttemptState` to record a canceled attempt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from conveyor.engine.artifacts import (
    artifacts_dir,
    collect_artifacts,
    dotenv_dir,
    restore_artifacts,
    safe_segment,
    should_collect,
)
from conveyor.engine.env import job_environment, step_environment
from conveyor.engine.runner import LineSink, StepResult, StepRunner, StepSpec
from conveyor.engine.workspace import JobWorkspaces
from conveyor.masking import Masker
from conveyor.model import JobRecord, LogRecord, Plan, PlannedJob, Status, Step, StepRecord, Stream
from conveyor.status import is_allowed_failure
from conveyor.store.base import LogSink

__all__ = [
    "AFTER_STEPS_TIMEOUT_S",
    "DEFAULT_JOB_TIMEOUT_S",
    "AttemptState",
    "JobLog",
    "RunContext",
    "RunObserver",
    "run_attempt",
]

DEFAULT_JOB_TIMEOUT_S = 3600.0  # GitLab's default job timeout, when a job sets none
AFTER_STEPS_TIMEOUT_S = 300.0  # GitLab's after_script limit


class RunObserver(Protocol):
    """What a live view (terminal, SSE) learns while a run executes. Calls are synchronous
    and must be quick: they happen on the event loop, between output chunks."""

    def job_updated(self, record: JobRecord) -> None: ...

    def lines_written(self, job: str, records: Sequence[LogRecord]) -> None: ...


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class RunContext:
    """What every attempt of a run shares."""

    plan: Plan
    run_id: str
    run_number: int
    logs: LogSink
    workspace: Path
    run_dir: Path
    home: Path | None
    secrets: Mapping[str, str]
    base_env: Mapping[str, str]
    runner: StepRunner
    masker: Masker
    observer: RunObserver | None
    workspaces: JobWorkspaces
    line_counts: dict[str, int] = field(default_factory=dict)

    @property
    def cache_root(self) -> Path:
        """Where GitLab `cache:` folders live between runs (engine/cache.py)."""
        from conveyor.engine.cache import cache_root

        return cache_root(self.home, self.run_dir)


class JobLog:
    """Writes one job's lines: masked, numbered from 1 across attempts, then observed."""

    __slots__ = ("_ctx", "_job")

    def __init__(self, ctx: RunContext, job: str) -> None:
        self._ctx = ctx
        self._job = job

    def write(self, step: str, stream: Stream, texts: Sequence[str]) -> None:
        ctx = self._ctx
        ts = now_utc()
        n = ctx.line_counts.get(self._job, 0)
        mask = ctx.masker.mask if ctx.masker.is_active else None
        run_id, job = ctx.run_id, self._job
        if mask is None:
            records = [
                LogRecord(ts, run_id, job, step, stream, number, text)
                for number, text in enumerate(texts, start=n + 1)
            ]
        else:
            records = [
                LogRecord(ts, run_id, job, step, stream, number, mask(text))
                for number, text in enumerate(texts, start=n + 1)
            ]
        ctx.line_counts[job] = n + len(records)
        ctx.logs.write_many(records)
        if ctx.observer is not None:
            ctx.observer.lines_written(self._job, records)

    def system(self, text: str, step: str = "") -> None:
        self.write(step, Stream.SYSTEM, [text])

    def sink(self, step: str) -> LineSink:
        def on_lines(stream: Stream, texts: Sequence[str]) -> None:
            self.write(step, stream, texts)

        return on_lines


@dataclass(slots=True)
class AttemptState:
    """The attempt as far as it got; the scheduler records it if the attempt is canceled."""

    record: JobRecord
    steps: list[StepRecord] = field(default_factory=list)

    def snapshot(self, **changes: object) -> JobRecord:
        return replace(self.record, steps=tuple(self.steps), **changes)  # type: ignore[arg-type]  # changes are JobRecord fields


def _format_s(seconds: float) -> str:
    return f"{seconds:g}s"


async def _run_steps(
    ctx: RunContext,
    steps: Sequence[Step],
    *,
    state: AttemptState | None,
    log: JobLog,
    job_env: Mapping[str, str],
    cwd_root: Path,
    planned: PlannedJob,
    deadline: float,
    job_timeout_s: float,
) -> tuple[StepResult | None, str | None]:
    """Run `steps` until one fails; returns (the failing result or None, a reason)."""
    job = planned.job
    event_vars = ctx.plan.event.variables
    names = (*ctx.plan.pipeline.secrets, *job.secrets)
    secrets = {name: ctx.secrets[name] for name in names if name in ctx.secrets}
    for step in steps:
        started_at = now_utc()
        step_deadline = deadline
        if step.timeout_s is not None:
            step_deadline = min(deadline, time.monotonic() + step.timeout_s)
        workdir = step.workdir or job.workdir
        cwd = cwd_root / workdir if workdir else cwd_root
        env = step_environment(job_env, step, event_variables=event_vars, secrets=secrets)
        if not cwd.is_dir():
            result = StepResult(None, error=f"workdir {workdir!r} does not exist in the workspace")
        else:
            spec = StepSpec(step.run, env, cwd, job.shell, step_deadline, ctx.run_id, job.name)
            result = await ctx.runner.run_step(spec, log.sink(step.name))
        status = Status.SUCCESS if result.is_success else Status.FAILED
        if state is not None:
            state.steps.append(
                StepRecord(step.name, status, result.exit_code, started_at, now_utc())
            )
        if result.is_success:
            continue
        if result.timed_out:
            limit = step.timeout_s if step_deadline < deadline else None
            reason = (
                f"step {step.name!r} timed out after {_format_s(limit)}"
                if limit is not None
                else f"job timed out after {_format_s(job_timeout_s)}"
            )
        elif result.error is not None:
            reason = f"step {step.name!r}: {result.error}"
        else:
            reason = f"step {step.name!r} exited with code {result.exit_code}"
        log.system(reason, step.name)
        return result, reason
    return None, None


async def run_attempt(
    ctx: RunContext,
    planned: PlannedJob,
    state: AttemptState,
    *,
    job_number: int,
) -> tuple[JobRecord, StepResult | None]:
    """Run one attempt (its record is already in `state`, status running); returns the
    final record and the failing step's result (None on success)."""
    job = planned.job
    attempt = state.record.attempt
    log = JobLog(ctx, job.name)
    timeout_s = job.timeout_s if job.timeout_s is not None else DEFAULT_JOB_TIMEOUT_S
    deadline = time.monotonic() + timeout_s
    isolate = ctx.workspaces.isolate
    scratch = ctx.run_dir / "work" / safe_segment(f"{job.name}-{attempt}")
    async with ctx.workspaces.open(scratch) as where:
        job_env = job_environment(
            ctx.plan,
            planned,
            base_env=ctx.base_env,
            run_id=ctx.run_id,
            pipeline_number=ctx.run_number,
            job_number=job_number,
            attempt=attempt,
            project_dir=str(where),
        )
        # GitLab's cache and dotenv modules are imported only by jobs that use them: most
        # runs never do, and a short run's time is mostly imports.
        cache_keys: list[str | None] = []  # GitLab cache: restored before artifacts (cache.py)
        if job.caches:
            from conveyor.engine.cache import restore_caches

            cache_keys = await restore_caches(
                job.caches, root=ctx.cache_root, workspace=where, env=job_env, say=log.system
            )
        if isolate and planned.artifacts_from:
            sources = [artifacts_dir(ctx.run_dir, name) for name in planned.artifacts_from]
            sources = [source for source in sources if source.is_dir()]  # saved any?
            if sources:
                await asyncio.to_thread(restore_artifacts, sources, where)
        # dotenv variables rank above job variables (dotenv.py); none saved: no folder.
        if planned.artifacts_from and dotenv_dir(ctx.run_dir).is_dir():
            from conveyor.engine.dotenv import received_dotenv

            job_env.update(received_dotenv(ctx.run_dir, planned.artifacts_from))
        failure, reason = await _run_steps(
            ctx,
            job.steps,
            state=state,
            log=log,
            job_env=job_env,
            cwd_root=where,
            planned=planned,
            deadline=deadline,
            job_timeout_s=timeout_s,
        )
        if job.after_steps:
            after_deadline = time.monotonic() + AFTER_STEPS_TIMEOUT_S
            after_env = {**job_env, "CI_JOB_STATUS": "success" if failure is None else "failed"}
            after_failure, after_reason = await _run_steps(
                ctx,
                job.after_steps,
                state=None,
                log=log,
                job_env=after_env,
                cwd_root=where,
                planned=planned,
                deadline=after_deadline,
                job_timeout_s=AFTER_STEPS_TIMEOUT_S,
            )
            if after_failure is not None:
                log.system(f"after_steps failed ({after_reason}); the job status is unchanged")
        if job.caches:
            from conveyor.engine.cache import save_caches

            await save_caches(
                job.caches,
                cache_keys,
                root=ctx.cache_root,
                workspace=where,
                succeeded=failure is None,
                say=log.system,
            )
        if job.artifacts is not None and should_collect(
            job.artifacts.when, succeeded=failure is None
        ):
            dest = artifacts_dir(ctx.run_dir, job.name)
            saved = await asyncio.to_thread(collect_artifacts, where, job.artifacts, dest)
            log.system(f"saved {len(saved)} artifact file(s)")
        if job.artifacts is not None and job.artifacts.dotenv:
            from conveyor.engine.dotenv import collect_dotenv, dotenv_path

            dest = dotenv_path(ctx.run_dir, job.name)
            refused = await collect_dotenv(job.artifacts.dotenv, where, dest, log.system)
            if refused is not None and failure is None:  # GitLab rejects the upload: job fails
                failure, reason = StepResult(None, error=refused), refused
    finished_at = now_utc()
    if failure is None:
        return state.snapshot(status=Status.SUCCESS, exit_code=0, finished_at=finished_at), None
    codes = job.allow_failure_exit_codes
    allowed = is_allowed_failure(planned.allow_failure, codes, failure.exit_code)
    record = state.snapshot(
        status=Status.FAILED,
        exit_code=failure.exit_code,
        finished_at=finished_at,
        allow_failure=allowed,
        reason=ctx.masker.mask(reason or "failed"),
    )
    return record, failure
