"""The scheduler: executes a Plan as a DAG of jobs — the one engine of conveyor, behind the
run chain (`conveyor.runs.chain`) that `conveyor run`, `conveyor play` and the server share.

    record = await execute_run(
        plan,                      # conveyor.plan.plan(pipeline, event)
        run,                       # RunRecord already created in the store (status pending)
        RunSetup(                  # what the execution needs besides the two
            store=store,           # RunStore: update_run, save_job, is_cancel_requested, …
            logs=RunLogs(run_dir), # LogSink: one masked LogRecord per output line
            workspace=project_dir, # where jobs run (isolated pipelines: checked out from it)
            run_dir=run_dir,       # <home>/runs/<run_id>: artifacts/ and work/ go here
            concurrency=4,         # jobs at once
            secrets={"TOKEN": "…"},# values of declared secrets, read from conveyor's env
            base_env=os.environ,   # only its safe part (PATH, HOME, …) reaches jobs
            play=frozenset({"deploy"}),  # manual jobs to run
        ),                         # (+ home, workspaces, executor or runner, grace_s, clock,
                                   #  masked: conveyor's own secrets, sandbox: engine.sandbox)
        resume=None,               # engine.resume.Resume: run only its jobs, keep the rest
        controls=RunControls(cancel=event, live=live, observer=view),
    )

Each attempt goes to the run's `Executor` (engine.executor) as a serialisable spec; the
default is `engine.local.LocalExecutor` over `setup.runner` (a StepRunner, default
LocalRunner reporting process groups to the journal) and the run's job workspaces
(`setup.workspaces`, a JobWorkspaces already preparing, else one is made; closed here).

It marks the run running, starts every job whose dependencies are final and whose
`when` allows it (status.decide_start), at most `concurrency` at once and never two of one
`resource_group`; records every attempt through `store.save_job` (`attempt` counts
executions; jobs that never run keep attempt 0) and every line through `logs.write`;
retries per `Retry` with its delay; skips dependants with a reason; ends manual jobs
`manual` unless played; waits `start_in` for delayed jobs.

Playing a manual job happens inside the run, as in GitLab. While the run executes,
`LiveRun.play(job)` (`engine.live`; `engine.execution` has the hand-over rule between a
live play and a resume) starts the job and the jobs it held back (`engine.resume` decides which)
as new tasks of the same execution; jobs still waiting see its new outcome. The loop does
not wait for plays: a run whose only remaining jobs are manual ends (`status.run_status`),
and playing one later resumes it — `execute_run(..., resume=plan_resume(...))` keeps the
records of every other job, runs the played job (a new attempt row) and the jobs it held
back, then recomputes the run's status over all jobs. Retrying a failed or canceled job
(`LiveRun.retry`, or a resume with `plan_resume(..., retry=…)`) goes the same two ways: its
next attempt runs, then the jobs after it that never ran. A resumed run keeps its `started_at`;
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
from typing import TYPE_CHECKING, NamedTuple

from conveyor.clock import SYSTEM_CLOCK, Clock
from conveyor.engine.attempt import RunContext, RunObserver
from conveyor.engine.execution import CANCEL_POLL_S, Execution, pending_record
from conveyor.engine.executor import Executor
from conveyor.engine.journal import JobJournal
from conveyor.engine.live import LiveRun
from conveyor.engine.runner import LocalRunner, StepRunner
from conveyor.engine.sandbox import NO_SANDBOX, Sandbox
from conveyor.engine.workspace import JobWorkspaces
from conveyor.masking import Masker
from conveyor.model import Plan, RunRecord, Status
from conveyor.status import run_status
from conveyor.store.base import LogReader, LogSink, RunStore

if TYPE_CHECKING:  # a fresh run never needs the resume module
    from conveyor.engine.resume import Resume

__all__ = [
    "CANCEL_POLL_S",
    "LiveRun",
    "RunControls",
    "RunObserver",
    "RunSetup",
    "execute_run",
    "pending_record",
]


class RunSetup(NamedTuple):
    """What an execution needs besides its plan and run record (module docstring)."""

    store: RunStore
    logs: LogSink
    workspace: Path
    run_dir: Path
    concurrency: int
    secrets: Mapping[str, str]
    base_env: Mapping[str, str]
    play: frozenset[str] = frozenset()
    home: Path | None = None
    workspaces: JobWorkspaces | None = None
    executor: Executor | None = None
    runner: StepRunner | None = None
    grace_s: float = 5.0
    clock: Clock = SYSTEM_CLOCK
    masked: tuple[str, ...] = ()  # conveyor's own secrets: masked in output, never given
    sandbox: Sandbox = NO_SANDBOX


class RunControls:
    """Where a run is steered from while it executes: `cancel` set cancels it (signal
    handler, API), `live` lets another task play manual jobs, `observer` sees every change."""

    __slots__ = ("cancel", "live", "observer")

    def __init__(
        self,
        cancel: asyncio.Event | None = None,
        live: LiveRun | None = None,
        observer: RunObserver | None = None,
    ) -> None:
        self.cancel = cancel
        self.live = live
        self.observer = observer


def _executor(plan: Plan, setup: RunSetup, journal: JobJournal) -> tuple[Executor, JobWorkspaces]:
    from conveyor.engine.local import LocalExecutor

    workspaces = setup.workspaces or JobWorkspaces(
        setup.workspace,
        isolate=plan.pipeline.isolate_jobs,
        sha=plan.event.sha,
        root=setup.run_dir / "work",
        home=setup.home,
    )
    if setup.executor is not None:
        return setup.executor, workspaces
    runner = setup.runner or LocalRunner(store=journal, grace_s=setup.grace_s)
    executor = LocalExecutor(runner, workspaces, setup.run_dir, setup.home, clock=setup.clock)
    return executor, workspaces


async def execute_run(
    plan: Plan,
    run: RunRecord,
    setup: RunSetup,
    *,
    resume: Resume | None = None,
    controls: RunControls | None = None,
) -> RunRecord:
    """Execute `plan` as run `run` and return the final run record (see module docstring)."""
    controls = controls or RunControls()
    store = setup.store
    # With its own runner the engine batches job records and process groups (journal.py).
    is_default = setup.executor is None and setup.runner is None
    journal = JobJournal(store, hold_running=is_default)
    executor, workspaces = _executor(plan, setup, journal)
    ctx = RunContext(
        plan=plan,
        run_id=run.run_id,
        run_number=run.number,
        logs=setup.logs,
        workspace=setup.workspace,
        run_dir=setup.run_dir,
        secrets=setup.secrets,
        base_env=setup.base_env,
        executor=executor,
        masker=Masker((*setup.secrets.values(), *setup.masked)),
        observer=controls.observer,
        clock=setup.clock,
        sandbox=setup.sandbox,
    )
    execution = Execution(plan, run, store, ctx, setup.concurrency, setup.play, journal)
    if resume is not None:
        execution.play.update(resume.play)
        started_at = run.started_at or setup.clock.now()
    else:
        started_at = setup.clock.now()
    store.update_run(run.run_id, status=Status.RUNNING, started_at=started_at)
    to_run = _prepare_jobs(execution, resume, setup.run_dir)
    cancel, live = controls.cancel, controls.live
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
        await workspaces.close()
        journal.flush()
    records = tuple(execution.records[p.name] for p in plan.jobs)
    status = run_status(records, is_canceled=execution.is_canceled)
    reason = execution.run_reason(status)
    finished_at = setup.clock.now()
    store.update_run(run.run_id, status=status, finished_at=finished_at, reason=reason)
    return replace(
        run,
        status=status,
        started_at=started_at,
        finished_at=finished_at,
        reason=reason,
        jobs=records,
    )


def _log_reader(run_dir: Path) -> LogReader:
    from conveyor.store.logreader import LogFileReader  # resumed runs only

    return LogFileReader(run_dir)


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
            attempts = execution.attempts[name] = resume.attempts.get(name, 0)
            if name in resume.followed:
                execution.followed[name] = attempts + 1
            execution.ctx.line_counts[name] = max(
                (record.n for record in _log_reader(run_dir).read_job(name)), default=0
            )
            execution.save(pending_record(planned, attempt=attempts + 1))
    return resume.rerun
