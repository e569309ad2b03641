"""The run store's prebuilt SQL statements and the small writes several methods share.

Building a SQLAlchemy statement costs more than running it on SQLite, so the statements of
the hot paths (the engine's per-job writes, the webhook intake, `get_run`) are built once
here. Key parameters are prefixed (`key_…`) so they never clash with the column values of an
UPDATE. Pure SQL construction plus two helpers that take a connection; no transactions.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from conveyor.model import JobRecord
from conveyor.store.base import LiveProcess
from conveyor.store.rows import job_values
from conveyor.store.schema import deliveries, jobs, processes, runs

__all__ = [
    "DELIVERIES_SELECT",
    "DELIVERY_INSERT",
    "DELIVERY_SELECT",
    "JOB_INSERT",
    "PROCESS_DELETE",
    "RUN_COLUMNS",
    "RUN_JOBS_SELECT",
    "RUN_SELECT",
    "numbered_run_insert",
    "write_job",
    "write_process",
]

RUN_COLUMNS = [c for c in runs.c if c.name not in ("owner_pid", "owner_started_ticks")]

# The engine's hot path (a few statements per job).
_JOB_UPDATE = jobs.update().where(
    (jobs.c.run_id == sa.bindparam("key_run_id"))
    & (jobs.c.name == sa.bindparam("key_name"))
    & (jobs.c.attempt == sa.bindparam("key_attempt"))
)
JOB_INSERT = jobs.insert()
_PROCESS_KEY = (processes.c.run_id == sa.bindparam("key_run_id")) & (
    processes.c.pgid == sa.bindparam("key_pgid")
)
PROCESS_DELETE = processes.delete().where(_PROCESS_KEY)
_PROCESS_INSERT = processes.insert()
# The webhook intake's statements (`create_delivered_run`), also built once.
DELIVERY_SELECT = sa.select(deliveries.c.run_id).where(
    deliveries.c.delivery_id == sa.bindparam("key_delivery_id")
)
DELIVERY_INSERT = deliveries.insert()
DELIVERIES_SELECT = sa.select(deliveries.c.delivery_id, deliveries.c.run_id).where(
    deliveries.c.delivery_id.in_(sa.bindparam("key_ids", expanding=True))
)
# `get_run`, the runs API's hottest read, also built once.
RUN_SELECT = sa.select(*RUN_COLUMNS).where(runs.c.run_id == sa.bindparam("key_run_id"))
RUN_JOBS_SELECT = (
    sa.select(jobs).where(jobs.c.run_id == sa.bindparam("key_run_id")).order_by(jobs.c.id)
)
_NEXT_NUMBER = sa.select(sa.func.coalesce(sa.func.max(runs.c.number), 0) + 1).scalar_subquery()


@functools.cache
def numbered_run_insert(columns: tuple[str, ...]) -> sa.Insert:
    """INSERT … SELECT of a run's values (bound as `v_<column>`) and the next run number."""
    values = (sa.bindparam(f"v_{c}", type_=runs.c[c].type) for c in columns)
    return runs.insert().from_select([*columns, "number"], sa.select(*values, _NEXT_NUMBER))


def write_job(connection: Connection, run_id: str, job: JobRecord) -> None:
    values = job_values(job)
    key = {"key_run_id": run_id, "key_name": job.name, "key_attempt": job.attempt}
    updated = connection.execute(_JOB_UPDATE, {**values, **key})
    if updated.rowcount == 0:
        connection.execute(JOB_INSERT, {"run_id": run_id, **values})


def write_process(connection: Connection, proc: LiveProcess) -> None:
    connection.execute(PROCESS_DELETE, {"key_run_id": proc.run_id, "key_pgid": proc.pgid})
    connection.execute(
        _PROCESS_INSERT,
        {
            "run_id": proc.run_id,
            "pgid": proc.pgid,
            "job": proc.job,
            "started_ticks": proc.started_ticks,
        },
    )
