"""MemoryRunStore: an in-memory RunStore (every concern protocol of store.base) for tests
of the engine, server and monitor.

Behaves like SqlRunStore (the conformance suite runs both): numbers from 1, every job
attempt kept, the latest attempt shown in first-insertion order, newest runs first, a job
or process group of an unknown run refused, a batch write all or nothing.
Not thread-safe beyond what the GIL gives; never used outside tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from conveyor.errors import StoreError
from conveyor.model import JobRecord, RunRecord, Status
from conveyor.store.base import BodySeen, HistoryRecord, LiveProcess, MonitorSnapshot

__all__ = ["MemoryRunStore"]


@dataclass
class _Run:
    record: RunRecord
    jobs: dict[tuple[str, int], JobRecord] = field(default_factory=dict)
    owner: tuple[int, int] | None = None
    cancel_requested: bool = False


class MemoryRunStore:
    local_reads = True

    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}
        self._processes: dict[tuple[str, int], LiveProcess] = {}
        self._deliveries: dict[str, str] = {}
        self._bodies: dict[str, list[tuple[datetime, str]]] = {}  # digest -> (at, run)
        self._snapshots: dict[str, MonitorSnapshot] = {}
        self._history: dict[str, dict[int, HistoryRecord]] = {}  # key -> pipeline id -> record
        self.closed = False

    def create_run(self, run: RunRecord) -> RunRecord:
        if run.run_id in self._runs:
            raise StoreError(f"memory: run {run.run_id} already exists (use a new run id)")
        number = max((r.record.number for r in self._runs.values()), default=0) + 1
        stored = replace(run, number=number, jobs=())
        self._runs[run.run_id] = _Run(stored)
        for job in run.jobs:
            self.save_job(run.run_id, job)
        return replace(run, number=number)

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
        run = self._runs.get(run_id)
        if run is None:
            return
        record = run.record
        run.record = replace(
            record,
            status=record.status if status is None else status,
            started_at=record.started_at if started_at is None else started_at,
            finished_at=record.finished_at if finished_at is None else finished_at,
            reason=record.reason if reason is None else reason,
            pipeline_name=record.pipeline_name if pipeline_name is None else pipeline_name,
        )

    def reopen_run(self, run_id: str, *, status: Status) -> None:
        run = self._runs.get(run_id)
        if run is not None:
            run.record = replace(run.record, status=status, finished_at=None, reason=None)

    def claim_run(self, run_id: str, *, owner_pid: int, owner_started_ticks: int) -> None:
        if run_id in self._runs:
            self._runs[run_id].owner = (owner_pid, owner_started_ticks)

    def save_job(self, run_id: str, job: JobRecord) -> None:
        self._require_run(run_id, f"save job {job.name!r} of run {run_id}")
        self._runs[run_id].jobs[(job.name, job.attempt)] = job

    def _require_run(self, run_id: str, action: str) -> None:
        if run_id not in self._runs:
            raise StoreError(
                f"memory: cannot {action}: run {run_id} does not exist (create it first)"
            )

    def get_run(self, run_id: str) -> RunRecord | None:
        run = self._runs.get(run_id)
        if run is None:
            return None
        latest: dict[str, JobRecord] = {}
        for (name, attempt), job in run.jobs.items():
            if name not in latest or attempt >= latest[name].attempt:
                latest[name] = job
        return replace(run.record, jobs=tuple(latest.values()))

    def job_attempts(self, run_id: str, job: str) -> list[JobRecord]:
        run = self._runs.get(run_id)
        if run is None:
            return []
        found = [j for (name, _), j in run.jobs.items() if name == job]
        return sorted(found, key=lambda j: j.attempt)

    def list_runs(
        self,
        *,
        repo: str | None = None,
        ref: str | None = None,
        status: Status | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[RunRecord]:
        found = [
            r.record
            for r in self._runs.values()
            if (repo is None or r.record.repo == repo)
            and (ref is None or r.record.ref == ref)
            and (status is None or r.record.status == status)
        ]
        found.sort(key=lambda r: r.number, reverse=True)
        return found[offset : offset + limit]

    def runs_with_status(self, statuses: Sequence[Status]) -> list[RunRecord]:
        found = [r.record for r in self._runs.values() if r.record.status in statuses]
        return sorted(found, key=lambda r: r.number)

    def orphaned_runs(self) -> list[tuple[str, int, int]]:
        return [
            (run_id, run.owner[0], run.owner[1])
            for run_id, run in sorted(self._runs.items(), key=lambda kv: kv[1].record.number)
            if run.record.status == Status.RUNNING and run.owner is not None
        ]

    def request_cancel(self, run_id: str) -> bool:
        run = self._runs.get(run_id)
        if run is None:
            return False
        run.cancel_requested = True
        return True

    def is_cancel_requested(self, run_id: str) -> bool:
        run = self._runs.get(run_id)
        return run is not None and run.cancel_requested

    def add_process(self, proc: LiveProcess) -> None:
        self._require_run(proc.run_id, f"record process group {proc.pgid} of run {proc.run_id}")
        self._processes[(proc.run_id, proc.pgid)] = proc

    def remove_process(self, run_id: str, pgid: int) -> None:
        self._processes.pop((run_id, pgid), None)

    def save_job_and_processes(
        self,
        run_id: str,
        job: JobRecord | None,
        *,
        add: LiveProcess | None = None,
        remove: Sequence[int] = (),
    ) -> None:
        if job is not None or add is not None:  # checked first: all or nothing
            what = f"save job {job.name!r}" if job is not None else "record process groups"
            self._require_run(run_id, f"{what} of run {run_id}")
        for pgid in remove:
            self.remove_process(run_id, pgid)
        if job is not None:
            self.save_job(run_id, job)
        if add is not None:
            self.add_process(add)

    def processes(self, run_id: str) -> list[LiveProcess]:
        return sorted(
            (p for (rid, _), p in self._processes.items() if rid == run_id),
            key=lambda p: p.pgid,
        )

    def claim_delivery(self, delivery_id: str, run_id: str) -> str | None:
        seen = self._deliveries.get(delivery_id)
        if seen is None:
            self._deliveries[delivery_id] = run_id
        return seen

    def create_delivered_run(
        self, run: RunRecord, delivery_id: str, *, body: BodySeen | None = None
    ) -> str | None:
        seen = self._deliveries.get(delivery_id)
        if seen is not None:
            return seen
        if body is not None:
            recent = [(at, r) for at, r in self._bodies.get(body.digest, []) if at >= body.since]
            if recent:
                return max(recent)[1]
        self.create_run(run)
        self._deliveries[delivery_id] = run.run_id
        if body is not None:
            self._bodies.setdefault(body.digest, []).append((run.created_at, run.run_id))
        return None

    def create_delivered_runs(
        self,
        items: Sequence[tuple[RunRecord, str]],
        *,
        bodies: Sequence[BodySeen | None] = (),
    ) -> list[str | None]:
        padded = [*bodies, *([None] * (len(items) - len(bodies)))]
        return [
            self.create_delivered_run(run, delivery, body=body)
            for (run, delivery), body in zip(items, padded, strict=True)
        ]

    def save_snapshots(self, snapshots: Sequence[MonitorSnapshot]) -> None:
        for snapshot in snapshots:
            self._snapshots[snapshot.key] = snapshot

    def load_snapshots(self) -> list[MonitorSnapshot]:
        return [self._snapshots[key] for key in sorted(self._snapshots)]

    def save_history(self, records: Sequence[HistoryRecord], *, keep: int) -> None:
        written: set[str] = set()
        for record in records:
            self._history.setdefault(record.key, {})[record.pipeline_id] = record
            written.add(record.key)
        for key in written:
            kept = sorted(self._history[key], reverse=True)[:keep]
            self._history[key] = {pid: self._history[key][pid] for pid in kept}

    def load_history(self) -> list[HistoryRecord]:
        return [
            self._history[key][pid]
            for key in sorted(self._history)
            for pid in sorted(self._history[key], reverse=True)
        ]

    def close(self) -> None:
        self.closed = True
