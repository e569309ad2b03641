"""server.sse.stream_job_log over real JSONL files in tmp_path: keep-alive comments while
the job is quiet, the end event, the follow time limit, and the error event."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from conveyor.model import LogRecord, Stream
from conveyor.server.sse import stream_job_log
from conveyor.store.logfiles import RunLogs, job_log_path
from conveyor.store.logreader import LogFileReader

JOB = "test [PY=3.12]"


def write(run_dir: Path, *numbers: int) -> None:
    logs = RunLogs(run_dir)
    for n in numbers:
        logs.write_many(
            [LogRecord(datetime.now(UTC), "r1", JOB, "s", Stream.STDOUT, n, f"line {n}")]
        )
    logs.close()


async def collect(run_dir: Path, outcomes: list[str | None], **options: float) -> list[bytes]:
    async def outcome() -> str | None:
        return outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]

    reader = LogFileReader(run_dir)
    stream = stream_job_log(reader, JOB, outcome=outcome, check_interval_s=0.0, **options)
    return [chunk async for chunk in stream]


async def test_quiet_job_gets_keep_alive_comments_then_end(tmp_path: Path) -> None:
    write(tmp_path, 1)
    chunks = await collect(tmp_path, [None] * 6 + ["success"], heartbeat_s=0.05)
    assert chunks[0].startswith(b"id: 1\ndata: ")
    assert b": keep-alive\n\n" in chunks
    assert chunks[-1] == b'event: end\ndata: {"job":"test [PY=3.12]","status":"success"}\n\n'


async def test_follow_time_limit_ends_the_stream(tmp_path: Path) -> None:
    write(tmp_path, 1, 2)
    chunks = await collect(tmp_path, [None], max_follow_s=0.3, heartbeat_s=0.1)
    end = chunks[-1].split(b"data: ", 1)[1]
    assert chunks[-1].startswith(b"event: end\n")
    assert orjson.loads(end) == {"job": JOB, "status": None, "reason": "follow time limit reached"}


async def test_unreadable_log_sends_an_error_event(tmp_path: Path) -> None:
    job_log_path(tmp_path, JOB).mkdir(parents=True)  # a folder where the file should be
    chunks = await collect(tmp_path, [None])
    assert chunks[-1].startswith(b"event: error\n")
    assert orjson.loads(chunks[-1].split(b"data: ", 1)[1])["code"] == "log_unreadable"
