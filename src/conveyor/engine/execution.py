"""One run while it executes: its jobs from waiting to final, and the plays and retries
that join it.

`Execution` holds the state of one run inside `engine.scheduler.execute_run`: which jobs are
done and what they handed on, the running attempts, the stop (cancel, fail_fast) and the
TaskGroup the job tasks live in. `engine.live.LiveRun` is the handle another task (the
server's play and retry routes, its queue) uses to play a manual job, or retry a failed
one, in that execution, or to cancel it or some of its jobs.

Canceling some jobs alone (`cancel_jobs`: a newer run cancels an older one's interruptible
jobs, as GitLab's auto-cancel does) leaves the rest of the run going on: a running attempt is
stopped through the executor (`Executor.cancel`) and recorded `canceled` with the reason; a
job not started yet (waiting for its dependencies, a slot, its delay or a retry) is recorded
`canceled` at once and its task cancelled (one waiting for its retry: that owed attempt,
the failed one kept in the store's history); a job whose task has not begun ends `canceled`
as it begins. The jobs that depend on a canceled job decide as after any canceled job
(`status.decide_start`); the run ends `canceled` (unless a job failed) with that reason.

The hand-over between a live play and a resume: `Execution.open_jobs` counts the job tasks
not finished yet. While it is above 0 the TaskGroup is still open, so a play starts the job
and the jobs it held back as new tasks of the same execution (their records go back to
`pending` first, so the final record shows them). Once it reaches 0 no task can join any
more: `play` answers False, and the caller waits for the run's final record, where the job
is still `manual`, and resumes the run (`engine.resume`). Both happen on the event loop
without an await in between, so a play is either live or resumed: never lost, never run
twice. A retry of a failed job goes the same way (`retry_job`; after the hand-over the job
is still failed in the final record, and the run is resumed with its retry). Must not: plan,
create or finish the run record (execute_run does), or touch the network."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from dataclasses import replace
from typing import Any

from conveyor.engine.attempt import (
    AttemptState,
    JobLog,
    RunContext,
    attempt_record,
    attempt_spec,
)
from conveyor.engine.executor import AttemptSpec, Placement
from conveyor.engine.journal import JobJournal
from conveyor.errors import ConflictError, StoreError
from conveyor.model import JobRecord, Plan, PlannedJob, RunRecord, Status, When
from conveyor.status import DepResult, decide_start, outcome_of, should_retry
from conveyor.store.base import RunStore

__all__ = ["CANCEL_POLL_S", "Execution", "pending_record"]


def _log() -> Any:  # structlog's BoundLogger proxy: untyped
    """The module's structlog logger, imported on first use: structlog pulls in rich when
    it is installed (about 45 ms), and `conveyor run` only logs when something goes wrong."""
    import structlog

    return structlog.get_logger(__name__)


CANCEL_POLL_S = 0.5


class Execution:
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
        self.followed: dict[str, int] = {}  # job -> its attempt started before a restart
        self.tasks: asyncio.TaskGroup | None = None
        self.open_jobs = 0  # job tasks not finished: at 0 the run ends, no play can join it
        self.slots = asyncio.Semaphore(max(1, concurrency))
        self.groups: dict[str, asyncio.Lock] = {}
        self.done = {p.name: asyncio.Event() for p in plan.jobs}
        self.results: dict[str, DepResult] = {}
        self.records: dict[str, JobRecord] = {}
        self.running: set[str] = set()  # jobs with an attempt at the executor
        self.stop = asyncio.Event()
        self.stop_reason = ""
        self.is_canceled = False
        self.job_tasks: dict[str, asyncio.Task[None]] = {}
        self.entered: set[str] = set()  # job tasks whose coroutine began (a cancel reaches it)
        self.job_cancels: dict[str, str] = {}  # jobs canceled alone -> why (`cancel_jobs`)

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
        for name in sorted(self.running):  # a message each: the attempts answer `canceled`
            self.ctx.executor.cancel(self.run.run_id, name)

    # -- starting jobs, and playing manual jobs while the run executes
    def start_jobs(self, names: tuple[str, ...]) -> None:
        """Start a task for each job in `names` (in the run's TaskGroup)."""
        tasks = self.tasks
        if tasks is None:
            raise RuntimeError("start_jobs: the run is not executing")
        for name in names:
            self.open_jobs += 1
            planned = self.plan.job(name)
            self.job_tasks[name] = tasks.create_task(self.run_job(planned, self.numbers[name]))

    def cancel_jobs(self, names: tuple[str, ...], reason: str) -> tuple[str, ...]:
        """Cancel jobs `names` alone, with `reason`, the rest of the run going on (module
        docstring); jobs that have ended, or were canceled before, are left as they are.
        Returns the jobs it canceled."""
        canceled = []
        for name in names:
            if name not in self.records or self.done[name].is_set() or name in self.job_cancels:
                continue
            self.job_cancels[name] = reason
            canceled.append(name)
            if name in self.running:  # the attempt answers `canceled` (run_attempts)
                self.ctx.executor.cancel(self.run.run_id, name)
            elif name in self.entered:  # parked at an await: ended here, its task stopped
                self.cancel_waiting(name, reason)
                self.job_tasks[name].cancel()
            # else its task has not begun: it ends `canceled` as it begins (_run_job)
        return tuple(canceled)

    def run_reason(self, status: Status) -> str | None:
        """The reason recorded on the run that ends `status`: why it was stopped, or why
        its jobs were canceled alone when that canceled it."""
        if status is Status.SUCCESS:
            return None
        if self.stop_reason:
            return self.stop_reason
        if status is Status.CANCELED:
            alone = (r for r in self.records.values() if r.status is Status.CANCELED)
            return next((r.reason for r in alone if r.name in self.job_cancels), None)
        return None

    def play_job(self, name: str) -> bool:
        """Play manual job `name` now: it and the jobs it held back start again. False when
        the run is ending (no job task is left to join); ConflictError when the job is not
        waiting to be played or the run is stopping (`_rerun`)."""
        return self._rerun(name, is_retry=False)

    def retry_job(self, name: str) -> bool:
        """Retry failed or canceled job `name` now, as its next attempt; the jobs after it
        that never ran are decided again once it ends (`engine.resume`). False when the run
        is ending; ConflictError when the job is not retryable or the run is stopping."""
        return self._rerun(name, is_retry=True)

    def _rerun(self, name: str, *, is_retry: bool) -> bool:
        run = replace(self.run, jobs=tuple(self.records.values()))
        from conveyor.engine.resume import (  # plays and retries only
            check_playable,
            check_retryable,
            plan_resume,
            play_request,
        )

        check = check_retryable if is_retry else check_playable
        if self.stop.is_set():
            if self.is_canceled:  # a cancel stops it: RunCanceled, as for a canceled run
                check(run, name, is_cancel_requested=True)
            verb, done = ("retry", "retried") if is_retry else ("play", "played")
            raise ConflictError(
                f"run {self.run.run_id}: the run is stopping ({self.stop_reason}); job "
                f"{name!r} cannot be {done} now ({verb} it once the run has ended)"
            )
        if self.tasks is None or self.open_jobs == 0:
            return False
        check(run, name, is_cancel_requested=False)
        if is_retry:
            resume = plan_resume(self.plan, run.jobs, (), played=self.play, retry={name})
        else:
            resume = plan_resume(self.plan, run.jobs, {name}, played=self.play)
            self.play.add(name)
        for job in resume.rerun:
            # New events: a job still waiting re-reads `done` and so waits for the new run.
            self.done[job] = asyncio.Event()
            self.job_cancels.pop(job, None)  # asked for again: a cancel alone is over
            self.results.pop(job, None)
            self.attempts[job] = resume.attempts[job]
            pending = pending_record(self.plan.job(job), attempt=resume.attempts[job] + 1)
            self.save(play_request(pending) if job in resume.play else pending)
        self.start_jobs(resume.rerun)
        return True

    # -- one job, from waiting to final
    async def run_job(self, planned: PlannedJob, job_number: int) -> None:
        name = planned.name
        self.entered.add(name)
        try:
            await self._run_job(planned, job_number)
        except StoreError as exc:  # its log or the database cannot be written (a full disk)
            reason = self.ctx.masker.mask(str(exc))
            _log().warning("engine.store_failed", run_id=self.run.run_id, job=name, error=reason)
            self.ctx.logs.give_up(reason)  # no more output: the store needs the room first
            self.request_stop(reason, is_cancel=False)  # the next job would fail the same way
            self.fail_job(name, reason)
        except Exception as exc:  # per-job guard: conveyor failed, not the job's command
            log = _log()
            log.error("engine.job_crashed", run_id=self.run.run_id, job=name, exc_info=True)
            self.fail_job(
                name, self.ctx.masker.mask(f"conveyor error: {type(exc).__name__}: {exc}")
            )
        finally:
            self.entered.discard(name)
            self.open_jobs -= 1

    def fail_job(self, name: str, reason: str) -> None:
        """End job `name` failed for a reason of conveyor's; when even its record cannot be
        stored, the run still learns the outcome (its final update says what it can)."""
        failed = replace(
            self.records[name],
            status=Status.FAILED,
            reason=reason,
            finished_at=self.ctx.clock.now(),
        )
        try:
            self.finish(failed, outcome_of(name, Status.FAILED))
        except StoreError as exc:
            _log().warning("engine.record_lost", run_id=self.run.run_id, job=name, error=str(exc))
            self.remember(failed)
            self.results[name] = outcome_of(name, Status.FAILED)
            self.done[name].set()

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
        if name in self.job_cancels:  # canceled alone before its task began
            self.cancel_waiting(name, self.job_cancels[name])
            return
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
            skip_reason=planned.skip_reason,
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
        attempt = self.attempts.get(name, 0) + 1
        while True:
            pending = pending_record(planned, attempt=attempt)  # attempt 2+: the one owed
            # An attempt followed after a server restart (engine.resume.plan_reattach) wrote
            # its header when it started: its lines go on right after what the log holds.
            is_followed = self.followed.pop(name, None) == attempt
            if attempt > job.retry.max + 1 and not is_followed:
                job_log.system(f"attempt {attempt} (retried)")
            elif attempt > 1 and not is_followed:
                job_log.system(f"attempt {attempt} of {job.retry.max + 1}")
            spec = attempt_spec(
                self.ctx,
                planned,
                attempt=attempt,
                job_number=job_number,
                first_line=job_log.last_line + 1,
            )
            if isinstance(self.ctx.executor, Placement) and not await self.place(
                self.ctx.executor, spec, pending
            ):
                return
            base = replace(
                pending,
                status=Status.RUNNING,
                attempt=attempt,
                started_at=self.ctx.clock.now(),
                finished_at=None,
            )
            state = AttemptState(base)
            self.save(base)
            if isinstance(self.ctx.executor, Placement):
                self.ctx.executor.watch_start(spec, functools.partial(self.started_on, state))
            self.running.add(name)
            try:  # cancelled from outside: the executor stopped the attempt; propagate
                result = await self.ctx.executor.run(spec, job_log.write_records)
            finally:
                self.running.discard(name)
            if result.status is Status.CANCELED:
                # Canceled alone (a newer run), the run's stop, else the executor's own (a
                # fleet worker shutting down).
                reason = self.job_cancels.get(name) or self.stop_reason or result.reason or ""
                job_log.system(f"canceled: {reason}")
                canceled = state.snapshot(
                    status=Status.CANCELED,
                    finished_at=self.ctx.clock.now(),
                    reason=reason,
                    steps=result.steps,
                    worker=result.worker,
                )
                self.finish(canceled, outcome_of(name, Status.CANCELED))
                return
            record = attempt_record(planned, state, result, self.ctx.clock.now())
            if result.status is Status.SUCCESS or not should_retry(
                job.retry,
                attempt,
                exit_code=result.exit_code,
                timed_out=result.timed_out,
                reason=result.reason,
            ):
                break
            self.save(record)
            delay = job.retry.delay_s
            job_log.system(f"retrying{f' in {delay:g}s' if delay else ''}: {record.reason}")
            if self.stop.is_set() or name in self.job_cancels:
                self.finish(record, outcome_of(name, Status.FAILED))
                return
            attempt += 1
            # From here the next attempt is owed (its delay, then a worker to take it): it is
            # stored `pending` under its own number, so a server restart resumes it
            # (engine.resume.requested_retries) and a stop cancels it, the failed attempt
            # staying in the store's history.
            self.save(pending_record(planned, attempt=attempt))
            if delay and await self.sleep_unless_stopped(delay):
                self.cancel_waiting(name)
                return
        result_of = outcome_of(name, record.status, allowed_failure=record.allow_failure)
        self.finish(record, result_of)
        is_hard_failure = record.status is Status.FAILED and not record.allow_failure
        if is_hard_failure and self.plan.pipeline.fail_fast:
            self.request_stop(f"fail_fast: job {name} failed", is_cancel=False)

    def started_on(self, state: AttemptState, worker: str) -> None:
        """The running attempt of `state` started on `worker` (engine.executor.Placement)."""
        state.record = replace(state.record, worker=worker)
        self.save(state.record)

    async def place(self, placement: Placement, spec: AttemptSpec, pending: JobRecord) -> bool:
        """Wait for a worker to take `spec` (engine.executor.Placement), the job `pending`
        with the reason it waits; True to run it. False when the run stopped meanwhile (the
        job is canceled) or no worker came in time (the job failed with that reason)."""
        name = spec.job
        placing = asyncio.ensure_future(
            placement.place(spec, lambda reason: self.save(replace(pending, reason=reason)))
        )
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({placing, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not placing.done():
                placing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await placing
        if not placing.done() or placing.cancelled():
            self.cancel_waiting(name)
            return False
        failure = placing.result()
        if failure is None:
            return True
        JobLog(self.ctx, name).system(f"not run: {failure}")
        failed = replace(
            pending, status=Status.FAILED, reason=failure, finished_at=self.ctx.clock.now()
        )
        self.finish(failed, outcome_of(name, Status.FAILED, allowed_failure=failed.allow_failure))
        if not failed.allow_failure and self.plan.pipeline.fail_fast:
            self.request_stop(f"fail_fast: job {name} failed", is_cancel=False)
        return False

    def cancel_waiting(self, name: str, reason: str | None = None) -> None:
        """End job `name`, which has not started (or waits to retry), `canceled`: with
        `reason`, else the run's stop reason."""
        why = reason or self.stop_reason
        record = replace(self.records[name], status=Status.CANCELED, reason=why)
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


def pending_record(planned: PlannedJob, *, attempt: int = 1) -> JobRecord:
    """The record of a planned job before it runs (execute_run stores it unless the run
    was created with the very same record). `attempt`: the one about to run; a first one
    is stored as 0 (no attempt yet), a later one (a retry) under its own number, so the
    attempts before it stay in the store's history."""
    return JobRecord(
        name=planned.name,
        stage=planned.job.stage,
        status=Status.PENDING,
        allow_failure=planned.allow_failure or bool(planned.job.allow_failure_exit_codes),
        needs=planned.depends_on,
        attempt=attempt if attempt > 1 else 0,
    )
