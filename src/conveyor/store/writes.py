"""The write steps several run-store transactions share: a numbered run with its first job
records, a job attempt's upsert, a process group's row, and the checks after a conflict.

Run numbers come from one `INSERT … SELECT max(number) + 1` statement (`run_insert`); a
caller opens it as a numbering write (serialised by the executor) and, as a safety net,
retries it up to `NUMBER_ATTEMPTS` times when another process won the same number anyway.
Each function runs inside a transaction its caller opened (or opens one short read);
none commits on its own. Must not import SQLAlchemy (statements are run by name).
"""

from __future__ import annotations

from conveyor.errors import StoreError
from conveyor.model import JobRecord, RunRecord
from conveyor.store.base import LiveProcess
from conveyor.store.executor import Database, Tx
from conveyor.store.rows import job_params, process_params, run_params

__all__ = [
    "NUMBER_ATTEMPTS",
    "duplicate_run",
    "insert_run",
    "missing_run",
    "numbering_exhausted",
    "run_exists",
    "write_job",
    "write_process",
]

NUMBER_ATTEMPTS = 20


def insert_run(tx: Tx, run: RunRecord) -> None:
    """The run with the next number, and its first job records (latest of each attempt)."""
    tx.execute("run_insert", run_params(run))
    if run.jobs:
        latest = {(j.name, j.attempt): j for j in run.jobs}
        tx.execute_many(
            "job_insert", [{"v_run_id": run.run_id, **job_params(j)} for j in latest.values()]
        )


def write_job(tx: Tx, run_id: str, job: JobRecord) -> None:
    """Upsert the row of (run_id, job.name, job.attempt)."""
    values = job_params(job)
    key = {"key_run_id": run_id, "key_name": job.name, "key_attempt": job.attempt}
    tx.execute("job_update", {**values, **key})
    if tx.rowcount == 0:
        tx.execute("job_insert", {"v_run_id": run_id, **values})


def write_process(tx: Tx, proc: LiveProcess) -> None:
    """Record a process group, replacing an earlier row of the same (run, pgid)."""
    tx.execute("process_delete", {"key_run_id": proc.run_id, "key_pgid": proc.pgid})
    tx.execute("process_insert", process_params(proc))


def run_exists(db: Database, run_id: str) -> bool:
    with db.read("read a run") as tx:
        return bool(tx.execute("run_number", {"key_run_id": run_id}))


def duplicate_run(where: str, run_id: str) -> StoreError:
    return StoreError(f"{where}: run {run_id} already exists (use a new run id)")


def missing_run(where: str, action: str, run_id: str) -> StoreError:
    """A write of a job or process group whose run is not stored (its foreign key broke)."""
    return StoreError(f"{where}: cannot {action}: run {run_id} does not exist (create it first)")


def numbering_exhausted(where: str) -> StoreError:
    return StoreError(f"{where}: cannot assign a run number (too many concurrent runs)")
