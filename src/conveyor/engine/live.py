"""The handle on an executing run for other tasks: the server's play and retry routes and
its queue play a manual job, retry a failed one, cancel the run or some of its jobs, and
ask whether its jobs only wait (a stop may then detach it).

`LiveRun` is made before the run's engine starts and attached to its `Execution`
(`engine.execution`) by `engine.scheduler.execute_run`: what it is asked before then (a
cancel) is applied at the attach; a play or retry then answers False, and the caller
records it in the store instead. The hand-over rule between a live play and a resume is
`engine.execution`'s. Must not: decide plays or retries (`engine.resume`), or touch the
store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.model import JobRecord

if TYPE_CHECKING:
    from conveyor.engine.execution import Execution

__all__ = ["LiveRun"]


class LiveRun:
    """A handle on one run for the task that plays its manual jobs while `execute_run`
    executes it. `play` answers False before the execution starts (`is_started` false:
    the caller records the play in the store, and the run reads it when its engine starts)
    and from the moment its last job task ended (`is_started` true: the caller waits for
    the run's final record and resumes it; see `engine.execution`)."""

    def __init__(self) -> None:
        self._execution: Execution | None = None
        self._cancel_reason: str | None = None
        self._job_cancels: list[tuple[tuple[str, ...], str]] = []
        self.is_ended = False

    @property
    def is_started(self) -> bool:
        return self._execution is not None or self.is_ended

    @property
    def is_waiting(self) -> bool:
        """Whether the run executes with no attempt at its executor: its jobs only wait (a
        retry's delay, their dependencies, a slot, `start_in`). Stopped then, it loses no
        work: its records say what is owed (a retry stored as the attempt it waits to run)."""
        execution = self._execution
        return execution is not None and not execution.running

    def play(self, job: str) -> bool:
        """Play manual job `job` inside the executing run: True once it is started; False
        when the run is not executing (see the class docstring); ConflictError when the job
        is not waiting to be played or the run is stopping."""
        execution = self._execution
        return execution is not None and execution.play_job(job)

    def retry(self, job: str) -> bool:
        """Retry failed or canceled job `job` inside the executing run, as `play` does;
        ConflictError when the job cannot be retried or the run is stopping."""
        execution = self._execution
        return execution is not None and execution.retry_job(job)

    def cancel(self, reason: str) -> None:
        """Cancel the run with `reason` as its recorded reason (e.g. "superseded by run
        …"): now when it executes, else as soon as its execution starts."""
        self._cancel_reason = reason
        if self._execution is not None:
            self._execution.request_stop(reason, is_cancel=True)

    def cancel_jobs(self, jobs: tuple[str, ...], reason: str) -> None:
        """Cancel `jobs` alone with `reason`, the rest of the run going on
        (`Execution.cancel_jobs`): now when the run executes, else as soon as its execution
        starts."""
        self._job_cancels.append((jobs, reason))
        if self._execution is not None:
            self._execution.cancel_jobs(jobs, reason)

    def job_records(self) -> tuple[JobRecord, ...]:
        """The executing run's job records as they are now; () when it does not execute."""
        execution = self._execution
        return tuple(execution.records.values()) if execution is not None else ()

    def attach(self, execution: Execution) -> None:
        self._execution = execution
        if self._cancel_reason is not None:
            execution.request_stop(self._cancel_reason, is_cancel=True)
        for jobs, reason in self._job_cancels:
            execution.cancel_jobs(jobs, reason)

    def detach(self) -> None:
        self._execution = None
        self.is_ended = True
