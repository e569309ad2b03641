"""The JSONL files of a run on disk: their bytes, appending, prompt flushing for a reader in
another process, and a partial last line. What every LogSink/LogReader does (order, merge,
names, follow) is in test_log_conformance.py."""

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
from conveyor.store.logfiles import FLUSH_INTERVAL_S, RunLogs, job_log_path
from conveyor.store.logreader import LogFileReader

T0 = datetime(2026, 11, 23, 12, 0, 0, 5000, tzinfo=UTC)
MATRIX_JOB = "test [PY=3.12, OS=linux/arm]"


def record(job: str, n: int, *, ms: int = 0, text: str = "") -> LogRecord:
    ts = T0 + timedelta(milliseconds=ms)
    return LogRecord(ts, "r1", job, "step", Stream.STDOUT, n, text or f"{job} line {n}")


def test_run_logs_writes_log_to_dict_lines(tmp_path: Path) -> None:
    logs = RunLogs(tmp_path)
    written = [record(MATRIX_JOB, 1), record(MATRIX_JOB, 2, ms=1500, text="é \x1b[31mred")]
    for rec in written:
        logs.write_many([rec])
    logs.close()
    expected = b"".join(orjson.dumps(log_to_dict(r)) + b"\n" for r in written)
    assert job_log_path(tmp_path, MATRIX_JOB).read_bytes() == expected


def test_run_logs_appends_to_existing_log(tmp_path: Path) -> None:
    for n in (1, 2):
        logs = RunLogs(tmp_path)
        logs.write_many([record("build", n)])
        logs.close()
    assert [r.n for r in LogFileReader(tmp_path).read_job("build")] == [1, 2]


_READER = """
import sys, time
from pathlib import Path
from conveyor.store.logreader import LogFileReader
reader = LogFileReader(Path(sys.argv[1]))
print("ready", flush=True)
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    if list(reader.read_job("build")):
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
    logs.write_many([record("build", 1)])
    out = reader.stdout.readline()
    reader.stdout.close()
    reader.wait(timeout=10)
    logs.close()
    assert float(out) - written_at < FLUSH_INTERVAL_S + 0.3


async def test_follow_job_keeps_a_partial_line_for_the_next_read(tmp_path: Path) -> None:
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
        follow = LogFileReader(tmp_path).follow_job("build", is_done=is_done, poll_s=0)
        seen = [r.n async for r in follow]
    assert seen == [1]


def test_read_job_jsonl_serves_stored_lines_without_corrupt_or_partial_ones(
    tmp_path: Path,
) -> None:
    path = job_log_path(tmp_path, "build")
    path.parent.mkdir(parents=True)
    lines = [orjson.dumps(log_to_dict(record("build", n))) + b"\n" for n in (1, 2, 3)]
    # A crash mid-write left half of a line, which the next writer appended to; the last
    # line is still being written.
    path.write_bytes(lines[0] + lines[1][:15] + lines[1] + lines[2][:10])
    jsonl = LogFileReader(tmp_path).read_job_jsonl("build")
    assert b"".join(jsonl.chunks) == lines[0]
    assert jsonl.end_offset == len(lines[0]) + 15 + len(lines[1])
