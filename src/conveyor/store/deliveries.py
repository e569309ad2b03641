"""Webhook deliveries in the SQL run store: de-duplication that survives restarts, and the
webhook intake's writes (a delivery and its numbered run in one transaction).

The delivery's primary key is the de-duplication: a redelivery fails the delivery insert
(IntegrityConflict) and nothing of that transaction is written; the caller is then told
which run the delivery made. Written against `store.executor.Database` (SqlRunStore's
methods call these). Must not import SQLAlchemy or touch runs beyond creating them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conveyor.model import RunRecord
from conveyor.store.executor import Database, IntegrityConflict
from conveyor.store.rows import run_params
from conveyor.store.writes import (
    NUMBER_ATTEMPTS,
    duplicate_run,
    insert_run,
    numbering_exhausted,
    run_exists,
)

__all__ = ["claim_delivery", "create_delivered_run", "create_delivered_runs"]


def _seen_run(db: Database, delivery_id: str) -> str | None:
    with db.read("read a webhook delivery") as tx:
        rows = tx.execute("delivery_run", {"key_delivery_id": delivery_id})
    return str(rows[0]["run_id"]) if rows else None


def claim_delivery(db: Database, delivery_id: str, run_id: str) -> str | None:
    """Record delivery -> run; the run id recorded before if the delivery was seen."""
    try:
        with db.write("record a webhook delivery") as tx:
            rows = tx.execute("delivery_run", {"key_delivery_id": delivery_id})
            if rows:
                return str(rows[0]["run_id"])
            tx.execute("delivery_insert", {"v_delivery_id": delivery_id, "v_run_id": run_id})
    except IntegrityConflict:  # another writer recorded it between the read and the insert
        seen = _seen_run(db, delivery_id)
        if seen is None:
            raise
        return seen
    return None


def create_delivered_run(db: Database, run: RunRecord, delivery_id: str) -> str | None:
    """The webhook intake's one transaction: the delivery row and the numbered run (and its
    first job records); the earlier run's id if the delivery was seen before."""
    for _ in range(NUMBER_ATTEMPTS):
        try:
            with db.write("record a webhook delivery", is_numbering=True) as tx:
                # No prior SELECT: redeliveries are rare, the insert's key catches them.
                tx.execute(
                    "delivery_insert", {"v_delivery_id": delivery_id, "v_run_id": run.run_id}
                )
                insert_run(tx, run)
        except IntegrityConflict as exc:
            # A redelivery, or another writer (PostgreSQL; SQLite serialises writers) took
            # the run id or the run number first; nothing of this call was written.
            seen = _seen_run(db, delivery_id)
            if seen is not None:
                return seen
            if run_exists(db, run.run_id):
                raise duplicate_run(db.where, run.run_id) from exc
            continue
        return None
    raise numbering_exhausted(db.where)


def create_delivered_runs(db: Database, items: Sequence[tuple[RunRecord, str]]) -> list[str | None]:
    """`create_delivered_run` for several (run, delivery) pairs in one transaction (the
    intake's group commit): one delivery lookup, then the new deliveries and runs. A
    delivery repeated within `items` answers its first run."""
    if len(items) <= 1 or any(run.jobs for run, _ in items):
        return [create_delivered_run(db, run, delivery) for run, delivery in items]
    try:
        with db.write("record webhook deliveries", is_numbering=True) as tx:
            known = sorted({d for _, d in items})
            rows = tx.execute("delivery_runs", {"key_delivery_ids": known})
            seen: dict[str, str] = {str(r["delivery_id"]): str(r["run_id"]) for r in rows}
            answers: list[str | None] = []
            new_deliveries: list[dict[str, Any]] = []
            new_runs: list[dict[str, Any]] = []
            for run, delivery in items:
                answers.append(seen.get(delivery))
                if delivery in seen:
                    continue
                seen[delivery] = run.run_id
                new_deliveries.append({"v_delivery_id": delivery, "v_run_id": run.run_id})
                new_runs.append(run_params(run))
            if new_deliveries:
                tx.execute_many("delivery_insert", new_deliveries)
                tx.execute_many("run_insert", new_runs)  # numbered in order, one by one
        return answers
    except IntegrityConflict:
        # Another process wrote one of them meanwhile (nothing of this batch was): one
        # transaction each sorts out which.
        return [create_delivered_run(db, run, delivery) for run, delivery in items]
