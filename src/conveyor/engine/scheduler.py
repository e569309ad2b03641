"""The scheduler: executes a Plan as a DAG of jobs. The one engine of conveyor — the CLI
(`conveyor run`) and the server both call `execute_run`.

    record = await execute_run(
        plan,                      # conveyor.plan.plan(pipeline, event)
        run=run,                   # RunRecord already created in the store (status pending)
        store=store,               # RunStore: update_run, save_job, is_cancel_requested, …
        logs=RunLogs(run_dir),     # LogSink: one masked LogRecord per output line
        workspace=project_dir,     # where jobs run (isolated pipelines: checked out from it)
        run_dir=run_dir,           # <home>/runs/<run_id>: artifacts/ and work/ go here
        concurrency=4,             # jobs at once
        secrets={"TOKEN": "…"},    # values of declared secrets, read from conveyor's env
        base_env=os.environ,       # only its safe part (PATH, HOME, …) reaches jobs
        play=frozenset({"deploy"}),# manual jobs to run
        resume=None,               # engine.resume.Resume: run only its jobs, keep the rest
        live=None,                 # LiveRun: lets another task play manual jobs meanwhile
        cancel=asyncio.Event(),    # set it to cancel the run (signal handler, API)
        observer=view,             # optional RunObserver (terminal view, SSE)
        runner=None,               # StepRunner; default LocalRunner reporting to the journal
        grace_s=5.0,               # SIGTERM → SIGKILL grace when stopping a job
        home=home,                 # conveyor's state folder (never copied into a workspace)
        workspaces=None,           # a JobWorkspaces already preparing (else one is made);
    )                              # closed by execute_run in both cases

It marks the run running, starts every job whose dependencies are final and whose
`when` allows it (status.decide_start), at most `concurrency` at once and never two of one
`resource_group`; records every attempt through `store.save_job` (`attempt` counts
executions; jobs that never run keep attempt 0) and every line through `logs.write`;
retries per `Retry` with its delay; skips dependants with a reason; ends manual jobs
`manual` unless played; waits `start_in` for delayed jobs.

Playing a manual job happens inside the run, as in GitLab. While the run executes,
`LiveRun.play(job)` (`engine.execution`, with the hand-over rule between a live play and a
resume) starts the job and the jobs it held back (`engine.resume` decides which)
as new tasks of the same execution; jobs still waiting see its new outcome. The loop does
not wait for plays: a run whose only remaining jobs are manual ends (`status.run_status`),
and playing one later resumes it — `execute_run(..., resume=plan_resume(...))` keeps the
records of every other job, runs the played job (a new attempt row) and the jobs it held
back, then recomputes the run's status over all jobs. A resumed run keeps its `started_at`;
its jobs' log lines go on numbering where their files stopped. `fail_fast`: the first failure
that is not allowed cancels the rest. Cancellation — `cancel` set, or
`store.is_cancel_requested(run_id)` seen by a poll every 0.5 s (so `conveyor cancel` works
from another process) — stops every process group, marks running and waiting jobs
`canceled` and the run `canceled`. If the task running `execute_run` is itself cancelled,
its process groups are stopped and CancelledError propagates (the caller records the run).
Store calls are short synchronous calls made on the event loop; job records and process
groups go through `journal.JobJournal` (two transactions per one-step job attempt with the
default runner, see there; a caller's own runner reports groups itself, records are then
written as they change).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.engine.attempt import RunContext, RunObserver, now_utc
from conveyor.engine.execution import CANCEL_POLL_S, Execution, LiveRun, pending_record
from conveyor.engine.journal import JobJournal
from conveyor.engine.runner import LocalRunner, StepRunner
from conveyor.engine.workspace import JobWorkspaces
from conveyor.masking import Masker
from conveyor.model import Plan, RunRecord, Status
from conveyor.status import run_status
from conveyor.store.base import LogSink, RunStore
from conveyor.store.logreader import LogFileReader

if TYPE_CHECKING:  # a fresh run never needs the resume module
    from conveyor.engine.resume import Resume

__all__ = ["CANCEL_POLL_S", "LiveRun", "RunObserver", "execute_run", "pending_record"]


async def execute_run(
    plan: Plan,
    *,
    run: RunRecord,
    store: RunStore,
    logs: LogSink,
    workspace: Path,
    run_dir: Path,
    concurrency: int,
    secrets: Mapping[str, str],
    base_env: Mapping[str, str],
    play: frozenset[str] = frozenset(),
    resume: Resume | None = None,
    live: LiveRun | None = None,
    cancel: asyncio.Event | None = None,
    observer: RunObserver | None = None,
    runner: StepRunner | None = None,
    grace_s: float = 5.0,
    home: Path | None = None,
    workspaces: JobWorkspaces | None = None,
) -> RunRecord:
    """Execute `plan` as run `run` and return the final run record (see module docstring)."""
    # With its own runner the engine batches job records and process groups (journal.py).
    journal = JobJournal(store, hold_running=runner is None)
    ctx = RunContext(
        plan=plan,
        run_id=run.run_id,
        run_number=run.number,
        logs=logs,
        workspace=workspace,
        run_dir=run_dir,
        home=home,
        secrets=secrets,
        base_env=base_env,
        runner=runner or LocalRunner(store=journal, grace_s=grace_s),
        masker=Masker(secrets.values()),
        observer=observer,
        workspaces=workspaces
        or JobWorkspaces(
            workspace,
            isolate=plan.pipeline.isolate_jobs,
            sha=plan.event.sha,
            root=run_dir / "work",
            home=home,
        ),
    )
    execution = Execution(plan, run, store, ctx, concurrency, play, journal)
    if resume is not None:
        execution.play.update(resume.play)
        started_at = run.started_at or now_utc()
    else:
        started_at = now_utc()
    store.update_run(run.run_id, status=Status.RUNNING, started_at=started_at)
    to_run = _prepare_jobs(execution, resume, run_dir)
    if cancel is not None and cancel.is_set():  # canceled before the engine started (checkout)
        execution.request_stop("run canceled", is_cancel=True)
    watcher = asyncio.create_task(execution.watch_cancel(cancel))
    try:
        async with asyncio.TaskGroup() as jobs:
            execution.tasks = jobs
            if live is not None:
                live.attach(execution)
            execution.start_jobs(to_run)
    finally:
        execution.tasks = None
        if live is not None:
            live.detach()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await ctx.workspaces.close()
        journal.flush()
    records = tuple(execution.records[p.name] for p in plan.jobs)
    status = run_status(records, is_canceled=execution.is_canceled)
    reason = (execution.stop_reason or None) if status is not Status.SUCCESS else None
    finished_at = now_utc()
    store.update_run(run.run_id, status=status, finished_at=finished_at, reason=reason)
    return replace(
        run,
        status=status,
        started_at=started_at,
        finished_at=finished_at,
        reason=reason,
        jobs=records,
    )


def _prepare_jobs(execution: Execution, resume: Resume | None, run_dir: Path) -> tuple[str, ...]:
    """Store the pending record of every job about to run and return their names. When
    resuming, the kept jobs are final already (records, outcomes) and the rerun jobs' log
    lines go on numbering after the lines their files hold."""
    plan = execution.plan
    if resume is None:
        created = {job.name: job for job in execution.run.jobs}
        for planned in plan.jobs:
            pending = pending_record(planned)
            if created.get(planned.name) == pending:
                execution.remember(pending)  # already stored by create_run
            else:
                execution.save(pending)
        return tuple(p.name for p in plan.jobs)
    for planned in plan.jobs:
        name = planned.name
        if name in resume.kept:
            execution.remember(resume.kept[name])
            if name in resume.results:
                execution.results[name] = resume.results[name]
            execution.done[name].set()
        else:
            execution.attempts[name] = resume.attempts.get(name, 0)
            execution.ctx.line_counts[name] = max(
                (record.n for record in LogFileReader(run_dir).read_job(name)), default=0
            )
            execution.save(pending_record(planned))
    return resume.rerun
