"""`server.runs.FinishedRuns`: which run records' bytes the runs API may keep."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.model import EventKind, RunRecord, Status
from conveyor.server.runs import FinishedRuns

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def make_run(run_id: str, status: Status, ended_ago_s: float | None) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        repo="acme/app",
        ref="main",
        sha="a" * 40,
        event=EventKind.PUSH,
        status=status,
        created_at=NOW - timedelta(minutes=5),
        finished_at=None if ended_ago_s is None else NOW - timedelta(seconds=ended_ago_s),
    )


def test_finished_runs_keeps_a_run_that_ended_a_while_ago() -> None:
    cache = FinishedRuns()
    cache.offer(make_run("r1", Status.SUCCESS, 10), b"r1", NOW)
    assert cache.get("r1") == b"r1"


@pytest.mark.parametrize(
    ("status", "ended_ago_s"),
    [
        (Status.RUNNING, None),
        (Status.PENDING, None),
        (Status.MANUAL, 60),
        (Status.FAILED, 0.5),  # ended too recently: a late job record may still land
        (Status.CANCELED, None),
    ],
)
def test_finished_runs_refuses_runs_that_may_still_change(
    status: Status, ended_ago_s: float | None
) -> None:
    cache = FinishedRuns()
    cache.offer(make_run("r1", status, ended_ago_s), b"r1", NOW)
    assert cache.get("r1") is None


def test_finished_runs_drops_the_oldest_past_its_size() -> None:
    cache = FinishedRuns(size=2)
    run = make_run("r1", Status.SUCCESS, 10)
    for run_id in ("r1", "r2", "r3"):
        cache.offer(replace(run, run_id=run_id), run_id.encode(), NOW)
    assert [cache.get(r) for r in ("r1", "r2", "r3")] == [None, b"r2", b"r3"]
