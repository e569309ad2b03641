"""Conversions between run-store rows and the model's records (RunRecord, JobRecord).

JSON columns (trigger, needs, steps) are encoded with orjson; step times inside the steps
JSON are ISO 8601 in UTC. Pure: no queries (sql.py runs them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.engine import RowMapping

from conveyor.model import EventKind, JobRecord, RunRecord, Status, StepRecord

__all__ = ["job_from_row", "job_values", "run_from_row", "run_values"]


def run_values(run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "number": run.number,
        "pipeline_name": run.pipeline_name,
        "repo": run.repo,
        "ref": run.ref,
        "sha": run.sha,
        "event": str(run.event),
        "status": str(run.status),
        "reason": run.reason,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "trigger_json": orjson.dumps(dict(run.trigger)).decode(),
        "cancel_requested": False,
    }


def run_from_row(row: RowMapping, job_records: tuple[JobRecord, ...]) -> RunRecord:
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


def job_values(job: JobRecord) -> dict[str, Any]:
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
        "name": job.name,
        "attempt": job.attempt,
        "stage": job.stage,
        "status": str(job.status),
        "allow_failure": job.allow_failure,
        "exit_code": job.exit_code,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "needs_json": orjson.dumps(list(job.needs)).decode(),
        "reason": job.reason,
        "steps_json": orjson.dumps(steps).decode(),
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def job_from_row(row: RowMapping) -> JobRecord:
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
    )
