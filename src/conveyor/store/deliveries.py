"""Webhook deliveries in the SQL run store: de-duplication that survives restarts, and the
webhook intake's writes (a delivery and its numbered run in one transaction).

The delivery's primary key is the de-duplication: a redelivery fails the delivery insert
(IntegrityConflict) and nothing of that transaction is written; the caller is then told
which run the delivery made. A delivery's body (`BodySeen`) is looked up first, in the same
transaction: a run made by the same body at or after `since` answers, whatever the
delivery id (a replayed signed body starts nothing); a new run records its body. Two
writers on PostgreSQL may both miss a body the other is writing at that instant (the body
table is keyed by body and run, so a window can restart); the delivery id still holds.
Written against `store.executor.Database` (SqlRunStore's methods call these). Must not
import SQLAlchemy or touch runs beyond creating them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conveyor.model import RunRecord
from conveyor.store.base import BodySeen
from conveyor.store.executor import Database, IntegrityConflict, Tx
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


def _body_runs(tx: Tx, bodies: Sequence[BodySeen]) -> dict[str, list[tuple[Any, str]]]:
    """Digest -> (received_at, run id) of the runs these bodies made since the oldest
    `since` among them (callers compare each body's own `since`)."""
    if not bodies:
        return {}
    rows = tx.execute(
        "delivery_body_runs",
        {
            "key_body_digests": sorted({b.digest for b in bodies}),
            "key_since": min(b.since for b in bodies),
        },
    )
    found: dict[str, list[tuple[Any, str]]] = {}
    for row in rows:
        found.setdefault(str(row["body_digest"]), []).append(
            (row["received_at"], str(row["run_id"]))
        )
    return found


def _seen_body(body: BodySeen | None, found: Mapping[str, list[tuple[Any, str]]]) -> str | None:
    """The newest run `body` made at or after its `since`, else None."""
    if body is None:
        return None
    recent = [(at, run_id) for at, run_id in found.get(body.digest, ()) if at >= body.since]
    return max(recent)[1] if recent else None


def _body_params(run: RunRecord, body: BodySeen) -> dict[str, Any]:
    return {"v_body_digest": body.digest, "v_run_id": run.run_id, "v_received_at": run.created_at}


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


def create_delivered_run(
    db: Database, run: RunRecord, delivery_id: str, body: BodySeen | None = None
) -> str | None:
    """The webhook intake's one transaction: the delivery row, the numbered run (and its
    first job records) and the body; the earlier run's id if the delivery or its body was
    seen before."""
    for _ in range(NUMBER_ATTEMPTS):
        try:
            with db.write("record a webhook delivery", is_numbering=True) as tx:
                seen_body = _seen_body(body, _body_runs(tx, [body] if body else []))
                if seen_body is not None:
                    return seen_body
                # No SELECT of the id: redeliveries are rare, the insert's key catches them.
                tx.execute(
                    "delivery_insert", {"v_delivery_id": delivery_id, "v_run_id": run.run_id}
                )
                insert_run(tx, run)
                if body is not None:
                    tx.execute("delivery_body_insert", _body_params(run, body))
        except IntegrityConflict as exc:
            # A redelivery, or another writer (PostgreSQL; SQLite serialises writers) took
            # the run id, the run number or the body first; nothing of this call was written.
            seen = _seen_run(db, delivery_id)
            if seen is not None:
                return seen
            if run_exists(db, run.run_id):
                raise duplicate_run(db.where, run.run_id) from exc
            continue
        return None
    raise numbering_exhausted(db.where)


def create_delivered_runs(
    db: Database,
    items: Sequence[tuple[RunRecord, str]],
    bodies: Sequence[BodySeen | None] = (),
) -> list[str | None]:
    """`create_delivered_run` for several (run, delivery) pairs, each with the body of the
    same position in `bodies` (none when shorter), in one transaction (the intake's group
    commit): one delivery and one body lookup, then the new deliveries, runs and bodies. A
    delivery or body repeated within `items` answers its first run."""
    padded = [*bodies, *([None] * (len(items) - len(bodies)))]
    if len(items) <= 1 or any(run.jobs for run, _ in items):
        return [
            create_delivered_run(db, run, delivery, body)
            for (run, delivery), body in zip(items, padded, strict=True)
        ]
    try:
        with db.write("record webhook deliveries", is_numbering=True) as tx:
            return _write_batch(tx, items, padded)
    except IntegrityConflict:
        # Another process wrote one of them meanwhile (nothing of this batch was): one
        # transaction each sorts out which.
        return [
            create_delivered_run(db, run, delivery, body)
            for (run, delivery), body in zip(items, padded, strict=True)
        ]


def _write_batch(
    tx: Tx, items: Sequence[tuple[RunRecord, str]], bodies: Sequence[BodySeen | None]
) -> list[str | None]:
    known = sorted({d for _, d in items})
    rows = tx.execute("delivery_runs", {"key_delivery_ids": known})
    seen: dict[str, str] = {str(r["delivery_id"]): str(r["run_id"]) for r in rows}
    seen_bodies = _body_runs(tx, [b for b in bodies if b is not None])
    answers: list[str | None] = []
    new_deliveries: list[dict[str, Any]] = []
    new_runs: list[dict[str, Any]] = []
    new_bodies: list[dict[str, Any]] = []
    for (run, delivery), body in zip(items, bodies, strict=True):
        answer = seen.get(delivery) or _seen_body(body, seen_bodies)
        answers.append(answer)
        if answer is not None:
            continue
        seen[delivery] = run.run_id
        new_deliveries.append({"v_delivery_id": delivery, "v_run_id": run.run_id})
        new_runs.append(run_params(run))
        if body is not None:
            seen_bodies.setdefault(body.digest, []).append((run.created_at, run.run_id))
            new_bodies.append(_body_params(run, body))
    if new_deliveries:
        tx.execute_many("delivery_insert", new_deliveries)
        tx.execute_many("run_insert", new_runs)  # numbered in order, one by one
    if new_bodies:
        tx.execute_many("delivery_body_insert", new_bodies)
    return answers
