"""One LogSink + LogReader conformance suite, run against the JSONL files of a run folder
(`store.logfiles.RunLogs` writing, `store.logreader.LogFileReader` reading) and the
in-memory fake (tests/fakes/memory_logs.py), so the fake behaves like the files. What only
files have (their bytes, flushing for another process, partial and corrupt lines) is in
test_logfiles.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from conveyor.errors import StoreError
from conveyor.model import LogRecord, Stream
from conveyor.records import log_to_dict
from conveyor.store.base import LogReader, LogSink
from conveyor.store.logfiles import RunLogs
from conveyor.store.logreader import LogFileReader
from tests.fakes.memory_logs import MemoryLogs

T0 = datetime(2026, 11, 23, 12, 0, 0, 5000, tzinfo=UTC)
MATRIX_JOB = "test [PY=3.12, OS=linux/arm]"
LONG_JOB = "deploy " + "x" * 300  # too long for a file name: the file stem is hashed


def record(job: str, n: int, *, ms: int = 0) -> LogRecord:
    ts = T0 + timedelta(milliseconds=ms)
    return LogRecord(ts, "r1", job, "step", Stream.STDOUT, n, f"{job} line {n}")


@pytest.fixture(params=["files", "memory"])
def logs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LogSink, LogReader]]:
    if request.param == "files":
        sink = RunLogs(tmp_path)
        yield sink, LogFileReader(tmp_path)
        sink.close()
        return
    memory = MemoryLogs()
    yield memory, memory


def test_log_read_job_returns_records_in_the_order_written(
    logs: tuple[LogSink, LogReader],
) -> None:
    sink, reader = logs
    sink.write_many([record(MATRIX_JOB, 1), record("other", 1), record(MATRIX_JOB, 2)])
    sink.write_many([record(MATRIX_JOB, 3)])
    sink.close()
    assert [r.n for r in reader.read_job(MATRIX_JOB)] == [1, 2, 3]
    assert [r.text for r in reader.read_job("other")] == ["other line 1"]


def test_log_of_a_job_without_lines_is_empty(logs: tuple[LogSink, LogReader]) -> None:
    sink, reader = logs
    sink.write_many([record("build", 1)])
    sink.close()
    assert (list(reader.read_job("nothing")), reader.has_log("nothing")) == ([], False)
    assert reader.has_log("build")


def test_log_read_run_merges_jobs_by_time_then_job_then_line(
    logs: tuple[LogSink, LogReader],
) -> None:
    sink, reader = logs
    sink.write_many([record("b", 1, ms=10), record("b", 2, ms=30)])
    sink.write_many([record("a", 1, ms=20), record("a", 2, ms=30)])
    sink.write_many([record(MATRIX_JOB, 1, ms=0)])
    sink.close()
    merged = [(r.job, r.n) for r in reader.read_run()]
    assert merged == [(MATRIX_JOB, 1), ("b", 1), ("a", 1), ("a", 2), ("b", 2)]


def test_log_job_names_are_the_jobs_that_wrote(logs: tuple[LogSink, LogReader]) -> None:
    sink, reader = logs
    assert reader.job_names() == []
    sink.write_many([record(job, 1) for job in ("build", MATRIX_JOB, LONG_JOB)])
    sink.close()
    assert sorted(reader.job_names()) == sorted(["build", MATRIX_JOB, LONG_JOB])


def test_log_write_after_close_is_refused(logs: tuple[LogSink, LogReader]) -> None:
    sink, _ = logs
    sink.close()
    with pytest.raises(StoreError, match="after close"):
        sink.write_many([record("build", 1)])


async def test_log_follow_yields_lines_as_written_until_done(
    logs: tuple[LogSink, LogReader],
) -> None:
    sink, reader = logs
    done = asyncio.Event()

    async def produce() -> None:
        for n in range(1, 6):
            sink.write_many([record(MATRIX_JOB, n)])
            await asyncio.sleep(0.05)
        sink.write_many([record(MATRIX_JOB, 6)])  # the file sink still buffers it
        done.set()

    async def consume() -> list[int]:
        follow = reader.follow_job(MATRIX_JOB, is_done=done.is_set, poll_s=0.02)
        return [r.n async for r in follow]

    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        seen = group.create_task(consume())
        group.create_task(produce())
    assert seen.result() == [1, 2, 3, 4, 5, 6]


async def test_log_follow_waits_for_the_first_line_and_skips_seen_lines(
    logs: tuple[LogSink, LogReader],
) -> None:
    sink, reader = logs
    calls = 0

    async def is_done() -> bool:  # an async check, as the server's is
        nonlocal calls
        calls += 1
        if calls == 3:
            sink.write_many([record("late", n) for n in range(1, 4)])
            sink.close()
        return calls > 3

    async with asyncio.timeout(10):
        seen = [r.n async for r in reader.follow_job("late", is_done=is_done, after_n=1)]
    assert seen == [2, 3]


def test_log_read_job_jsonl_is_the_records_as_log_to_dict_lines(
    logs: tuple[LogSink, LogReader],
) -> None:
    sink, reader = logs
    sink.write_many([record(MATRIX_JOB, n) for n in (1, 2)] + [record("other", 1)])
    sink.close()
    jsonl = reader.read_job_jsonl(MATRIX_JOB)
    data = b"".join(jsonl.chunks)
    expected = [log_to_dict(r) for r in reader.read_job(MATRIX_JOB)]
    assert [orjson.loads(line) for line in data.splitlines()] == expected
    assert jsonl.end_offset == len(data)


def test_log_read_job_jsonl_of_a_job_without_lines_is_empty(
    logs: tuple[LogSink, LogReader],
) -> None:
    _, reader = logs
    jsonl = reader.read_job_jsonl("nothing")
    assert (jsonl.end_offset, list(jsonl.chunks)) == (0, [])


async def test_log_follow_from_a_jsonl_offset_skips_the_lines_before_it(
    logs: tuple[LogSink, LogReader],
) -> None:
    sink, reader = logs
    sink.write_many([record("build", n) for n in (1, 2, 3)])
    sink.close()
    read = reader.read_job_jsonl("build")
    lines = b"".join(read.chunks).splitlines(keepends=True)
    after_two = len(lines[0]) + len(lines[1])

    async def follow(offset: int) -> list[int]:
        async with asyncio.timeout(10):
            return [
                r.n async for r in reader.follow_job("build", is_done=lambda: True, offset=offset)
            ]

    assert (await follow(after_two), await follow(read.end_offset)) == ([3], [])
