"""Log files: one JSONL file per job under `<run_dir>/logs/`, and the sink that writes them.

Owns the layout (`job_log_path`: a job name made one safe file name) and `RunLogs`, the
LogSink the engine writes every output line to. It is the hot path (millions of lines):
records are serialised with orjson, the timestamp text is cached per second, and files are
buffered, yet flushed at least every FLUSH_INTERVAL_S by a small background thread so a
follower in another process sees lines promptly. Each line is exactly
`records.log_to_dict(record)`. Reading them back is `store.logreader`'s. Must not mask
(records arrive masked) or touch the database.

A full disk is a clear failure, not a crash: a write, flush or open that fails (ENOSPC,
EDQUOT, EIO…) makes the sink broken. Every later `write_many` raises a StoreError naming
the file and the cause (the engine fails the job and stops the run with it), the flusher
thread and `close` never raise, and a small reserve file made next to the logs when the
first one opens (`RESERVE_BYTES`, allocated, not written) is removed at that moment, so the
database on the same disk still has room to record the run as failed. `close` removes the
reserve too; nothing of it outlives the run.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import orjson

from conveyor.errors import StoreError
from conveyor.model import LogRecord, Stream
from conveyor.records import format_ts
from conveyor.store.paths import PRIVATE_DIR_MODE, private_opener

__all__ = [
    "BUFFER_BYTES",
    "FLUSH_INTERVAL_S",
    "RESERVE_BYTES",
    "RunLogs",
    "TimestampCache",
    "decode_job_name",
    "encode_job_name",
    "job_log_path",
    "logs_dir",
]

FLUSH_INTERVAL_S = 0.2
#: A job file's write buffer, and the reader's chunk size.
BUFFER_BYTES = 1 << 20
#: Room kept free for the database while a run writes logs (module docstring).
RESERVE_BYTES = 256 * 1024
_RESERVE_NAME = ".reserve"
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_MAX_STEM = 180
_MS_SUFFIX = tuple(f"{ms:03d}Z" for ms in range(1000))
_SECOND = timedelta(seconds=1)
# The per-line hot path avoids attribute look-ups: an enum's `.value` is a descriptor call.
_STREAM_TEXT = {stream: stream.value for stream in Stream}
_dumps = orjson.dumps


def encode_job_name(job: str) -> str:
    """A file stem for `job`: letters, digits, `-`, `_` kept, every other byte as `%XX`
    (so `.` and `/` can never form a path). Reversible with `decode_job_name`, except for
    very long names, which are cut and end in `~` + a hash (the records hold the name)."""
    raw = job.encode("utf-8")
    stem = "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in raw)
    if not stem:
        return "%"
    if len(stem) > _MAX_STEM:
        import hashlib  # only for job names too long for a file name

        stem = f"{stem[:150]}~{hashlib.sha256(raw).hexdigest()[:16]}"
    return stem


def decode_job_name(stem: str) -> str | None:
    """The job name of a file stem, or None when the stem was hashed (a long name)."""
    if "~" in stem:
        return None
    if stem == "%":
        return ""
    out = bytearray()
    i = 0
    while i < len(stem):
        if stem[i] == "%":
            out.append(int(stem[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(stem[i]))
            i += 1
    return out.decode("utf-8")


def logs_dir(run_dir: Path) -> Path:
    """`<run_dir>/logs`, the folder of a run's job files."""
    return run_dir / "logs"


def job_log_path(run_dir: Path, job: str) -> Path:
    """`<run_dir>/logs/<encoded job>.jsonl`."""
    return logs_dir(run_dir) / f"{encode_job_name(job)}.jsonl"


