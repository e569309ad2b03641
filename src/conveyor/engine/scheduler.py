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
`LiveRun.play(job)` starts the job and the jobs it held back (`engine.resume` decides which)
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
from typing import Any

from conveyor.engine.attempt import (
    AttemptState,
    JobLog,
    RunContext,
    RunObserver,
    now_utc,
    run_attempt,
)
from conveyor.engine.journal import JobJournal
from conveyor.engine.masking import Masker
from conveyor.engine.resume import Resume, check_playable, plan_resume
from conveyor.engine.runner import LocalRunner, StepResult, StepRunner
from conveyor.engine.workspace import JobWorkspaces
from conveyor.errors import StoreError, UsageError
from conveyor.model import JobRecord, Plan, PlannedJob, RunRecord, Status, When
from conveyor.status import DepResult, decide_start, outcome_of, run_status, should_retry
from conveyor.store.base import LogSink, RunStore
from conveyor.store.logfiles import read_job_log

__all__ = ["CANCEL_POLL_S", "LiveRun", "RunObserver", "execute_run", "pending_record"]


def _log() -> Any:  # structlog's BoundLogger proxy: untyped
    """The module's structlog logger, imported on first use: structlog pulls in rich when
    it is installed (about 45 ms), and `conveyor run` only logs when something goes wrong."""
    import structlog

    return structlog.get_logger(__name__)


CANCEL_POLL_S = 0.5


