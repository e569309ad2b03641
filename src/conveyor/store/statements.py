"""Every SQL statement the run store runs, as SQLAlchemy Core constructs, each with a name.

This is the single definition: `store.enginedb` executes these objects (any database), and
`python -m conveyor.store.compile_sqlite` compiles them for SQLite into store/sqlite_sql.py
for the stdlib executor. The store's logic refers to statements only by name, so no method
builds SQL on the fly. Parameters: `v_<column>` for a value written, `key_<column>` for a
key matched (they never clash with an UPDATE's column values); optional filters are named
variants, `IN` lists are expanding parameters. Constants are literal SQL, never bound
values, so the compiled text needs nothing but the caller's parameters. Imports SQLAlchemy:
the embedded store must not import this module at run time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import sqlalchemy as sa

from conveyor.store.schema import (
    deliveries,
    delivery_bodies,
    jobs,
    monitor_history,
    processes,
    runs,
    snapshots,
)
from conveyor.store.sql import LIST_FILTERS, list_runs_statement

__all__ = ["RUN_COLUMNS", "STATEMENTS"]

# What a run read returns: everything but the owner (only `orphaned_runs` reads that).
RUN_COLUMNS = [c for c in runs.c if c.name not in ("owner_pid", "owner_started_ticks")]
# What `create_run` writes; `number` comes from the statement, the owner from `claim_run`.
_RUN_WRITTEN = [c.name for c in RUN_COLUMNS if c.name != "number"]
_JOB_WRITTEN = [c.name for c in jobs.c if c.name not in ("id", "run_id")]


def _values(table: sa.Table, columns: Iterable[str]) -> dict[str, sa.BindParameter[object]]:
    """`column = :v_column` for each column, typed by the column."""
    return {c: sa.bindparam(f"v_{c}", type_=table.c[c].type) for c in columns}


def _kept_unless_given(
    table: sa.Table, columns: Iterable[str]
) -> dict[str, sa.ColumnElement[object]]:
    """`column = coalesce(:v_column, column)`: a NULL parameter keeps the stored value."""
    return {
        c: sa.func.coalesce(sa.bindparam(f"v_{c}", type_=table.c[c].type), table.c[c])
        for c in columns
    }


def _key(column: sa.Column[object]) -> sa.ColumnElement[bool]:
    return column == sa.bindparam(f"key_{column.name}")


def _list_runs_variants() -> dict[str, sa.Executable]:
    """One `list_runs` statement per combination of its optional filters."""
    variants: dict[str, sa.Executable] = {}
    for chosen in itertools.product((False, True), repeat=len(LIST_FILTERS)):
        present = [name for name, on in zip(LIST_FILTERS, chosen, strict=True) if on]
        query = sa.select(*RUN_COLUMNS).where(*(_key(runs.c[name]) for name in present))
        variants[list_runs_statement(present)] = (
            query.order_by(runs.c.number.desc())
            .limit(sa.bindparam("key_limit"))
            .offset(sa.bindparam("key_offset"))
        )
    return variants


_NEXT_NUMBER = sa.select(
    sa.func.coalesce(sa.func.max(runs.c.number), sa.literal_column("0")) + sa.literal_column("1")
).scalar_subquery()
_RUN_KEY = _key(runs.c.run_id)
_JOB_KEY = _key(jobs.c.run_id) & _key(jobs.c.name) & _key(jobs.c.attempt)
_PROCESS_KEY = _key(processes.c.run_id) & _key(processes.c.pgid)
_HISTORY_WRITTEN = [c.name for c in monitor_history.c]
# The pipeline id just past the `key_offset` newest of one key (NULL when there are fewer):
# that one and every older one are trimmed.
_HISTORY_CUT = (
    sa.select(monitor_history.c.pipeline_id)
    .where(_key(monitor_history.c.key))
    .order_by(monitor_history.c.pipeline_id.desc())
    .limit(sa.literal_column("1"))
    .offset(sa.bindparam("key_offset"))
    .scalar_subquery()
)

STATEMENTS: dict[str, sa.Executable] = {
    # -- runs
    "run_insert": runs.insert().from_select(
        [*_RUN_WRITTEN, "number"],
        sa.select(*_values(runs, _RUN_WRITTEN).values(), _NEXT_NUMBER),
    ),
    "run_number": sa.select(runs.c.number).where(_RUN_KEY),
    "run_update": runs.update()
    .where(_RUN_KEY)
    .values(
        _kept_unless_given(runs, ("status", "started_at", "finished_at", "reason", "pipeline_name"))
    ),
    # A resumed run: finished time and reason cleared (a NULL parameter of run_update keeps).
    "run_reopen": runs.update()
    .where(_RUN_KEY)
    .values({**_values(runs, ("status",)), "finished_at": sa.null(), "reason": sa.null()}),
    "run_claim": runs.update()
    .where(_RUN_KEY)
    .values(_values(runs, ("owner_pid", "owner_started_ticks"))),
    "run_cancel": runs.update().where(_RUN_KEY).values(cancel_requested=sa.true()),
    "run_cancel_requested": sa.select(runs.c.cancel_requested).where(_RUN_KEY),
    "run_select": sa.select(*RUN_COLUMNS).where(_RUN_KEY),
    "runs_with_status": sa.select(*RUN_COLUMNS)
    .where(runs.c.status.in_(sa.bindparam("key_statuses", expanding=True)))
    .order_by(runs.c.number),
    "runs_orphaned": sa.select(runs.c.run_id, runs.c.owner_pid, runs.c.owner_started_ticks)
    .where(_key(runs.c.status) & runs.c.owner_pid.is_not(None))
    .order_by(runs.c.number),
    **_list_runs_variants(),
    # -- jobs: one row per attempt, `id` keeps insertion order
    "job_insert": jobs.insert().values(_values(jobs, ["run_id", *_JOB_WRITTEN])),
    "job_update": jobs.update().where(_JOB_KEY).values(_values(jobs, _JOB_WRITTEN)),
    "run_jobs": sa.select(jobs).where(_key(jobs.c.run_id)).order_by(jobs.c.id),
    "job_attempts": sa.select(jobs)
    .where(_key(jobs.c.run_id) & _key(jobs.c.name))
    .order_by(jobs.c.attempt, jobs.c.id),
    # -- process groups of running jobs
    "process_insert": processes.insert().values(
        _values(processes, ("run_id", "pgid", "job", "started_ticks"))
    ),
    "process_delete": processes.delete().where(_PROCESS_KEY),
    "run_processes": sa.select(processes)
    .where(_key(processes.c.run_id))
    .order_by(processes.c.pgid),
    # -- webhook deliveries
    "delivery_insert": deliveries.insert().values(_values(deliveries, ("delivery_id", "run_id"))),
    "delivery_run": sa.select(deliveries.c.run_id).where(_key(deliveries.c.delivery_id)),
    "delivery_runs": sa.select(deliveries.c.delivery_id, deliveries.c.run_id).where(
        deliveries.c.delivery_id.in_(sa.bindparam("key_delivery_ids", expanding=True))
    ),
    "delivery_body_insert": delivery_bodies.insert().values(
        _values(delivery_bodies, ("body_digest", "run_id", "received_at"))
    ),
    "delivery_body_runs": sa.select(
        delivery_bodies.c.body_digest, delivery_bodies.c.run_id, delivery_bodies.c.received_at
    ).where(
        delivery_bodies.c.body_digest.in_(sa.bindparam("key_body_digests", expanding=True)),
        delivery_bodies.c.received_at
        >= sa.bindparam("key_since", type_=delivery_bodies.c.received_at.type),
    ),
    # -- monitor snapshots
    "snapshot_insert": snapshots.insert().values(
        _values(snapshots, ("key", "provider", "data", "fetched_at"))
    ),
    "snapshots_delete": snapshots.delete().where(
        snapshots.c.key.in_(sa.bindparam("key_keys", expanding=True))
    ),
    "snapshots_all": sa.select(snapshots).order_by(snapshots.c.key),
    # -- monitor history
    "history_insert": monitor_history.insert().values(_values(monitor_history, _HISTORY_WRITTEN)),
    "history_delete": monitor_history.delete().where(
        _key(monitor_history.c.key) & _key(monitor_history.c.pipeline_id)
    ),
    "history_trim": monitor_history.delete().where(
        _key(monitor_history.c.key) & (monitor_history.c.pipeline_id <= _HISTORY_CUT)
    ),
    "history_all": sa.select(monitor_history).order_by(
        monitor_history.c.key, monitor_history.c.pipeline_id.desc()
    ),
}