class TimestampCache:
    """`records.format_ts` with the text up to the second cached (lines come in bursts):
    the per-line cost drops from ~2 µs to ~0.2 µs."""

    __slots__ = ("_end", "_prefix", "_start")

    def __init__(self) -> None:
        self._start = datetime.max.replace(tzinfo=UTC)
        self._end = self._start
        self._prefix = ""

    def format(self, ts: datetime) -> str:
        if ts.tzinfo is not UTC:
            return format_ts(ts) or ""
        if not (self._start <= ts < self._end):
            self._start = ts.replace(microsecond=0)
            self._end = self._start + _SECOND
            self._prefix = self._start.strftime("%Y-%m-%dT%H:%M:%S.")
        return self._prefix + _MS_SUFFIX[ts.microsecond // 1000]


class RunLogs:
    """The LogSink of one run: `<run_dir>/logs/<encoded job>.jsonl`, appended.

    Safe to use from one writer thread; the flusher thread only calls `flush()`, which
    CPython's buffered files serialise with their own lock."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._folder = logs_dir(run_dir)
        self._files: dict[str, BinaryIO] = {}
        self._ts = TimestampCache()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._closed = False
        self._key: tuple[object, ...] = (None, None, None, None, None)
        self._head = b""
        self._reserve: Path | None = None
        self._failure: str | None = None  # why the sink is broken (module docstring)
        self._flush_failure: tuple[str, OSError] | None = None  # seen by the flusher thread

    def write_many(self, records: Sequence[LogRecord]) -> None:
        """Append each record to its job's file, with one file write per run of records of
        the same job instead of one per line (the engine hands over one output chunk).
        StoreError once the sink is broken (module docstring)."""
        if self._failure is None and self._flush_failure is not None:
            self._fail(*self._flush_failure)
        if self._failure is not None:
            raise StoreError(self._failure)
        parts: list[bytes] = []
        job: str | None = None
        handle: BinaryIO | None = None
        line = self._line
        try:
            for record in records:
                if record.job != job:
                    if handle is not None:
                        handle.write(b"".join(parts))
                        parts.clear()
                    job = record.job
                    handle = self._files.get(job)
                    if handle is None:
                        handle = self._open(job)
                parts.append(line(record))
            if handle is not None:
                handle.write(b"".join(parts))
        except OSError as exc:
            raise StoreError(self._fail(job or "", exc)) from None

    def _fail(self, job: str, exc: OSError) -> str:
        path = job_log_path(self.run_dir, job)
        self.give_up(
            f"{path}: cannot write the job's log ({exc.strerror or exc}); free space on "
            "that disk (or fix its permissions) and run again"
        )
        return self._failure or ""

    def give_up(self, reason: str) -> None:
        """Break the sink (store.base.LogSink.give_up): its files closed (what they still
        buffer is lost), the reserve given back to the disk; `reason` is the message every
        later write raises. The first reason stays."""
        if self._failure is None:
            self._failure = reason
            with self._lock:
                handles = list(self._files.values())
                self._files.clear()
            for handle in handles:
                with contextlib.suppress(OSError, ValueError):
                    handle.close()
            self._release_reserve()

    @property
    def failure(self) -> str | None:
        """Why the sink is broken, or None."""
        return self._failure

    def _line(self, record: LogRecord) -> bytes:
        # `{"ts":…,"run_id":…,"job":…,"step":…,"stream":…,"n":N,"text":T}` + newline: orjson's
        # compact form of log_to_dict(record). Everything before `n` is the same for a whole
        # chunk of lines (the engine stamps a chunk at once), so it is cached.
        key = self._key
        if (
            record.ts is not key[0]
            or record.step != key[3]
            or record.stream is not key[4]
            or record.job != key[2]
            or record.run_id != key[1]
        ):
            self._key = (record.ts, record.run_id, record.job, record.step, record.stream)
            head = {
                "ts": self._ts.format(record.ts),
                "run_id": record.run_id,
                "job": record.job,
                "step": record.step,
                "stream": _STREAM_TEXT[record.stream],
            }
            self._head = _dumps(head)[:-1] + b',"n":'
        return b'%s%d,"text":%s}\n' % (self._head, record.n, _dumps(record.text))

    def flush(self) -> None:
        with self._lock:
            handles = list(self._files.items())
        for job, handle in handles:
            try:
                handle.flush()
            except ValueError:  # closed meanwhile by close(): nothing left to flush
                continue
            except OSError as exc:  # the writer breaks the sink at its next write
                self._flush_failure = self._flush_failure or (job, exc)
                self._release_reserve()  # now: the database may need the room first
                return

    def close(self) -> None:
        """Flush and close every file; never raises (a failure is kept in `failure`)."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        with self._lock:
            handles = list(self._files.items())
            self._files.clear()
            self._closed = True
        for job, handle in handles:
            try:
                handle.close()
            except OSError as exc:
                self._fail(job, exc)
        self._release_reserve()

    def _make_reserve(self) -> None:
        path = self._folder / _RESERVE_NAME
        try:
            fd = private_opener(str(path), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC)
        except OSError:
            return
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
        except OSError:  # no room even for it, or no fallocate here: go on without
            pass
        finally:
            os.close(fd)
        self._reserve = path

    def _release_reserve(self) -> None:
        if self._reserve is not None:
            with contextlib.suppress(OSError):
                self._reserve.unlink()
            self._reserve = None

    def _open(self, job: str) -> BinaryIO:
        if self._closed:
            raise StoreError(f"{self.run_dir}: log of job {job!r} written after close")
        path = job_log_path(self.run_dir, job)
        # OSError: write_many breaks the sink (module docstring)
        self._folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
        if self._reserve is None and not self._files:
            self._make_reserve()
        # Kept open until close(): one open per job, not per line. `0600`: store.paths.
        handle = open(path, "ab", buffering=BUFFER_BYTES, opener=private_opener)  # noqa: SIM115
        with self._lock:
            self._files[job] = handle
        if self._flusher is None:
            self._flusher = threading.Thread(
                target=self._flush_periodically, name="conveyor-log-flusher", daemon=True
            )
            self._flusher.start()
        return handle

    def _flush_periodically(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            self.flush()
