"""One contract for every ScheduleState: the JSON file under conveyor's home and the
in-memory fake."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from conveyor.runs.schedules import FileScheduleState, ScheduleState
from tests.fakes.schedule_state import MemoryScheduleState

Make = Callable[[Path], ScheduleState]
AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture(params=["file", "memory"])
def make(request: pytest.FixtureRequest) -> Make:
    if request.param == "file":
        return lambda folder: FileScheduleState(folder / "home" / "schedules.json")
    memory = MemoryScheduleState()
    return lambda folder: memory


def test_schedule_state_starts_empty(make: Make, tmp_path: Path) -> None:
    assert make(tmp_path).load() == {}


def test_schedule_state_keeps_each_schedule_across_reopen(make: Make, tmp_path: Path) -> None:
    make(tmp_path).save("nightly", AT)
    make(tmp_path).save("hourly", AT + timedelta(hours=1))
    assert make(tmp_path).load() == {"nightly": AT, "hourly": AT + timedelta(hours=1)}


def test_schedule_state_save_replaces_the_time(make: Make, tmp_path: Path) -> None:
    state = make(tmp_path)
    state.save("nightly", AT)
    state.save("nightly", AT + timedelta(days=1))
    assert state.load() == {"nightly": AT + timedelta(days=1)}


def test_schedule_state_times_compare_in_utc(make: Make, tmp_path: Path) -> None:
    paris = AT.astimezone(timezone(timedelta(hours=1)))
    make(tmp_path).save("nightly", paris)
    assert make(tmp_path).load()["nightly"] == AT


def test_file_schedule_state_unreadable_file_reads_empty(tmp_path: Path) -> None:
    path = tmp_path / "schedules.json"
    path.write_text("{not json")
    assert FileScheduleState(path).load() == {}
