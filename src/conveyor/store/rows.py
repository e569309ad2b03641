"""Conversions between run-store rows and the model's records (runs, jobs, process groups,
monitor snapshots and history), and the statement parameters each write takes (`v_<column>`, see
store/statements.py).

JSON columns (trigger, needs, steps) are encoded with orjson; step times inside the steps
JSON are ISO 8601 in UTC. Column values stay Python values (aware datetimes, bools, bytes):
the executor converts them for its driver. Pure: no queries (sql.py runs them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from conveyor.model import EventKind, JobRecord, RunRecord, Status, StepRecord
from conveyor.store.base import HistoryRecord, LiveProcess, MonitorSnapshot
from conveyor.store.executor import Row

__all__ = [
    "history_from_row",
    "history_params",
    "job_from_row",
    "job_params",
    "process_from_row",
    "process_params",
    "run_from_row",
    "run_params",
    "snapshot_from_row",
    "snapshot_params",
]


def run_params(run: RunRecord) -> dict[str, Any]:
    """The parameters of `run_insert` (the number is assigned by the statement)."""
    return {
        "v_run_id": run.run_id,
        "v_pipeline_name": run.pipeline_name,
        "v_repo": run.repo,
        "v_ref": run.ref,
        "v_sha": run.sha,
        "v_event": str(run.event),
        "v_status": str(run.status),
        "v_reason": run.reason,
        "v_created_at": run.created_at,
        "v_started_at": run.started_at,
        "v_finished_at": run.finished_at,
        "v_trigger_json": orjson.dumps(dict(run.trigger)).decode(),
        "v_cancel_requested": False,
    }


def run_from_row(row: Row, job_records: tuple[JobRecord, ...]) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"],
        repo=row["repo"],
        ref=row["ref"],
        sha=row["sha"],
        event=EventKind(row["event"]),
        status=Status(row["status"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        reason=row["reason"],
        number=row["number"],
        pipeline_name=row["pipeline_name"],
        jobs=job_records,
        trigger=orjson.loads(row["trigger_json"]),
    )


def job_params(job: JobRecord) -> dict[str, Any]:
    """The values of `job_update` (add its `key_…`) and `job_insert` (add `v_run_id`)."""
    steps = [
        {
            "name": s.name,
            "status": str(s.status),
            "exit_code": s.exit_code,
            "started_at": _iso(s.started_at),
            "finished_at": _iso(s.finished_at),
        }
        for s in job.steps
    ]
    return {
        "v_name": job.name,
        "v_attempt": job.attempt,
        "v_stage": job.stage,
        "v_status": str(job.status),
        "v_allow_failure": job.allow_failure,
        "v_exit_code": job.exit_code,
        "v_started_at": job.started_at,
        "v_finished_at": job.finished_at,
        "v_needs_json": orjson.dumps(list(job.needs)).decode(),
        "v_reason": job.reason,
        "v_steps_json": orjson.dumps(steps).decode(),
        "v_worker": job.worker,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def job_from_row(row: Row) -> JobRecord:
    steps = tuple(
        StepRecord(
            name=s["name"],
            status=Status(s["status"]),
            exit_code=s["exit_code"],
            started_at=_moment(s["started_at"]),
            finished_at=_moment(s["finished_at"]),
        )
        for s in orjson.loads(row["steps_json"])
    )
    return JobRecord(
        name=row["name"],
        stage=row["stage"],
        status=Status(row["status"]),
        allow_failure=bool(row["allow_failure"]),
        attempt=row["attempt"],
        exit_code=row["exit_code"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        needs=tuple(orjson.loads(row["needs_json"])),
        reason=row["reason"],
        steps=steps,
        worker=row["worker"],
    )


def process_params(proc: LiveProcess) -> dict[str, Any]:
    return {
        "v_run_id": proc.run_id,
        "v_pgid": proc.pgid,
        "v_job": proc.job,
        "v_started_ticks": proc.started_ticks,
    }


def process_from_row(row: Row) -> LiveProcess:
    return LiveProcess(
        run_id=row["run_id"], job=row["job"], pgid=row["pgid"], started_ticks=row["started_ticks"]
    )


def snapshot_params(snapshot: MonitorSnapshot) -> dict[str, Any]:
    return {
        "v_key": snapshot.key,
        "v_provider": snapshot.provider,
        "v_data": snapshot.data_json,
        "v_fetched_at": snapshot.fetched_at,
    }


def snapshot_from_row(row: Row) -> MonitorSnapshot:
    return MonitorSnapshot(
        key=row["key"],
        provider=row["provider"],
        data_json=bytes(row["data"]),
        fetched_at=row["fetched_at"],
    )


def history_params(record: HistoryRecord) -> dict[str, Any]:
    return {
        "v_key": record.key,
        "v_pipeline_id": record.pipeline_id,
        "v_provider": record.provider,
        "v_status": str(record.status),
        "v_sha": record.sha,
        "v_web_url": record.web_url,
        "v_created_at": record.created_at,
        "v_started_at": record.started_at,
        "v_finished_at": record.finished_at,
    }


def history_from_row(row: Row) -> HistoryRecord:
    return HistoryRecord(
        key=str(row["key"]),
        provider=str(row["provider"]),
        pipeline_id=int(row["pipeline_id"]),
        status=Status(row["status"]),
        sha=row["sha"],
        web_url=str(row["web_url"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )
