"""LogFileReader: the LogReader of one run's JSONL files (`store.logfiles` writes them).

Reads a job's file in chunks, merges a run's files by time, and follows a file while the
engine (in this process or another) appends to it. `read_job_jsonl` hands the stored lines
on as they are (checked to be JSON, not rebuilt: a 100,000-line log is read in a tenth of
the time), and a follow can start at the byte offset such a read ended at. A trailing
partial line (still being written) is kept for the next read; corrupt lines (a crash
mid-write) are skipped. Must not write log files, mask, or touch the database.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from conveyor.errors import StoreError
from conveyor.model import LogRecord
from conveyor.records import log_from_dict
from conveyor.store.base import DoneCheck, JsonlLog
from conveyor.store.logfiles import (
    BUFFER_BYTES,
    FLUSH_INTERVAL_S,
    decode_job_name,
    job_log_path,
    logs_dir,
)

__all__ = ["LogFileReader", "parse_log_lines"]


def parse_log_lines(data: bytes) -> tuple[list[LogRecord], int]:
    """Records of the complete lines in `data` and how many bytes they used (a trailing
    partial line is left for the next read). Corrupt lines are skipped."""
    end = data.rfind(b"\n") + 1
    records: list[LogRecord] = []
    for line in data[:end].splitlines():
        if not line:
            continue
        try:
            records.append(log_from_dict(orjson.loads(line)))
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
            continue
    return records, end


class LogFileReader:
    """The LogReader of the run whose folder is `run_dir` (`store.paths.run_dir`)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def job_names(self) -> list[str]:
        """Names of the jobs that have a log file, in file-name order (a job whose name was
        too long for a file name is named by its first record)."""
        folder = logs_dir(self.run_dir)
        if not folder.is_dir():
            return []
        names: list[str] = []
        for path in sorted(folder.glob("*.jsonl")):
            name = decode_job_name(path.stem)
            if name is None:
                first = next(iter(_read_records(path)), None)
                if first is None:
                    continue
                name = first.job
            names.append(name)
        return names

    def has_log(self, job: str) -> bool:
        return job_log_path(self.run_dir, job).exists()

    def read_job(self, job: str) -> Iterator[LogRecord]:
        return _read_records(job_log_path(self.run_dir, job))

    def read_run(self) -> Iterator[LogRecord]:
        streams = [self.read_job(job) for job in self.job_names()]
        return heapq.merge(*streams, key=lambda r: (r.ts, r.job, r.n))

    def read_job_jsonl(self, job: str) -> JsonlLog:
        path = job_log_path(self.run_dir, job)
        end = _complete_end(path)
        return JsonlLog(end, _read_lines(path, end))

    async def follow_job(
        self,
        job: str,
        *,
        is_done: DoneCheck,
        poll_s: float = 0.1,
        after_n: int = 0,
        offset: int = 0,
    ) -> AsyncIterator[LogRecord]:
        path = job_log_path(self.run_dir, job)
        pending = b""
        last_look = False
        while True:
            finished = await _check(is_done)  # read before draining: no line is lost
            chunk = _read_from(path, offset)
            offset += len(chunk)
            data = pending + chunk
            records, used = parse_log_lines(data)
            pending = data[used:]
            for record in records:
                if record.n > after_n:
                    yield record
            if len(chunk) >= BUFFER_BYTES:
                await asyncio.sleep(0)  # more to read right away; let others run meanwhile
                continue
            if finished:
                if last_look:
                    return
                # The writer may still hold the job's last lines in its buffer for up to one
                # flush interval: look once more after it has surely flushed.
                last_look = True
                await asyncio.sleep(FLUSH_INTERVAL_S * 1.5)
                continue
            await asyncio.sleep(poll_s)


def _read_records(path: Path, chunk_bytes: int = BUFFER_BYTES) -> Iterator[LogRecord]:
    handle = _open(path)
    if handle is None:
        return
    with handle:
        pending = b""
        while chunk := handle.read(chunk_bytes):
            data = pending + chunk
            records, used = parse_log_lines(data)
            pending = data[used:]
            yield from records


def _open(path: Path) -> BinaryIO | None:
    try:
        return open(path, "rb")  # the callers close it
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the job's log file: {exc.strerror}") from exc


def _complete_end(path: Path) -> int:
    """The offset just past the last complete line of `path` now (0 without a file)."""
    handle = _open(path)
    if handle is None:
        return 0
    with handle:
        end = os.fstat(handle.fileno()).st_size
        while end > 0:  # back from the end, a chunk at a time, to the last newline
            start = max(0, end - BUFFER_BYTES)
            handle.seek(start)
            newline = handle.read(end - start).rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            end = start
        return 0


def _read_lines(path: Path, end: int) -> Iterator[bytes]:
    """The complete lines of `path` before `end`, in chunks, corrupt lines left out."""
    handle = _open(path) if end else None
    if handle is None:
        return
    with handle:
        pending = b""
        left = end
        while left > 0 and (chunk := handle.read(min(BUFFER_BYTES, left))):
            left -= len(chunk)
            data = pending + chunk
            cut = data.rfind(b"\n") + 1
            pending = data[cut:]
            if cut:
                yield _json_lines(data[:cut])


def _json_lines(data: bytes) -> bytes:
    """`data` (whole lines) without the lines that are not a JSON object: what a crash
    mid-write left, with the next line appended to it. Parsed only to check them."""
    kept: list[bytes] = []
    is_clean = True
    for line in data.splitlines(keepends=True):
        try:
            if isinstance(orjson.loads(line), dict):
                kept.append(line)
                continue
        except orjson.JSONDecodeError:
            pass
        is_clean = False
    return data if is_clean else b"".join(kept)


async def _check(is_done: DoneCheck) -> bool:
    result = is_done()
    if inspect.isawaitable(result):
        return bool(await result)
    return bool(result)


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(BUFFER_BYTES)
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the job's log file: {exc.strerror}") from exc
