"""The engine's batched log writes (RunLogs.write_many of a chunk) give the very bytes of
one write per record, which are orjson's compact form of records.log_to_dict."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from conveyor.model import LogRecord, Stream
from conveyor.records import log_to_dict
from conveyor.store.logfiles import RunLogs, job_log_path

T0 = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
T1 = datetime(2026, 11, 23, 12, 0, 1, 5000, tzinfo=UTC)


def _records() -> list[LogRecord]:
    texts = ["plain", 'quote " and \\ backslash', "ünïcode ✓", "", "\x00 control \t tab"]
    records = [
        LogRecord(T0, "r1", "build", "make", Stream.STDOUT, n, t) for n, t in enumerate(texts, 1)
    ]
    records.append(LogRecord(T0, "r1", "build", "make", Stream.STDERR, 6, "err"))
    records.append(LogRecord(T1, "r1", "build", "", Stream.SYSTEM, 7, "retrying"))
    records.append(LogRecord(T1, "r1", "test [PY=3.12]", "pytest", Stream.STDOUT, 1, "ok"))
    return records


def _written(run_dir: Path, job: str) -> bytes:
    return job_log_path(run_dir, job).read_bytes()


def test_write_many_of_a_chunk_matches_one_record_at_a_time_and_log_to_dict(
    tmp_path: Path,
) -> None:
    records = _records()
    one_by_one, batched = RunLogs(tmp_path / "a"), RunLogs(tmp_path / "b")
    for record in records:
        one_by_one.write_many([record])
    batched.write_many(records[:3])
    batched.write_many(records[3:])
    one_by_one.close()
    batched.close()
    expected = {
        job: b"".join(
            orjson.dumps(log_to_dict(r), option=orjson.OPT_APPEND_NEWLINE)
            for r in records
            if r.job == job
        )
        for job in ("build", "test [PY=3.12]")
    }
    assert {job: _written(tmp_path / "a", job) for job in expected} == expected
    assert {job: _written(tmp_path / "b", job) for job in expected} == expected
