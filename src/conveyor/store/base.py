"""The store's protocols, one per concern, and the records they carry.

    RunRecords        runs and their jobs: create, number, update, read, cancel flags
    ProcessBook       where live process groups are reported (LocalRunner reports here)
    ProcessRecords    crash recovery: a run's owner process, its live groups (a ProcessBook)
                      and the engine journal's batch write of a job with its groups
    Deliveries        webhook deliveries: de-duplication that survives restarts, intake
    MonitorSnapshots  the monitor cache saved for a restart
    MonitorHistory    each monitor target's pipeline history, bounded per target
    RunStore          all of the above plus `close`: what `store.sql.SqlRunStore` (and the
                      test fake) implement, for callers that need every concern
    LogSink           where a run's output lines are written (JSONL files per job)
    LogReader         where they are read back and followed (next to the sink)

A caller types against the one concern it needs (the monitor: MonitorSnapshots and
MonitorHistory; the runs API: RunRecords). Store methods are synchronous and short (a few
rows each); async callers in the server wrap them in `asyncio.to_thread`. Every method
raises StoreError (never a driver exception) on failure. This module defines shapes only:
it does no I/O. The records are NamedTuples: every `conveyor run` imports this module, and
a frozen dataclass costs 0.4-0.7 ms to define against 0.1 ms (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from typing import NamedTuple, Protocol

from conveyor.model import JobRecord, LogRecord, RunRecord, Status

__all__ = [
    "BodySeen",
    "Deliveries",
    "DoneCheck",
    "HistoryRecord",
    "JsonlLog",
    "LiveProcess",
    "LogReader",
    "LogSink",
    "MonitorHistory",
    "MonitorSnapshot",
    "MonitorSnapshots",
    "ProcessBook",
    "ProcessRecords",
    "RunRecords",
    "RunStore",
]


class LiveProcess(NamedTuple):
    """A process group started for a job. `started_ticks` is the leader's start time
    (field 22 of /proc/PID/stat) so a recycled PID is never mistaken for ours."""

    run_id: str
    job: str
    pgid: int
    started_ticks: int


class MonitorSnapshot(NamedTuple):
    """One monitor cache entry as saved for a restart: its serialized JSON and fetch time."""

    key: str
    provider: str
    data_json: bytes
    fetched_at: datetime


class HistoryRecord(NamedTuple):
    """One upstream pipeline of a monitor target (`key` = `repo@branch`) as its history
    keeps it. `pipeline_id` is the upstream's id (GitLab pipeline, GitHub run, Jenkins
    build number), which grows with each new pipeline; times are aware UTC or None when the
    upstream does not give them."""

    key: str
    provider: str
    pipeline_id: int
    status: Status
    sha: str | None
    web_url: str
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class RunRecords(Protocol):
    """Runs and their jobs."""

    #: True when a read is a short local call (a SQLite file, memory) that a server may make
    #: on its event loop instead of hopping to a worker thread.
    local_reads: bool

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

    def request_cancel(self, run_id: str) -> bool:
        """Flag a run for cancellation (seen by its owner process); False if unknown."""
        ...

    def is_cancel_requested(self, run_id: str) -> bool: ...


class ProcessBook(Protocol):
    """Where `LocalRunner` reports the process groups it starts and reaps, for crash
    recovery: a store, or the engine's `JobJournal` (which batches these writes with the
    job's records)."""

    def add_process(self, proc: LiveProcess) -> None:
        """Record a group, replacing an earlier one of the same (run, pgid)."""
        ...

    def remove_process(self, run_id: str, pgid: int) -> None:
        """Forget a group; an unknown one changes nothing."""
        ...


class ProcessRecords(ProcessBook, Protocol):
    """The store's side of crash recovery: which conveyor process owns a run, and the
    process groups its jobs started (`engine.recovery` kills the leftovers)."""

    def claim_run(self, run_id: str, *, owner_pid: int, owner_started_ticks: int) -> None:
        """Record which conveyor process executes the run (for crash detection)."""
        ...

    def orphaned_runs(self) -> list[tuple[str, int, int]]:
        """(run_id, owner_pid, owner_started_ticks) of claimed runs still marked running."""
        ...

    def processes(self, run_id: str) -> list[LiveProcess]:
        """The run's recorded groups, by pgid."""
        ...

    def save_job_and_processes(
        self,
        run_id: str,
        job: JobRecord | None,
        *,
        add: LiveProcess | None = None,
        remove: Sequence[int] = (),
    ) -> None:
        """`remove_process` of each of `remove`, `save_job(job)` (when given) and
        `add_process(add)` (when given) as ONE write where the store can (one transaction
        in SQL): the engine journal's batch of a job attempt's bookkeeping."""
        ...


class BodySeen(NamedTuple):
    """A delivery's body as de-duplication sees it: its `digest` (`<provider>:sha256:<hex>`)
    and the oldest receipt that still makes the same body a duplicate (`since`: the run's
    `created_at` minus the window)."""

    digest: str
    since: datetime


