"""SqlRunStore: the RunStore protocol over SQLAlchemy Core (SQLite by default, PostgreSQL).

Every method is one short transaction; writes on SQLite take the write lock up front
(`BEGIN IMMEDIATE`) so concurrent `conveyor run` processes queue rather than fail. Run
numbers come from one `INSERT … SELECT max(number) + 1` statement, retried if another
process won the same number. On SQLite, `get_run` serves a record it read again while no
connection has committed since (`store.runcache`). Must not touch log files or processes;
driver exceptions become StoreError (database.to_store_error).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from conveyor.errors import StoreError
from conveyor.model import JobRecord, RunRecord, Status
from conveyor.store.base import LiveProcess, MonitorSnapshot
from conveyor.store.database import IMMEDIATE, describe_url, to_store_error
from conveyor.store.rows import job_from_row, job_values, run_from_row, run_values
from conveyor.store.runcache import RunsSeen
from conveyor.store.schema import deliveries, jobs, processes, runs, snapshots
from conveyor.store.statements import (
    DELIVERIES_SELECT,
    DELIVERY_INSERT,
    DELIVERY_SELECT,
    JOB_INSERT,
    PROCESS_DELETE,
    RUN_COLUMNS,
    RUN_JOBS_SELECT,
    RUN_SELECT,
    numbered_run_insert,
    write_job,
    write_process,
)

__all__ = ["SqlRunStore"]

_NUMBER_ATTEMPTS = 20


class SqlRunStore:
    """A RunStore on a SQLAlchemy engine. Build it with `conveyor.store.open_store`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{IMMEDIATE: True})
        self.where = describe_url(engine.url)
        # A SQLite read (WAL: never waits for a writer) is a short local call.
        self.local_reads = engine.url.get_backend_name() == "sqlite"
        self._runs_seen = RunsSeen(engine.url) if self.local_reads else None

    # ------------------------------------------------------------ transactions

    @contextmanager
    def _read(self, action: str) -> Iterator[Connection]:
        try:
            with self._engine.connect() as connection, connection.begin():
                yield connection
        except sa.exc.SQLAlchemyError as exc:
            raise to_store_error(exc, self.where, action) from exc

    @contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        try:
            with self._writer.begin() as connection:
                yield connection
        except sa.exc.SQLAlchemyError as exc:
            raise to_store_error(exc, self.where, action) from exc

    # ------------------------------------------------------------ runs

    def create_run(self, run: RunRecord) -> RunRecord:
        values = run_values(run)
        del values["number"]
        next_number = sa.select(sa.func.coalesce(sa.func.max(runs.c.number), 0) + 1)
        columns = [*values, "number"]
        selected = sa.select(
            *(sa.literal(v, runs.c[k].type) for k, v in values.items()),
            next_number.scalar_subquery(),
        )
        for _ in range(_NUMBER_ATTEMPTS):
            try:
                with self._writer.begin() as connection:
                    connection.execute(runs.insert().from_select(columns, selected))
                    number = connection.execute(
                        sa.select(runs.c.number).where(runs.c.run_id == run.run_id)
                    ).scalar_one()
                    if run.jobs:  # one transaction for the run and its first job records
                        latest = {(j.name, j.attempt): j for j in run.jobs}
                        connection.execute(
                            JOB_INSERT,
                            [{"run_id": run.run_id, **job_values(j)} for j in latest.values()],
                        )
            except sa.exc.IntegrityError as exc:
                if self._run_exists(run.run_id):
                    raise StoreError(
                        f"{self.where}: run {run.run_id} already exists (use a new run id)"
                    ) from exc
                continue  # another process took this number: try the next one
            except sa.exc.SQLAlchemyError as exc:
                raise to_store_error(exc, self.where, f"create run {run.run_id}") from exc
            return replace(run, number=number)
        raise StoreError(f"{self.where}: cannot assign a run number (too many concurrent runs)")

    def _run_exists(self, run_id: str) -> bool:
        with self._read("read a run") as connection:
            found = connection.execute(
                sa.select(runs.c.run_id).where(runs.c.run_id == run_id)
            ).first()
        return found is not None

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
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = str(status)
        if started_at is not None:
            values["started_at"] = started_at
        if finished_at is not None:
            values["finished_at"] = finished_at
        if reason is not None:
            values["reason"] = reason
        if pipeline_name is not None:
            values["pipeline_name"] = pipeline_name
        if not values:
            return
        with self._write(f"update run {run_id}") as connection:
            connection.execute(runs.update().where(runs.c.run_id == run_id).values(values))

    def claim_run(self, run_id: str, *, owner_pid: int, owner_started_ticks: int) -> None:
        with self._write(f"claim run {run_id}") as connection:
            connection.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(owner_pid=owner_pid, owner_started_ticks=owner_started_ticks)
            )

    def save_job(self, run_id: str, job: JobRecord) -> None:
        with self._write(f"save job {job.name!r} of run {run_id}") as connection:
            write_job(connection, run_id, job)

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
        with self._write(f"{what} of run {run_id}") as connection:
            if remove:
                connection.execute(
                    PROCESS_DELETE, [{"key_run_id": run_id, "key_pgid": p} for p in remove]
                )
            if job is not None:
                write_job(connection, run_id, job)
            if add is not None:
                write_process(connection, add)

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
        with self._read(f"read run {run_id}") as connection:
            key = {"key_run_id": run_id}
            row = connection.execute(RUN_SELECT, key).first()
            if row is None:
                return None
            job_rows = connection.execute(RUN_JOBS_SELECT, key).all()
        latest: dict[str, JobRecord] = {}
        for job_row in job_rows:
            job = job_from_row(job_row._mapping)
            current = latest.get(job.name)
            if current is None or job.attempt >= current.attempt:
                latest[job.name] = job  # a dict keeps the first insertion's position
        return run_from_row(row._mapping, tuple(latest.values()))

    def job_attempts(self, run_id: str, job: str) -> list[JobRecord]:
        with self._read(f"read job {job!r} of run {run_id}") as connection:
            rows = connection.execute(
                sa.select(jobs)
                .where((jobs.c.run_id == run_id) & (jobs.c.name == job))
                .order_by(jobs.c.attempt, jobs.c.id)
            ).all()
        return [job_from_row(row._mapping) for row in rows]

    def list_runs(
        self,
        *,
        repo: str | None = None,
        ref: str | None = None,
        status: Status | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[RunRecord]:
        query = sa.select(*RUN_COLUMNS)
        if repo is not None:
            query = query.where(runs.c.repo == repo)
        if ref is not None:
            query = query.where(runs.c.ref == ref)
        if status is not None:
            query = query.where(runs.c.status == str(status))
        query = query.order_by(runs.c.number.desc()).limit(limit).offset(offset)
        with self._read("list runs") as connection:
            rows = connection.execute(query).all()
        return [run_from_row(row._mapping, ()) for row in rows]

    def runs_with_status(self, statuses: Sequence[Status]) -> list[RunRecord]:
        query = (
            sa.select(*RUN_COLUMNS)
            .where(runs.c.status.in_([str(s) for s in statuses]))
            .order_by(runs.c.number)
        )
        with self._read("list runs by status") as connection:
            rows = connection.execute(query).all()
        return [run_from_row(row._mapping, ()) for row in rows]

    def orphaned_runs(self) -> list[tuple[str, int, int]]:
        """Runs marked running that a process claimed; unclaimed ones are left alone (their
        creator may be about to claim them)."""
        query = (
            sa.select(runs.c.run_id, runs.c.owner_pid, runs.c.owner_started_ticks)
            .where((runs.c.status == str(Status.RUNNING)) & runs.c.owner_pid.is_not(None))
            .order_by(runs.c.number)
        )
        with self._read("list running runs") as connection:
            rows = connection.execute(query).all()
        return [(str(r[0]), int(r[1]), int(r[2] or 0)) for r in rows]

    def request_cancel(self, run_id: str) -> bool:
        with self._write(f"cancel run {run_id}") as connection:
            result = connection.execute(
                runs.update().where(runs.c.run_id == run_id).values(cancel_requested=True)
            )
        return result.rowcount > 0

    def is_cancel_requested(self, run_id: str) -> bool:
        with self._read(f"read run {run_id}") as connection:
            flag = connection.execute(
                sa.select(runs.c.cancel_requested).where(runs.c.run_id == run_id)
            ).scalar()
        return bool(flag)

    # ------------------------------------------------------------ process groups

    def add_process(self, proc: LiveProcess) -> None:
        with self._write(f"record process group {proc.pgid}") as connection:
            write_process(connection, proc)

    def remove_process(self, run_id: str, pgid: int) -> None:
        with self._write(f"forget process group {pgid}") as connection:
            connection.execute(PROCESS_DELETE, {"key_run_id": run_id, "key_pgid": pgid})

    def processes(self, run_id: str) -> list[LiveProcess]:
        with self._read(f"list process groups of run {run_id}") as connection:
            rows = connection.execute(
                sa.select(processes).where(processes.c.run_id == run_id).order_by(processes.c.pgid)
            ).all()
        return [
            LiveProcess(run_id=r.run_id, job=r.job, pgid=r.pgid, started_ticks=r.started_ticks)
            for r in rows
        ]

    # ------------------------------------------------------------ webhook deliveries

    def claim_delivery(self, delivery_id: str, run_id: str) -> str | None:
        select = sa.select(deliveries.c.run_id).where(deliveries.c.delivery_id == delivery_id)
        try:
            with self._writer.begin() as connection:
                seen = connection.execute(select).scalar()
                if seen is not None:
                    return str(seen)
                connection.execute(
                    deliveries.insert().values(delivery_id=delivery_id, run_id=run_id)
                )
            return None
        except sa.exc.IntegrityError:
            with self._read("read a webhook delivery") as connection:
                return str(connection.execute(select).scalar_one())
        except sa.exc.SQLAlchemyError as exc:
            raise to_store_error(exc, self.where, "record a webhook delivery") from exc

    def create_delivered_run(self, run: RunRecord, delivery_id: str) -> str | None:
        """The webhook intake's one transaction: the delivery row (its key de-duplicates)
        and the numbered run, with statements built once (a third of the cost of
        `claim_delivery` + `create_run`)."""
        values = run_values(run)
        del values["number"]
        insert = numbered_run_insert(tuple(values))
        params = {f"v_{k}": v for k, v in values.items()}
        for _ in range(_NUMBER_ATTEMPTS):
            try:
                with self._writer.begin() as connection:
                    # The delivery's primary key is the de-duplication: a redelivery fails
                    # this first insert (no prior SELECT: redeliveries are rare).
                    connection.execute(
                        DELIVERY_INSERT, {"delivery_id": delivery_id, "run_id": run.run_id}
                    )
                    connection.execute(insert, params)
                    if run.jobs:
                        latest = {(j.name, j.attempt): j for j in run.jobs}
                        connection.execute(
                            JOB_INSERT,
                            [{"run_id": run.run_id, **job_values(j)} for j in latest.values()],
                        )
            except sa.exc.IntegrityError as exc:
                # A redelivery, or another writer (PostgreSQL; SQLite serialises writers)
                # took the run id or the run number first; nothing of this call was written.
                with self._read("read a webhook delivery") as connection:
                    seen = connection.execute(
                        DELIVERY_SELECT, {"key_delivery_id": delivery_id}
                    ).scalar()
                if seen is not None:
                    return str(seen)
                if self._run_exists(run.run_id):
                    raise StoreError(
                        f"{self.where}: run {run.run_id} already exists (use a new run id)"
                    ) from exc
                continue
            except sa.exc.SQLAlchemyError as exc:
                raise to_store_error(exc, self.where, "record a webhook delivery") from exc
            return None
        raise StoreError(f"{self.where}: cannot assign a run number (too many concurrent runs)")

    def create_delivered_runs(self, items: Sequence[tuple[RunRecord, str]]) -> list[str | None]:
        """`create_delivered_run` for several (run, delivery) pairs in one transaction (the
        intake's group commit): one delivery lookup, then the new deliveries and runs."""
        if len(items) <= 1 or any(run.jobs for run, _ in items):
            return [self.create_delivered_run(run, delivery) for run, delivery in items]
        try:
            with self._writer.begin() as connection:
                known = {d for _, d in items}
                rows = connection.execute(DELIVERIES_SELECT, {"key_ids": sorted(known)})
                seen: dict[str, str] = {str(d): str(r) for d, r in rows}
                answers: list[str | None] = []
                new_deliveries: list[dict[str, Any]] = []
                new_runs: dict[tuple[str, ...], list[dict[str, Any]]] = {}
                for run, delivery in items:
                    answers.append(seen.get(delivery))
                    if delivery in seen:
                        continue
                    seen[delivery] = run.run_id
                    new_deliveries.append({"delivery_id": delivery, "run_id": run.run_id})
                    values = run_values(run)
                    del values["number"]
                    params = {f"v_{k}": v for k, v in values.items()}
                    new_runs.setdefault(tuple(values), []).append(params)
                if new_deliveries:
                    connection.execute(DELIVERY_INSERT, new_deliveries)
                for columns, many in new_runs.items():  # numbered in order, one by one
                    connection.execute(numbered_run_insert(columns), many)
            return answers
        except sa.exc.IntegrityError:
            # Another process wrote one of them meanwhile (nothing of this batch was): one
            # transaction each sorts out which.
            return [self.create_delivered_run(run, delivery) for run, delivery in items]
        except sa.exc.SQLAlchemyError as exc:
            raise to_store_error(exc, self.where, "record webhook deliveries") from exc

    # ------------------------------------------------------------ monitor snapshots

    def save_snapshots(self, items: Sequence[MonitorSnapshot]) -> None:
        if not items:
            return
        keys = [s.key for s in items]
        with self._write("save monitor snapshots") as connection:
            connection.execute(snapshots.delete().where(snapshots.c.key.in_(keys)))
            connection.execute(
                snapshots.insert(),
                [
                    {
                        "key": s.key,
                        "provider": s.provider,
                        "data": s.data_json,
                        "fetched_at": s.fetched_at,
                    }
                    for s in items
                ],
            )

    def load_snapshots(self) -> list[MonitorSnapshot]:
        with self._read("load monitor snapshots") as connection:
            rows = connection.execute(sa.select(snapshots).order_by(snapshots.c.key)).all()
        return [
            MonitorSnapshot(
                key=r.key, provider=r.provider, data_json=bytes(r.data), fetched_at=r.fetched_at
            )
            for r in rows
        ]

    def close(self) -> None:
        if self._runs_seen is not None:
            self._runs_seen.close()
        self._engine.dispose()
