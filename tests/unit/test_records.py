from datetime import UTC, datetime, timedelta, timezone

import pytest

from conveyor.model import EventKind, JobRecord, LogRecord, RunRecord, Status, StepRecord, Stream
from conveyor.records import (
    format_ts,
    job_to_dict,
    log_from_dict,
    log_to_dict,
    parse_ts,
    run_to_dict,
)

T0 = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)


def test_format_ts_is_rfc3339_utc_with_milliseconds() -> None:
    assert format_ts(T0) == "2026-11-23T12:00:00.123Z"


def test_format_ts_converts_other_zones_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_ts(datetime(2026, 11, 23, 13, 0, tzinfo=paris)) == "2026-11-23T12:00:00.000Z"


def test_format_ts_none_is_none() -> None:
    assert format_ts(None) is None


def test_format_ts_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_ts(datetime(2026, 1, 1))  # noqa: DTZ001 - the naive value is the point


def test_parse_ts_round_trips() -> None:
    assert parse_ts(format_ts(T0)) == T0.replace(microsecond=123000)
    assert parse_ts(None) is None


def test_run_to_dict_has_every_contract_field() -> None:
    step = StepRecord("build", Status.SUCCESS, 0, T0, T0 + timedelta(seconds=1))
    job = JobRecord(
        name="test [PY=3.12]",
        stage="test",
        status=Status.SUCCESS,
        attempt=2,
        exit_code=0,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=2.5),
        needs=("build",),
        steps=(step,),
    )
    run = RunRecord(
        run_id="r1",
        repo="acme/app",
        ref="main",
        sha="a" * 40,
        event=EventKind.PUSH,
        status=Status.SUCCESS,
        created_at=T0,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=3),
        jobs=(job,),
    )
    data = run_to_dict(run)
    contract = {
        "run_id",
        "repo",
        "ref",
        "sha",
        "event",
        "status",
        "created_at",
        "started_at",
        "finished_at",
        "duration_s",
        "jobs",
    }
    assert contract <= set(data)
    assert data["duration_s"] == 3.0
    job_data = data["jobs"][0]
    assert set(job_data) == {
        "name",
        "stage",
        "status",
        "allow_failure",
        "attempt",
        "exit_code",
        "started_at",
        "finished_at",
        "duration_s",
        "needs",
        "reason",
        "steps",
        "worker",
    }
    assert job_data["duration_s"] == 2.5
    assert job_data["steps"][0] == {
        "name": "build",
        "status": "success",
        "exit_code": 0,
        "started_at": "2026-11-23T12:00:00.123Z",
        "finished_at": "2026-11-23T12:00:01.123Z",
    }


def test_unfinished_job_has_no_duration() -> None:
    job = JobRecord(name="a", stage="s", status=Status.RUNNING, started_at=T0)
    assert job_to_dict(job)["duration_s"] is None


def test_log_record_round_trips() -> None:
    record = LogRecord(T0.replace(microsecond=0), "r1", "job", "step", Stream.STDERR, 7, "hi")
    data = log_to_dict(record)
    assert list(data) == ["ts", "run_id", "job", "step", "stream", "n", "text"]
    assert log_from_dict(data) == record


def test_log_from_dict_requires_ts() -> None:
    with pytest.raises(ValueError, match="ts"):
        log_from_dict(
            {
                "ts": None,
                "run_id": "r",
                "job": "j",
                "step": "s",
                "stream": "stdout",
                "n": 1,
                "text": "",
            }
        )
