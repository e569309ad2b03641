"""store.logfiles on real files: writing, prompt flushing, reading, merging and following."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from conveyor.model import LogRecord, Stream
from conveyor.records import log_to_dict
from conveyor.store.logfiles import (
    FLUSH_INTERVAL_S,
    RunLogs,
    follow_job_log,
    job_log_path,
    job_names,
    read_job_log,
    read_run_logs,
)

T0 = datetime(2026, 11, 23, 12, 0, 0, 5000, tzinfo=UTC)
MATRIX_JOB = "test [PY=3.12, OS=linux/arm]"


def record(job: str, n: int, *, ms: int = 0, text: str = "") -> LogRecord:
    ts = T0 + timedelta(milliseconds=ms)
    return LogRecord(ts, "r1", job, "step", Stream.STDOUT, n, text or f"{job} line {n}")


def test_run_logs_writes_log_to_dict_lines(tmp_path: Path) -> None:
    logs = RunLogs(tmp_path)
    written = [record(MATRIX_JOB, 1), record(MATRIX_JOB, 2, ms=1500, text="é \x1b[31mred")]
    for rec in written:
        logs.write(rec)
    logs.close()
    expected = b"".join(orjson.dumps(log_to_dict(r)) + b"\n" for r in written)
    assert job_log_path(tmp_path, MATRIX_JOB).read_bytes() == expected


def test_read_job_log_returns_records_in_order(tmp_path: Path) -> None:
    logs = RunLogs(tmp_path)
    for n in range(1, 4):
        logs.write(record("build", n))
    logs.close()
    assert [r.n for r in read_job_log(tmp_path, "build")] == [1, 2, 3]


def test_read_job_log_of_job_without_log_is_empty(tmp_path: Path) -> None:
    assert list(read_job_log(tmp_path, "nothing")) == []


def test_read_run_logs_merges_jobs_by_time(tmp_path: Path) -> None:
    logs = RunLogs(tmp_path)
    logs.write(record("b", 1, ms=10))
    logs.write(record("a", 1, ms=20))
    logs.write(record("b", 2, ms=30))
    logs.write(record(MATRIX_JOB, 1, ms=0))
    logs.close()
    merged = [(r.job, r.n) for r in read_run_logs(tmp_path)]
    assert merged == [(MATRIX_JOB, 1), ("b", 1), ("a", 1), ("b", 2)]


def test_job_names_decodes_file_names(tmp_path: Path) -> None:
    logs = RunLogs(tmp_path)
    long_name = "deploy " + "x" * 300
    for job in ("build", MATRIX_JOB, long_name):
        logs.write(record(job, 1))
    logs.close()
    assert sorted(job_names(tmp_path)) == sorted(["build", MATRIX_JOB, long_name])


def test_run_logs_appends_to_existing_log(tmp_path: Path) -> None:
    for n in (1, 2):
        logs = RunLogs(tmp_path)
        logs.write(record("build", n))
        logs.close()
    assert [r.n for r in read_job_log(tmp_path, "build")] == [1, 2]


_READER = """
import sys, time
from pathlib import Path
from conveyor.store.logfiles import read_job_log
print("ready", flush=True)
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    if list(read_job_log(Path(sys.argv[1]), "build")):
        print(round(time.monotonic(), 3))
        break
    time.sleep(0.01)
"""


def test_run_logs_flushes_for_another_process_without_close(tmp_path: Path) -> None:
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert reader.stdout is not None
    assert reader.stdout.readline() == "ready\n"  # the reader polls from now on
    logs = RunLogs(tmp_path)
    written_at = time.monotonic()
    logs.write(record("build", 1))
    out = reader.stdout.readline()
    reader.stdout.close()
    reader.wait(timeout=10)
    logs.close()
    assert float(out) - written_at < FLUSH_INTERVAL_S + 0.3


async def test_follow_job_log_yields_lines_as_written_until_done(tmp_path: Path) -> None:
    logs = RunLogs(tmp_path)
    done = asyncio.Event()

    async def produce() -> None:
        for n in range(1, 6):
            logs.write(record(MATRIX_JOB, n))
            await asyncio.sleep(0.05)
        logs.write(record(MATRIX_JOB, 6))  # still buffered when "done" is announced
        done.set()

    seen: list[int] = []

    async def consume() -> None:
        async for rec in follow_job_log(tmp_path, MATRIX_JOB, is_done=done.is_set, poll_s=0.02):
            seen.append(rec.n)

    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        group.create_task(consume())
        group.create_task(produce())
    logs.close()
    assert seen == [1, 2, 3, 4, 5, 6]


async def test_follow_job_log_waits_for_file_and_skips_seen_lines(tmp_path: Path) -> None:
    calls = 0

    async def is_done() -> bool:
        nonlocal calls
        calls += 1
        if calls == 3:
            logs = RunLogs(tmp_path)
            for n in range(1, 4):
                logs.write(record("late", n))
            logs.close()
        return calls > 3

    async with asyncio.timeout(10):
        seen = [r.n async for r in follow_job_log(tmp_path, "late", is_done=is_done, after_n=1)]
    assert seen == [2, 3]


async def test_follow_job_log_keeps_partial_line_for_next_read(tmp_path: Path) -> None:
    path = job_log_path(tmp_path, "build")
    path.parent.mkdir(parents=True)
    full = orjson.dumps(log_to_dict(record("build", 1))) + b"\n"
    path.write_bytes(full[:20])
    rounds = 0

    def is_done() -> bool:
        nonlocal rounds
        rounds += 1
        if rounds == 2:
            with open(path, "ab") as handle:
                handle.write(full[20:])
        return rounds > 2

    async with asyncio.timeout(10):
        seen = [r.n async for r in follow_job_log(tmp_path, "build", is_done=is_done, poll_s=0)]
    assert seen == [1]