class Deliveries(Protocol):
    """Webhook deliveries: de-duplication that survives restarts, and the intake's write.

    A delivery is a duplicate when its id was seen, or (given its `BodySeen`) when a
    delivery with the same body digest made a run created at or after `since`, whatever
    its id: a signed body replayed under a new id starts nothing. The body is recorded
    with the run it made (received at the run's `created_at`)."""

    def claim_delivery(self, delivery_id: str, run_id: str) -> str | None:
        """Record delivery -> run; if the delivery was seen before, return its run id and
        record nothing."""
        ...

    def create_delivered_run(
        self, run: RunRecord, delivery_id: str, *, body: BodySeen | None = None
    ) -> str | None:
        """`claim_delivery` + `create_run` as one atomic write (the webhook intake): if the
        delivery (or its body, class docstring) was seen before, write nothing and return
        that run's id; else store `run` (numbered as `create_run` does), the delivery and
        its body, and return None."""
        ...

    def create_delivered_runs(
        self,
        items: Sequence[tuple[RunRecord, str]],
        *,
        bodies: Sequence[BodySeen | None] = (),
    ) -> list[str | None]:
        """`create_delivered_run` for each (run, delivery_id) pair, in order, with the body
        of the same position in `bodies` (none when shorter), as one write where the store
        can (a delivery or body repeated within `items` answers its first run)."""
        ...


class MonitorSnapshots(Protocol):
    """The monitor cache's entries, saved so a restarted server serves them at once."""

    def save_snapshots(self, snapshots: Sequence[MonitorSnapshot]) -> None:
        """Replace the saved entries of these keys (others stay)."""
        ...

    def load_snapshots(self) -> list[MonitorSnapshot]:
        """Every saved entry, by key."""
        ...


class MonitorHistory(Protocol):
    """Each monitor target's pipeline history, so trends survive a restart. Bounded: a
    target keeps only its `keep` newest pipelines (highest ids)."""

    def save_history(self, records: Sequence[HistoryRecord], *, keep: int) -> None:
        """Insert each record, replacing the stored one of the same (key, pipeline_id) (one
        repeated within `records`: the last wins); then every key written keeps only its
        `keep` newest pipelines. One write where the store can (one transaction in SQL)."""
        ...

    def load_history(self) -> list[HistoryRecord]:
        """Every kept record, by key, newest (highest pipeline id) first within a key."""
        ...


class RunStore(RunRecords, ProcessRecords, Deliveries, MonitorSnapshots, MonitorHistory, Protocol):
    """Every concern of the run store in one object (SqlRunStore), for the callers that
    need them all: the run chain, the server app, the CLI commands."""

    def close(self) -> None: ...


class LogSink(Protocol):
    """Where a run's output lines go (JSONL files per job). Records arrive already masked."""

    def write_many(self, records: Sequence[LogRecord]) -> None:
        """Append the records, in order: the engine hands over the lines of one output
        chunk at once (the file sink makes that one file write per job)."""
        ...

    def close(self) -> None: ...

    def give_up(self, reason: str) -> None:
        """Stop writing (later writes raise StoreError with `reason`; what is buffered is
        dropped) and give back any room kept for the store: the store failed, most likely
        on a full disk, and must still be able to record the run's outcome."""
        ...


#: "Is the writer done?", sync or async (e.g. "the job or run has a final status").
DoneCheck = Callable[[], bool] | Callable[[], Awaitable[bool]]


class LogReader(Protocol):
    """One run's output lines as its LogSink wrote them: read whole, or followed while
    written. Readers skip a line still being written and lines a crash left corrupt."""

    def job_names(self) -> list[str]:
        """Names of the jobs that have written a line, in a stable order."""
        ...

    def has_log(self, job: str) -> bool:
        """True when `job` has written anything."""
        ...

    def read_job(self, job: str) -> Iterator[LogRecord]:
        """Every complete record of `job`, in order (nothing if it has no log yet)."""
        ...

    def read_run(self) -> Iterator[LogRecord]:
        """Every record of the run, all jobs merged by time (then job, then line number)."""
        ...

    def read_job_jsonl(self, job: str) -> JsonlLog:
        """`job`'s complete records as their JSONL lines (`records.log_to_dict`, compact,
        one per line), without building a LogRecord for each: what the log route serves."""
        ...

    def follow_job(
        self,
        job: str,
        *,
        is_done: DoneCheck,
        poll_s: float = 0.1,
        after_n: int = 0,
        offset: int = 0,
    ) -> AsyncIterator[LogRecord]:
        """`job`'s records from line `after_n + 1` as they are written, until `is_done()`
        holds and everything written is read. `offset`: a `JsonlLog.end_offset` of this
        job; the records before it are not read again (a line it cuts is skipped). Waits
        for the log to appear; the caller bounds the whole follow with its own deadline."""
        ...


class JsonlLog(NamedTuple):
    """A job's log as JSONL (`LogReader.read_job_jsonl`): `chunks` yields whole lines, in
    order, up to `end_offset`, the position the log had when it was opened (a follow goes on
    from there with `follow_job(offset=end_offset)`)."""

    end_offset: int
    chunks: Iterator[bytes]
