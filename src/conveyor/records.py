"""Run, job, step and log records as the JSON shapes of DESIGN.md's contracts.

The one place that decides field names and time format (RFC 3339 UTC, `Z` suffix, millisecond
precision) for `conveyor show --json`, `GET /api/v1/runs/{id}` and the JSONL log files.
Pure: no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from conveyor.model import JobRecord, LogRecord, RunRecord, StepRecord, Stream

__all__ = [
    "format_ts",
    "job_to_dict",
    "log_from_dict",
    "log_to_dict",
    "parse_ts",
    "run_to_dict",
    "step_to_dict",
]


def format_ts(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a `Z` suffix, e.g. 2026-11-23T12:48:01.123Z."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime: conveyor only handles aware UTC datetimes")
    u = value.astimezone(UTC)
    # Fields rather than strftime: half the time, and the monitor formats thousands a tick.
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}Z"
    )


def parse_ts(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def step_to_dict(step: StepRecord) -> dict[str, Any]:
    return {
        "name": step.name,
        "status": str(step.status),
        "exit_code": step.exit_code,
        "started_at": format_ts(step.started_at),
        "finished_at": format_ts(step.finished_at),
    }


def job_to_dict(job: JobRecord) -> dict[str, Any]:
    return {
        "name": job.name,
        "stage": job.stage,
        "status": str(job.status),
        "allow_failure": job.allow_failure,
        "attempt": job.attempt,
        "exit_code": job.exit_code,
        "started_at": format_ts(job.started_at),
        "finished_at": format_ts(job.finished_at),
        "duration_s": job.duration_s,
        "needs": list(job.needs),
        "reason": job.reason,
        "worker": job.worker,
        "steps": [step_to_dict(s) for s in job.steps],
    }


def run_to_dict(run: RunRecord) -> dict[str, Any]:
    """The run record of DESIGN.md (plus `reason` and `number`, which the contract allows
    as additions)."""
    return {
        "run_id": run.run_id,
        "number": run.number,
        "pipeline": run.pipeline_name,
        "repo": run.repo,
        "ref": run.ref,
        "sha": run.sha,
        "event": str(run.event),
        "status": str(run.status),
        "reason": run.reason,
        "created_at": format_ts(run.created_at),
        "started_at": format_ts(run.started_at),
        "finished_at": format_ts(run.finished_at),
        "duration_s": run.duration_s,
        "jobs": [job_to_dict(j) for j in run.jobs],
    }


def log_to_dict(record: LogRecord) -> dict[str, Any]:
    return {
        "ts": format_ts(record.ts),
        "run_id": record.run_id,
        "job": record.job,
        "step": record.step,
        "stream": str(record.stream),
        "n": record.n,
        "text": record.text,
    }


def log_from_dict(data: dict[str, Any]) -> LogRecord:
    ts = parse_ts(data["ts"])
    if ts is None:
        raise ValueError("log record without ts")
    return LogRecord(
        ts=ts,
        run_id=data["run_id"],
        job=data["job"],
        step=data["step"],
        stream=Stream(data["stream"]),
        n=int(data["n"]),
        text=data["text"],
    )
