"""The engine's writes of job records and process groups, batched into fewer transactions.

Per job attempt the scheduler writes a running record and a final record, and the runner
adds and forgets one process group per step (for crash recovery). Written one by one that
is four short transactions for a one-step job; `JobJournal` makes it two:

  * with `hold_running=True` (the scheduler's own `LocalRunner` reports to this journal),
    an attempt's running record is held until its first process group is recorded, and
    both are written in one transaction. The terminal and other observers learn of the
    running job at once (the scheduler tells them, not the store); the store shows it
    running from the moment a process exists — what crash recovery needs, since a job
    interrupted before any process started has run nothing (recovery then records it
    canceled rather than failed). A final record supersedes a held running record.
  * a finished step's group is forgotten together with that job's next write (the next
    step's group or the attempt's record), never later than `flush()`. Until then its
    row names a dead group whose leader's start time (`LiveProcess.started_ticks`) guards
    recovery against a reused PID; a new group that reuses the PGID replaces the row and
    cancels the pending removal.

Each batch is one `ProcessRecords.save_job_and_processes(run_id, job, *, add, remove)` call,
which every store implements (one transaction in SqlRunStore). This module does not decide
records (scheduler) nor start processes (runner).
"""

from __future__ import annotations

from conveyor.model import JobRecord, Status
from conveyor.store.base import LiveProcess, ProcessRecords

__all__ = ["JobJournal"]


class JobJournal:
    """Job records and process groups of one engine, written in batches (module docstring).
    A `store.base.ProcessBook`: `LocalRunner` reports its process groups to it."""

    def __init__(self, store: ProcessRecords, *, hold_running: bool) -> None:
        self.store = store
        self._hold_running = hold_running
        self._held: dict[tuple[str, str], JobRecord] = {}
        self._live: dict[int, tuple[str, str]] = {}  # recorded group → (run_id, job)
        self._gone: dict[int, tuple[str, str]] = {}  # dead group → (run_id, job), to forget

    def save_job(self, run_id: str, job: JobRecord) -> None:
        key = (run_id, job.name)
        if self._hold_running and job.status is Status.RUNNING:
            self._held[key] = job
            return
        self._held.pop(key, None)
        self._write(run_id, job, None, self._take_gone(key))

    def add_process(self, proc: LiveProcess) -> None:
        key = (proc.run_id, proc.job)
        self._gone.pop(proc.pgid, None)  # a reused PGID: the new row replaces the old one
        self._write(proc.run_id, self._held.pop(key, None), proc, self._take_gone(key))
        self._live[proc.pgid] = key

    def remove_process(self, run_id: str, pgid: int) -> None:
        """Forget group `pgid` with its job's next write (at once if it is not ours)."""
        owner = self._live.pop(pgid, None)
        if owner is not None and owner[0] == run_id:
            self._gone[pgid] = owner
        else:
            self._write(run_id, None, None, [pgid])

    def flush(self) -> None:
        """Write what is still held: pending removals (and running records whose job never
        started a process, which only happens when the scheduler was interrupted)."""
        for key, job in list(self._held.items()):
            self._held.pop(key, None)
            self._write(key[0], job, None, self._take_gone(key))
        for pgid, (run_id, _) in list(self._gone.items()):
            self._gone.pop(pgid, None)
            self._write(run_id, None, None, [pgid])

    def _take_gone(self, key: tuple[str, str]) -> list[int]:
        pgids = [pgid for pgid, owner in self._gone.items() if owner == key]
        for pgid in pgids:
            del self._gone[pgid]
        return pgids

    def _write(
        self, run_id: str, job: JobRecord | None, add: LiveProcess | None, remove: list[int]
    ) -> None:
        if job is None and add is None and not remove:
            return
        self.store.save_job_and_processes(run_id, job, add=add, remove=remove)