class _Execution:
    """The state of one run while it executes."""

    def __init__(
        self,
        plan: Plan,
        run: RunRecord,
        store: RunStore,
        ctx: RunContext,
        concurrency: int,
        play: frozenset[str],
        journal: JobJournal,
    ) -> None:
        self.plan = plan
        self.run = run
        self.store = store
        self.journal = journal
        self.ctx = ctx
        self.play = set(play)
        self.numbers = {p.name: n for n, p in enumerate(plan.jobs, start=1)}
        self.attempts: dict[str, int] = {}  # executions recorded before this one (resume)
        self.tasks: asyncio.TaskGroup | None = None
        self.open_jobs = 0  # job tasks not finished: at 0 the run ends, no play can join it
        self.slots = asyncio.Semaphore(max(1, concurrency))
        self.groups: dict[str, asyncio.Lock] = {}
        self.done = {p.name: asyncio.Event() for p in plan.jobs}
        self.results: dict[str, DepResult] = {}
        self.records: dict[str, JobRecord] = {}
        self.running: dict[str, asyncio.Task[tuple[JobRecord, StepResult | None]]] = {}
        self.stop = asyncio.Event()
        self.stop_reason = ""
        self.is_canceled = False

    # -- recording
    def save(self, record: JobRecord) -> None:
        self.journal.save_job(self.run.run_id, record)
        self.remember(record)

    def remember(self, record: JobRecord) -> None:
        self.records[record.name] = record
        if self.ctx.observer is not None:
            self.ctx.observer.job_updated(record)

    def finish(self, record: JobRecord, result: DepResult) -> None:
        self.save(record)
        self.results[record.name] = result
        self.done[record.name].set()

    def request_stop(self, reason: str, *, is_cancel: bool) -> None:
        if self.stop.is_set():
            return
        self.stop_reason = reason
        self.is_canceled = is_cancel
        self.stop.set()
        for task in self.running.values():
            task.cancel()

    # -- starting jobs, and playing manual jobs while the run executes
    def start_jobs(self, names: tuple[str, ...]) -> None:
        """Start a task for each job in `names` (in the run's TaskGroup)."""
        tasks = self.tasks
        if tasks is None:
            raise RuntimeError("start_jobs: the run is not executing")
        for name in names:
            self.open_jobs += 1
            tasks.create_task(self.run_job(self.plan.job(name), self.numbers[name]))

    def play_job(self, name: str) -> bool:
        """Play manual job `name` now: it and the jobs it held back start again. False when
        the run is ending (no job task is left to join); UsageError when the job is not
        waiting to be played or the run is stopping."""
        if self.stop.is_set():
            raise UsageError(
                f"run {self.run.run_id}: the run is stopping ({self.stop_reason}); "
                "its manual jobs can no longer be played"
            )
        if self.tasks is None or self.open_jobs == 0:
            return False
        run = replace(self.run, jobs=tuple(self.records.values()))
        check_playable(run, name, is_cancel_requested=False)
        resume = plan_resume(self.plan, self.records.values(), {name}, played=self.play)
        self.play.add(name)
        for job in resume.rerun:
            # New events: a job still waiting re-reads `done` and so waits for the new run.
            self.done[job] = asyncio.Event()
            self.results.pop(job, None)
            self.attempts[job] = resume.attempts[job]
            self.save(pending_record(self.plan.job(job)))
        self.start_jobs(resume.rerun)
        return True

    # -- one job, from waiting to final
    async def run_job(self, planned: PlannedJob, job_number: int) -> None:
        name = planned.name
        try:
            await self._run_job(planned, job_number)
        except Exception as exc:  # per-job guard: conveyor failed, not the job's command
            log = _log()
            log.error("engine.job_crashed", run_id=self.run.run_id, job=name, exc_info=True)
            record = self.records[name]
            reason = self.ctx.masker.mask(f"conveyor error: {type(exc).__name__}: {exc}")
            self.finish(
                replace(record, status=Status.FAILED, reason=reason, finished_at=now_utc()),
                outcome_of(name, Status.FAILED),
            )
        finally:
            self.open_jobs -= 1

    async def wait_for_dependencies(self, planned: PlannedJob) -> None:
        """Until every dependency is final. `done` is read again after each wait: a play
        replaces the events of the jobs it starts again."""
        while True:
            waiting = [
                self.done[dep]
                for dep in planned.depends_on
                if dep in self.done and not self.done[dep].is_set()
            ]
            if not waiting:
                return
            for event in waiting:
                await event.wait()

    async def _run_job(self, planned: PlannedJob, job_number: int) -> None:
        name = planned.name
        await self.wait_for_dependencies(planned)
        if self.stop.is_set():
            self.cancel_waiting(name)
            return
        deps = [self.results[d] for d in planned.depends_on if d in self.results]
        decision = decide_start(
            name,
            planned.when,
            deps,
            is_played=name in self.play,
            allow_failure=planned.allow_failure,
            explicit_needs=planned.job.needs is not None,
        )
        if not decision.should_run:
            record = replace(self.records[name], status=decision.status, reason=decision.reason)
            JobLog(self.ctx, name).system(f"not run: {decision.reason}")
            self.finish(record, decision.result(name))
            return
        start_in = planned.start_in_s or planned.job.start_in_s
        if planned.when is When.DELAYED and start_in:
            JobLog(self.ctx, name).system(f"delayed: starting in {start_in:g}s")
            if await self.sleep_unless_stopped(start_in):
                self.cancel_waiting(name)
                return
        group = planned.job.resource_group
        lock = self.groups.setdefault(group, asyncio.Lock()) if group else None
        async with lock if lock is not None else contextlib.nullcontext(), self.slots:
            if self.stop.is_set():
                self.cancel_waiting(name)
                return
            await self.run_attempts(planned, job_number)

    async def run_attempts(self, planned: PlannedJob, job_number: int) -> None:
        name = planned.name
        job = planned.job
        job_log = JobLog(self.ctx, name)
        pending = pending_record(planned)
        attempt = self.attempts.get(name, 0) + 1
        while True:
            base = replace(
                pending,
                status=Status.RUNNING,
                attempt=attempt,
                started_at=now_utc(),
                finished_at=None,
            )
            state = AttemptState(base)
            self.save(base)
            if attempt > 1:
                job_log.system(f"attempt {attempt} of {job.retry.max + 1}")
            task = asyncio.create_task(run_attempt(self.ctx, planned, state, job_number=job_number))
            self.running[name] = task
            try:
                record, failure = await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the whole execution is being cancelled: propagate
                job_log.system(f"canceled: {self.stop_reason}")
                canceled = state.snapshot(
                    status=Status.CANCELED, finished_at=now_utc(), reason=self.stop_reason
                )
                self.finish(canceled, outcome_of(name, Status.CANCELED))
                return
            finally:
                self.running.pop(name, None)
            if failure is None or not should_retry(
                job.retry, attempt, exit_code=failure.exit_code, timed_out=failure.timed_out
            ):
                break
            self.save(record)
            delay = job.retry.delay_s
            job_log.system(f"retrying{f' in {delay:g}s' if delay else ''}: {record.reason}")
            if (delay and await self.sleep_unless_stopped(delay)) or self.stop.is_set():
                self.finish(record, outcome_of(name, Status.FAILED))
                return
            attempt += 1
        result = outcome_of(name, record.status, allowed_failure=record.allow_failure)
        self.finish(record, result)
        is_hard_failure = record.status is Status.FAILED and not record.allow_failure
        if is_hard_failure and self.plan.pipeline.fail_fast:
            self.request_stop(f"fail_fast: job {name} failed", is_cancel=False)

    def cancel_waiting(self, name: str) -> None:
        record = replace(self.records[name], status=Status.CANCELED, reason=self.stop_reason)
        self.finish(record, outcome_of(name, Status.CANCELED))

    async def sleep_unless_stopped(self, seconds: float) -> bool:
        """Sleep; True when the run was stopped meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        return self.stop.is_set()

    async def watch_cancel(self, cancel: asyncio.Event | None) -> None:
        event = cancel or asyncio.Event()
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), CANCEL_POLL_S)
            if event.is_set() or self._is_cancel_requested():
                self.request_stop("run canceled", is_cancel=True)

    def _is_cancel_requested(self) -> bool:
        try:
            return self.store.is_cancel_requested(self.run.run_id)
        except StoreError as exc:  # a busy or broken store must not stop the run: retry later
            _log().warning("engine.cancel_poll_failed", run_id=self.run.run_id, error=str(exc))
            return False


class LiveRun:
    """A handle on one run for the task that plays its manual jobs while `execute_run`
    executes it. Before the execution starts (`is_started` false) and after it ended
    (`is_ended`), `play` answers False: the caller then records the play in the store for
    the run to pick up when it starts, or resumes the finished run."""

    def __init__(self) -> None:
        self._execution: _Execution | None = None
        self.is_ended = False

    @property
    def is_started(self) -> bool:
        return self._execution is not None or self.is_ended

    def play(self, job: str) -> bool:
        """Play manual job `job` inside the executing run: True once it is started; False
        when the run is not executing (see the class docstring); UsageError when the job is
        not waiting to be played or the run is stopping."""
        execution = self._execution
        return execution is not None and execution.play_job(job)

    def attach(self, execution: _Execution) -> None:
        self._execution = execution

    def detach(self) -> None:
        self._execution = None
        self.is_ended = True


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
    execution = _Execution(plan, run, store, ctx, concurrency, play, journal)
    if resume is not None:
        execution.play.update(resume.play)
        started_at = run.started_at or now_utc()
    else:
        started_at = now_utc()
    store.update_run(run.run_id, status=Status.RUNNING, started_at=started_at)
    to_run = _prepare_jobs(execution, resume, run_dir)
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


def _prepare_jobs(execution: _Execution, resume: Resume | None, run_dir: Path) -> tuple[str, ...]:
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
                (record.n for record in read_job_log(run_dir, name)), default=0
            )
            execution.save(pending_record(planned))
    return resume.rerun


def pending_record(planned: PlannedJob) -> JobRecord:
    """The record of a planned job before it runs (execute_run stores it unless the run
    was created with the very same record)."""
    return JobRecord(
        name=planned.name,
        stage=planned.job.stage,
        status=Status.PENDING,
        allow_failure=planned.allow_failure or bool(planned.job.allow_failure_exit_codes),
        needs=planned.depends_on,
    )
