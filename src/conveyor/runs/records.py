"""The writes of a run's record that every caller of the run chain shares: the pending
record of a new run, the claim (which process owns a running run, for crash recovery),
dead runs recovered, and closing a run that ends without its engine finishing it.

Must not: plan or execute. Time comes from the `Clock` given (conveyor.clock).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from conveyor.clock import Clock
from conveyor.model import Event, Plan, RunRecord, Status

if TYPE_CHECKING:
    from conveyor.store.base import RunStore

__all__ = [
    "cancel_open_jobs",
    "claim_run",
    "close_run",
    "new_run_record",
    "recover_dead_runs",
]


def new_run_record(
    event: Event,
    run_id: str,
    *,
    clock: Clock,
    trigger: Mapping[str, object],
    plan: Plan | None = None,
    secrets: Mapping[str, str] | None = None,
) -> RunRecord:
    """A `pending` run for `event`; its trigger keeps the event (secret values masked,
    conveyor.triggers) and `trigger`'s extra keys. With `plan`, its jobs are stored
    `pending` at once (`conveyor run`); the server's runs get theirs when planned."""
    from conveyor.engine.execution import pending_record
    from conveyor.triggers import event_to_trigger, hide_secret_variables

    stored = hide_secret_variables(event_to_trigger(event), secrets or {})
    return RunRecord(
        run_id=run_id,
        repo=event.repo,
        ref=event.ref,
        sha=event.sha,
        event=event.kind,
        status=Status.PENDING,
        created_at=clock.now(),
        pipeline_name=plan.pipeline.name if plan is not None else "",
        trigger={**stored, **trigger},
        jobs=tuple(pending_record(p) for p in plan.jobs) if plan is not None else (),
    )


def claim_run(store: RunStore, run_id: str) -> None:
    """Record this process as the run's owner: if it dies, the next conveyor start closes
    the run (`recover_dead_runs`) and stops its leftover process groups."""
    from conveyor.engine.recovery import process_start_ticks

    pid = os.getpid()
    store.claim_run(run_id, owner_pid=pid, owner_started_ticks=process_start_ticks(pid) or 0)


def recover_dead_runs(store: RunStore, clock: Clock) -> Sequence[str]:
    """Close the runs whose conveyor process died (engine.recovery); their ids."""
    from conveyor.engine.recovery import recover_orphans

    return recover_orphans(store, now=clock.now())


def cancel_open_jobs(store: RunStore, run_id: str, reason: str, clock: Clock) -> None:
    """Close the run's job records that are not final (`pending`: a play request, or
    `running`) as `canceled` with `reason`: the run ends without its engine finishing them."""
    current = store.get_run(run_id)
    now = clock.now()
    for job in current.jobs if current is not None else ():
        if not job.status.is_final:
            store.save_job(
                run_id, replace(job, status=Status.CANCELED, reason=reason, finished_at=now)
            )


def close_run(
    store: RunStore,
    run: RunRecord,
    status: Status,
    reason: str,
    clock: Clock,
    *,
    job_reason: str,
    started_at: datetime | None = None,
) -> RunRecord:
    """End `run` as `status` with `reason` without its engine (it failed before its jobs
    started, was canceled while waiting, or the server shut down); its open jobs end
    `canceled` with `job_reason`. `started_at`: when it was picked up, if it was. Returns
    the run as stored."""
    cancel_open_jobs(store, run.run_id, job_reason, clock)
    finished_at = clock.now()
    if started_at is None:
        store.update_run(run.run_id, status=status, finished_at=finished_at, reason=reason)
    else:
        store.update_run(
            run.run_id, status=status, started_at=started_at, finished_at=finished_at, reason=reason
        )
    started_at = started_at or run.started_at
    jobs = (store.get_run(run.run_id) or run).jobs
    return replace(
        run, status=status, started_at=started_at, finished_at=finished_at, reason=reason, jobs=jobs
    )
