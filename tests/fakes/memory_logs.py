"""MemoryLogs: one run's output lines in memory, both its LogSink and its LogReader.

Behaves like RunLogs + LogFileReader (tests/integration/store/test_log_conformance.py runs
both): lines of a job in the order written, a run's lines merged by time, then job, then
line number, a follow that waits for the job's first line and ends once the writer is done
and every line is read. Never used outside tests.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
from collections.abc import AsyncIterator, Iterator, Sequence

import orjson

from conveyor.errors import StoreError
from conveyor.model import LogRecord
from conveyor.records import log_to_dict
from conveyor.store.base import DoneCheck, JsonlLog

__all__ = ["MemoryLogs"]


class MemoryLogs:
    def __init__(self) -> None:
        self.records: list[LogRecord] = []  # every record, in the order written
        self.closed = False
        self.given_up: str | None = None

    def texts(self, job: str) -> list[str]:
        """The texts of `job`'s lines (for assertions)."""
        return [r.text for r in self.read_job(job)]

    # -- LogSink
    def write_many(self, records: Sequence[LogRecord]) -> None:
        if self.closed:
            raise StoreError("memory: log written after close")
        self.records.extend(records)

    def close(self) -> None:
        self.closed = True

    def give_up(self, reason: str) -> None:
        self.given_up = reason

    # -- LogReader
    def job_names(self) -> list[str]:
        return sorted({r.job for r in self.records})

    def has_log(self, job: str) -> bool:
        return any(r.job == job for r in self.records)

    def read_job(self, job: str) -> Iterator[LogRecord]:
        return iter([r for r in self.records if r.job == job])

    def read_run(self) -> Iterator[LogRecord]:
        streams = [self.read_job(job) for job in self.job_names()]
        return heapq.merge(*streams, key=lambda r: (r.ts, r.job, r.n))

    def read_job_jsonl(self, job: str) -> JsonlLog:
        lines = [_jsonl(record) for record in self.read_job(job)]
        return JsonlLog(sum(map(len, lines)), iter(lines))

    async def follow_job(
        self,
        job: str,
        *,
        is_done: DoneCheck,
        poll_s: float = 0.1,
        after_n: int = 0,
        offset: int = 0,
    ) -> AsyncIterator[LogRecord]:
        seen = 0
        position = 0  # the byte offset the JSONL of the records seen so far ends at
        while True:
            result = is_done()  # read before draining, as the file reader does
            finished = bool(await result) if inspect.isawaitable(result) else bool(result)
            lines = list(self.read_job(job))
            for record in lines[seen:]:
                position += len(_jsonl(record))
                if record.n > after_n and position > offset:
                    yield record
            seen = len(lines)
            if finished:
                return
            await asyncio.sleep(poll_s)


def _jsonl(record: LogRecord) -> bytes:
    return orjson.dumps(log_to_dict(record), option=orjson.OPT_APPEND_NEWLINE)
