"""The RunStore protocol: what the engine, the CLI and the server need from a run store.

Implementations: `store.sql.SqlRunStore` (SQLite via stdlib sqlite3, or any SQLAlchemy URL
such as PostgreSQL). Methods are synchronous and short (a few rows each); async callers in
the server wrap them in `asyncio.to_thread`. Every method raises StoreError (never a driver
exception) on failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from conveyor.model import JobRecord, LogRecord, RunRecord, Status

__all__ = ["LiveProcess", "LogSink", "MonitorSnapshot", "RunStore"]


@dataclass(frozen=True, slots=True)
class LiveProcess:
    """A process group started for a job. `started_ticks` is the leader's start time
    (field 22 of /proc/PID/stat) so a recycled PID is never mistaken for ours."""

    run_id: str
    job: str
    pgid: int
    started_ticks: int


@dataclass(frozen=True, slots=True)
class MonitorSnapshot:
    """One monitor cache entry as saved for a restart: its serialized JSON and fetch time."""

    key: str
    provider: str
    data_json: bytes
    fetched_at: datetime


class RunStore(Protocol):
    #: True when a read is a short local call (a SQLite file, memory) that a server may make
    #: on its event loop instead of hopping to a worker thread.
    local_reads: bool

    # -- runs
    def create_run(self, run: RunRecord) -> RunRecord:
        """Insert a run; returns it with `number` assigned (1, 2, … per store)."""
        ...

    def update_run(
        self,
        run_id: str,
        *,
        status: Status | None = None,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        reason: str | None = None,
        pipeline_name: str | None = None,
    ) -> None:
        """Change only the given fields (None keeps the stored value). `pipeline_name` is
        known only once the pipeline file of the commit is loaded (server runs)."""
        ...

    def reopen_run(self, run_id: str, *, status: Status) -> None:
        """Set `status` and clear `finished_at` and `reason` (a played manual job resumes a
        finished run). An unknown run id changes nothing, as in `update_run`."""
        ...

    def claim_run(self, run_id: str, *, owner_pid: int, owner_started_ticks: int) -> None:
        """Record which conveyor process executes the run (for crash detection)."""
        ...

    def save_job(self, run_id: str, job: JobRecord) -> None:
        """Upsert the job's row for (run_id, name, attempt), steps included. Every attempt
        is kept; get_run shows the latest attempt of each job, in insertion order."""
        ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def job_attempts(self, run_id: str, job: str) -> list[JobRecord]: ...

    def list_runs(
        self,
        *,
        repo: str | None = None,
        ref: str | None = None,
        status: Status | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Newest first; jobs are not loaded (empty tuple)."""
        ...

    def runs_with_status(self, statuses: Sequence[Status]) -> list[RunRecord]:
        """Oldest first, with `trigger`; used to resume `pending` and recover `running`."""
        ...

    def orphaned_runs(self) -> list[tuple[str, int, int]]:
        """(run_id, owner_pid, owner_started_ticks) of runs still marked running."""
        ...

    def request_cancel(self, run_id: str) -> bool:
        """Flag a run for cancellation (seen by its owner process); False if unknown."""
        ...

    def is_cancel_requested(self, run_id: str) -> bool: ...

    # -- process groups of running jobs
    def add_process(self, proc: LiveProcess) -> None: ...

    def remove_process(self, run_id: str, pgid: int) -> None: ...

    def processes(self, run_id: str) -> list[LiveProcess]: ...

    # -- webhook deliveries (de-duplication that survives restarts)
    def claim_delivery(self, delivery_id: str, run_id: str) -> str | None:
        """Record delivery -> run; if the delivery was seen before, return its run id and
        record nothing."""
        ...

    def create_delivered_run(self, run: RunRecord, delivery_id: str) -> str | None:
        """`claim_delivery` + `create_run` as one atomic write (the webhook intake): if the
        delivery was seen before, write nothing and return its run id; else store `run`
        (numbered as `create_run` does) and the delivery, and return None."""
        ...

    def create_delivered_runs(self, items: Sequence[tuple[RunRecord, str]]) -> list[str | None]:
        """`create_delivered_run` for each (run, delivery_id) pair, in order, as one write
        where the store can (a delivery repeated within `items` answers its first run)."""
        ...

    # -- monitor cache persistence
    def save_snapshots(self, snapshots: Sequence[MonitorSnapshot]) -> None: ...

    def load_snapshots(self) -> list[MonitorSnapshot]: ...

    def close(self) -> None: ...


class LogSink(Protocol):
    """Where a run's output lines go (JSONL files per job). Records arrive already masked."""

    def write(self, record: LogRecord) -> None: ...

    def write_many(self, records: Sequence[LogRecord]) -> None:
        """A batch of one job's lines (one file write per batch)."""
        ...

    def close(self) -> None: ...
