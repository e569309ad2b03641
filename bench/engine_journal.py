"""Store writes per one-step job: the engine's batched journal vs one transaction each.

`.venv/bin/python bench/engine_journal.py` opens a fresh SQLite store (conveyor's own
`open_store`) and writes, for JOBS jobs, what the engine writes for a one-step job attempt:
  * baseline, one transaction per write (before engine/journal.py): running record,
    process group added, process group removed, final record (4 transactions);
  * batched (`SqlRunStore.save_job_and_processes`, what `JobJournal` calls): running
    record with its group, then the final record with the group's removal (2).
Rounds alternate; medians of ROUNDS, in milliseconds per job, and the ratio.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from conveyor.model import EventKind, JobRecord, RunRecord, Status
from conveyor.store import open_store
from conveyor.store.base import LiveProcess
from conveyor.store.sql import SqlRunStore

JOBS = 50
ROUNDS = 7


def _jobs() -> tuple[JobRecord, ...]:
    return tuple(
        JobRecord(name=f"job-{i:02}", stage="test", status=Status.PENDING) for i in range(JOBS)
    )


def _create(store: SqlRunStore, run_id: str) -> None:
    store.create_run(
        RunRecord(
            run_id=run_id,
            repo="bench",
            ref="main",
            sha="a" * 40,
            event=EventKind.PUSH,
            status=Status.PENDING,
            created_at=datetime.now(UTC),
            jobs=_jobs(),
        )
    )


def one_by_one(store: SqlRunStore, run_id: str) -> float:
    started = time.perf_counter()
    for pgid, job in enumerate(_jobs(), start=1000):
        running = replace(job, status=Status.RUNNING, attempt=1, started_at=datetime.now(UTC))
        store.save_job(run_id, running)
        store.add_process(LiveProcess(run_id, job.name, pgid, 5))
        store.remove_process(run_id, pgid)
        store.save_job(
            run_id, replace(running, status=Status.SUCCESS, finished_at=datetime.now(UTC))
        )
    return (time.perf_counter() - started) * 1000 / JOBS


def batched(store: SqlRunStore, run_id: str) -> float:
    started = time.perf_counter()
    for pgid, job in enumerate(_jobs(), start=1000):
        running = replace(job, status=Status.RUNNING, attempt=1, started_at=datetime.now(UTC))
        store.save_job_and_processes(run_id, running, add=LiveProcess(run_id, job.name, pgid, 5))
        final = replace(running, status=Status.SUCCESS, finished_at=datetime.now(UTC))
        store.save_job_and_processes(run_id, final, remove=[pgid])
    return (time.perf_counter() - started) * 1000 / JOBS


def main() -> int:
    with tempfile.TemporaryDirectory() as home:
        store = open_store(Path(home))
        assert isinstance(store, SqlRunStore)
        base, new = [], []
        for n in range(ROUNDS):
            _create(store, f"a{n}")
            _create(store, f"b{n}")
            base.append(one_by_one(store, f"a{n}"))
            new.append(batched(store, f"b{n}"))
        store.close()
    b, a = statistics.median(base), statistics.median(new)
    print(f"{JOBS} one-step jobs, median of {ROUNDS} rounds, SQLite store")
    print("| writes per job | ms per job |\n|---|---|")
    print(f"| 4 transactions (baseline) | {b:.3f} |\n| 2 transactions (journal) | {a:.3f} |")
    print(f"ratio baseline / journal: {b / a:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
