"""JobJournal: which writes reach the store, when, and in which batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from conveyor.engine.journal import JobJournal
from conveyor.model import EventKind, JobRecord, RunRecord, Status
from conveyor.store.base import LiveProcess
from tests.fakes.memory_store import MemoryRunStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PENDING = JobRecord(name="build", stage="test", status=Status.PENDING)
RUNNING = replace(PENDING, status=Status.RUNNING, attempt=1, started_at=T0)
DONE = replace(RUNNING, status=Status.SUCCESS, exit_code=0, finished_at=T0)


class BatchingStore(MemoryRunStore):
    """The memory store remembering every batch the journal writes."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[str | None, int | None, tuple[int, ...]]] = []

    def save_job_and_processes(
        self,
        run_id: str,
        job: JobRecord | None,
        *,
        add: LiveProcess | None = None,
        remove: Sequence[int] = (),
    ) -> None:
        self.batches.append(
            (
                None if job is None else str(job.status),
                None if add is None else add.pgid,
                tuple(remove),
            )
        )
        super().save_job_and_processes(run_id, job, add=add, remove=remove)


def _store(store: MemoryRunStore) -> MemoryRunStore:
    store.create_run(
        RunRecord(
            run_id="r1",
            repo="repo",
            ref="main",
            sha="a" * 40,
            event=EventKind.PUSH,
            status=Status.PENDING,
            created_at=T0,
            jobs=(PENDING,),
        )
    )
    return store


def _status(store: MemoryRunStore) -> Status:
    run = store.get_run("r1")
    assert run is not None
    return run.jobs[0].status


def test_running_record_is_written_with_the_first_process_group() -> None:
    store = _store(BatchingStore())
    journal = JobJournal(store, hold_running=True)
    journal.save_job("r1", RUNNING)
    assert _status(store) is Status.PENDING
    journal.add_process(LiveProcess("r1", "build", 41, 7))
    assert _status(store) is Status.RUNNING
    assert store.processes("r1") == [LiveProcess("r1", "build", 41, 7)]
    journal.remove_process("r1", 41)
    assert [p.pgid for p in store.processes("r1")] == [41]  # forgotten with the next write
    journal.save_job("r1", DONE)
    assert (_status(store), store.processes("r1")) == (Status.SUCCESS, [])
    assert store.batches == [("running", 41, ()), ("success", None, (41,))]


def test_a_final_record_supersedes_a_held_running_record() -> None:
    store = _store(BatchingStore())
    journal = JobJournal(store, hold_running=True)
    journal.save_job("r1", RUNNING)
    journal.save_job("r1", replace(RUNNING, status=Status.FAILED, finished_at=T0))
    journal.flush()
    assert store.batches == [("failed", None, ())]
    assert _status(store) is Status.FAILED


def test_a_reused_pgid_cancels_the_pending_removal() -> None:
    store = _store(BatchingStore())
    journal = JobJournal(store, hold_running=True)
    journal.add_process(LiveProcess("r1", "build", 41, 7))
    journal.remove_process("r1", 41)
    journal.add_process(LiveProcess("r1", "other", 41, 9))  # the kernel gave 41 again
    journal.save_job("r1", DONE)
    assert store.processes("r1") == [LiveProcess("r1", "other", 41, 9)]


def test_without_holding_every_record_is_written_at_once_and_flush_empties() -> None:
    store = _store(BatchingStore())
    journal = JobJournal(store, hold_running=False)
    journal.save_job("r1", RUNNING)
    assert _status(store) is Status.RUNNING
    journal.add_process(LiveProcess("r1", "build", 41, 7))
    journal.remove_process("r1", 41)
    journal.remove_process("r1", 99)  # not ours: forgotten at once
    journal.flush()
    assert store.processes("r1") == []
    assert store.batches == [
        ("running", None, ()),
        (None, 41, ()),
        (None, None, (99,)),
        (None, None, (41,)),
    ]


def test_flush_writes_a_running_record_whose_job_started_nothing() -> None:
    store = _store(BatchingStore())
    journal = JobJournal(store, hold_running=True)
    journal.save_job("r1", RUNNING)
    journal.flush()
    assert _status(store) is Status.RUNNING
