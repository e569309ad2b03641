"""SqlRunStore: the RunStore protocol over a SQL database (SQLite by default, PostgreSQL).

Written once against `store.executor.Database`, which runs the named statements of
store/statements.py: with SQLAlchemy (`store.enginedb`, any URL) or with stdlib sqlite3 and
the SQL compiled from the same statements (`store.sqlitedb`, the embedded store, so a
`conveyor run` never imports SQLAlchemy). Every method is one short transaction; writes on
SQLite take the write lock up front so concurrent `conveyor run` processes queue rather
than fail. Transactions that number runs are serialised (SQLite's write lock, a
PostgreSQL advisory lock: `Database.write(is_numbering=True)`); the retry when another
process won the same number (`store.writes`) is only a safety net. A job or process group
of an unknown run is reported as that run missing. On SQLite, `get_run` serves a record it
read again while no connection has committed since (`store.runcache`). Webhook deliveries
live in `store.deliveries`. Must not touch log files or processes, nor import SQLAlchemy;
driver errors arrive here already as StoreError.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime

from conveyor.model import JobRecord, RunRecord, Status
from conveyor.store import deliveries
from conveyor.store.base import BodySeen, HistoryRecord, LiveProcess, MonitorSnapshot
from conveyor.store.executor import Database, IntegrityConflict, MissingReference, Tx
from conveyor.store.rows import (
    history_from_row,
    history_params,
    job_from_row,
    process_from_row,
    run_from_row,
    snapshot_from_row,
    snapshot_params,
)
from conveyor.store.runcache import RunsSeen
from conveyor.store.writes import (
    NUMBER_ATTEMPTS,
    duplicate_run,
    insert_run,
    missing_run,
    numbering_exhausted,
    run_exists,
    write_job,
    write_process,
)

__all__ = ["LIST_FILTERS", "SqlRunStore", "list_runs_statement"]

#: The optional filters of `list_runs`, in the order of their statement names.
LIST_FILTERS = ("repo", "ref", "status")


def list_runs_statement(filters: Iterable[str]) -> str:
    """The name of the `list_runs` statement for these filters (store/statements.py makes
    one per combination): `runs_list`, `runs_list_by_repo_by_status`, …"""
    chosen = set(filters)
    return "runs_list" + "".join(f"_by_{name}" for name in LIST_FILTERS if name in chosen)


class SqlRunStore:
    """A RunStore on a `Database`. Build it with `conveyor.store.open_store` (the embedded
    SQLite file) or `open_store_url` (any SQLAlchemy URL)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.where = db.where
        self.local_reads = db.local_reads
        self._runs_seen = RunsSeen(db.sqlite_path) if db.sqlite_path else None

    # ------------------------------------------------------------ runs

    def create_run(self, run: RunRecord) -> RunRecord:
        for _ in range(NUMBER_ATTEMPTS):
            try:
                # One transaction for the run and its first job records.
                with self._db.write(f"create run {run.run_id}", is_numbering=True) as tx:
                    insert_run(tx, run)
                    number = tx.execute("run_number", {"key_run_id": run.run_id})[0]["number"]
            except IntegrityConflict as exc:
                if run_exists(self._db, run.run_id):
                    raise duplicate_run(self.where, run.run_id) from exc
                continue  # another process took this number: try the next one
            return replace(run, number=number)
        raise numbering_exhausted(self.where)

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
        values = {
            "v_status": None if status is None else str(status),
            "v_started_at": started_at,
            "v_finished_at": finished_at,
            "v_reason": reason,
            "v_pipeline_name": pipeline_name,
        }
        if all(v is None for v in values.values()):
            return
        with self._db.write(f"update run {run_id}") as tx:
            tx.execute("run_update", {**values, "key_run_id": run_id})

    def reopen_run(self, run_id: str, *, status: Status) -> None:
        with self._db.write(f"reopen run {run_id}") as tx:
            tx.execute("run_reopen", {"v_status": str(status), "key_run_id": run_id})

    def claim_run(self, run_id: str, *, owner_pid: int, owner_started_ticks: int) -> None:
        params = {
            "v_owner_pid": owner_pid,
            "v_owner_started_ticks": owner_started_ticks,
            "key_run_id": run_id,
        }
        with self._db.write(f"claim run {run_id}") as tx:
            tx.execute("run_claim", params)

    @contextmanager
    def _write_to_run(self, run_id: str, action: str) -> Iterator[Tx]:
        """A write transaction of rows that belong to run `run_id`: a broken foreign key
        is reported as that run missing."""
        try:
            with self._db.write(action) as tx:
                yield tx
        except MissingReference as exc:
            raise missing_run(self.where, action, run_id) from exc

    def save_job(self, run_id: str, job: JobRecord) -> None:
        with self._write_to_run(run_id, f"save job {job.name!r} of run {run_id}") as tx:
            write_job(tx, run_id, job)

    def save_job_and_processes(
        self,
        run_id: str,
        job: JobRecord | None,
        *,
        add: LiveProcess | None = None,
        remove: Sequence[int] = (),
    ) -> None:
        """`remove_process` for each of `remove`, `save_job(job)` and `add_process(add)` in
        ONE transaction (the engine's journal batches its writes per job with it)."""
        what = f"save job {job.name!r}" if job is not None else "record process groups"
        with self._write_to_run(run_id, f"{what} of run {run_id}") as tx:
            if remove:
                tx.execute_many(
                    "process_delete", [{"key_run_id": run_id, "key_pgid": p} for p in remove]
                )
            if job is not None:
                write_job(tx, run_id, job)
            if add is not None:
                write_process(tx, add)

    def get_run(self, run_id: str) -> RunRecord | None:
        seen = self._runs_seen
        if seen is None:
            return self._select_run(run_id)
        version = seen.version()
        run = seen.get(run_id, version)
        if run is None:
            run = self._select_run(run_id)
            if run is not None:
                seen.put(run, version)
        return run

    def _select_run(self, run_id: str) -> RunRecord | None:
        key = {"key_run_id": run_id}
        with self._db.read(f"read run {run_id}") as tx:
            rows = tx.execute("run_select", key)
            if not rows:
                return None
            job_rows = tx.execute("run_jobs", key)
        latest: dict[str, JobRecord] = {}
        for job_row in job_rows:
            job = job_from_row(job_row)
            current = latest.get(job.name)
            if current is None or job.attempt >= current.attempt:
                latest[job.name] = job  # a dict keeps the first insertion's position
        return run_from_row(rows[0], tuple(latest.values()))

    def job_attempts(self, run_id: str, job: str) -> list[JobRecord]:
        with self._db.read(f"read job {job!r} of run {run_id}") as tx:
            rows = tx.execute("job_attempts", {"key_run_id": run_id, "key_name": job})
        return [job_from_row(row) for row in rows]

    def list_runs(
        self,
        *,
        repo: str | None = None,
        ref: str | None = None,
        status: Status | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[RunRecord]:
        given = {"repo": repo, "ref": ref, "status": None if status is None else str(status)}
        filters = {f"key_{k}": v for k, v in given.items() if v is not None}
        name = list_runs_statement(k for k, v in given.items() if v is not None)
        with self._db.read("list runs") as tx:
            rows = tx.execute(name, {**filters, "key_limit": limit, "key_offset": offset})
        return [run_from_row(row, ()) for row in rows]

    def runs_with_status(self, statuses: Sequence[Status]) -> list[RunRecord]:
        if not statuses:
            return []
        with self._db.read("list runs by status") as tx:
            rows = tx.execute("runs_with_status", {"key_statuses": [str(s) for s in statuses]})
        return [run_from_row(row, ()) for row in rows]

    def orphaned_runs(self) -> list[tuple[str, int, int]]:
        """Runs marked running that a process claimed; unclaimed ones are left alone (their
        creator may be about to claim them)."""
        with self._db.read("list running runs") as tx:
            rows = tx.execute("runs_orphaned", {"key_status": str(Status.RUNNING)})
        return [
            (str(r["run_id"]), int(r["owner_pid"]), int(r["owner_started_ticks"] or 0))
            for r in rows
        ]

    def request_cancel(self, run_id: str) -> bool:
        with self._db.write(f"cancel run {run_id}") as tx:
            tx.execute("run_cancel", {"key_run_id": run_id})
            return tx.rowcount > 0

    def is_cancel_requested(self, run_id: str) -> bool:
        with self._db.read(f"read run {run_id}") as tx:
            rows = tx.execute("run_cancel_requested", {"key_run_id": run_id})
        return bool(rows and rows[0]["cancel_requested"])

    # ------------------------------------------------------------ process groups

    def add_process(self, proc: LiveProcess) -> None:
        action = f"record process group {proc.pgid} of run {proc.run_id}"
        with self._write_to_run(proc.run_id, action) as tx:
            write_process(tx, proc)

    def remove_process(self, run_id: str, pgid: int) -> None:
        with self._db.write(f"forget process group {pgid}") as tx:
            tx.execute("process_delete", {"key_run_id": run_id, "key_pgid": pgid})

    def processes(self, run_id: str) -> list[LiveProcess]:
        with self._db.read(f"list process groups of run {run_id}") as tx:
            rows = tx.execute("run_processes", {"key_run_id": run_id})
        return [process_from_row(row) for row in rows]

    # ------------------------------------------------------------ webhook deliveries

    def claim_delivery(self, delivery_id: str, run_id: str) -> str | None:
        return deliveries.claim_delivery(self._db, delivery_id, run_id)

    def create_delivered_run(
        self, run: RunRecord, delivery_id: str, *, body: BodySeen | None = None
    ) -> str | None:
        return deliveries.create_delivered_run(self._db, run, delivery_id, body)

    def create_delivered_runs(
        self,
        items: Sequence[tuple[RunRecord, str]],
        *,
        bodies: Sequence[BodySeen | None] = (),
    ) -> list[str | None]:
        return deliveries.create_delivered_runs(self._db, items, bodies)

    # ------------------------------------------------------------ monitor snapshots

    def save_snapshots(self, items: Sequence[MonitorSnapshot]) -> None:
        if not items:
            return
        with self._db.write("save monitor snapshots") as tx:
            tx.execute("snapshots_delete", {"key_keys": [s.key for s in items]})
            tx.execute_many("snapshot_insert", [snapshot_params(s) for s in items])

    def load_snapshots(self) -> list[MonitorSnapshot]:
        with self._db.read("load monitor snapshots") as tx:
            rows = tx.execute("snapshots_all")
        return [snapshot_from_row(row) for row in rows]

    # ------------------------------------------------------------ monitor history

    def save_history(self, records: Sequence[HistoryRecord], *, keep: int) -> None:
        latest = {(r.key, r.pipeline_id): r for r in records}  # a repeated one: the last wins
        if not latest:
            return
        keys = sorted({key for key, _ in latest})
        with self._db.write("save monitor history") as tx:
            tx.execute_many(
                "history_delete",
                [{"key_key": key, "key_pipeline_id": pid} for key, pid in latest],
            )
            tx.execute_many("history_insert", [history_params(r) for r in latest.values()])
            tx.execute_many("history_trim", [{"key_key": k, "key_offset": keep} for k in keys])

    def load_history(self) -> list[HistoryRecord]:
        with self._db.read("load monitor history") as tx:
            rows = tx.execute("history_all")
        return [history_from_row(row) for row in rows]

    def close(self) -> None:
        if self._runs_seen is not None:
            self._runs_seen.close()
        self._db.close()
