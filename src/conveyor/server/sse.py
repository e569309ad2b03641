"""Server-Sent Events for `GET /api/v1/runs/{id}/jobs/{job}/log?follow=1`.

Owns the wire format (`id:` = the record's line number `n`, one `data:` line of JSON per log
record, `event: end` with the job's final status when the job is over, `event: error` when
the log cannot be read, `: keep-alive` comments while nothing happens) and the loop that tails
a job's log through a `store.base.LogReader` (`follow_job`). It never touches the run
store directly: the route passes a callable that says whether (and how) the job has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import structlog

from conveyor.errors import ConveyorError
from conveyor.records import log_to_dict
from conveyor.store.base import LogReader

__all__ = ["SSE_HEADERS", "format_comment", "format_event", "stream_job_log"]

log = structlog.get_logger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_BATCH = 500  # records joined into one chunk when they arrive in a burst

# Returns None while the job is still going, else its final status ("success", …).
JobOutcome = Callable[[], Awaitable[str | None]]


def format_event(data: bytes, *, event: str | None = None, event_id: str | None = None) -> bytes:
    """One SSE event. `data` must be a single line (orjson output is)."""
    head = b""
    if event is not None:
        head += b"event: " + event.encode() + b"\n"
    if event_id is not None:
        head += b"id: " + event_id.encode() + b"\n"
    return head + b"data: " + data + b"\n\n"


def format_comment(text: str) -> bytes:
    return b": " + text.encode() + b"\n\n"


class _Outcome:
    """Caches the job outcome so a fast poll does not query the store every 100 ms."""

    def __init__(self, outcome: JobOutcome, check_interval_s: float) -> None:
        self._outcome = outcome
        self._interval = check_interval_s
        self._checked_at = float("-inf")
        self.status: str | None = None

    async def is_done(self) -> bool:
        now = asyncio.get_running_loop().time()
        if self.status is None and now - self._checked_at >= self._interval:
            self._checked_at = now
            self.status = await self._outcome()
        return self.status is not None


async def stream_job_log(
    logs: LogReader,
    job: str,
    *,
    outcome: JobOutcome,
    after_n: int = 0,
    offset: int = 0,
    heartbeat_s: float = 15.0,
    max_follow_s: float = 6 * 3600.0,
    check_interval_s: float = 0.5,
) -> AsyncIterator[bytes]:
    """SSE chunks for `job`'s log from line `after_n + 1` until the job ends, read from
    byte `offset` of the log on (`LogReader.follow_job`)."""
    done = _Outcome(outcome, check_interval_s)
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4 * _BATCH)

    async def produce() -> None:
        try:
            async for record in logs.follow_job(
                job, is_done=done.is_done, after_n=after_n, offset=offset
            ):
                data = orjson.dumps(log_to_dict(record))
                await queue.put(format_event(data, event_id=str(record.n)))
        finally:
            await queue.put(None)

    producer = asyncio.create_task(produce(), name=f"sse-{job}")
    deadline = asyncio.get_running_loop().time() + max_follow_s
    drained = _Drained()
    try:
        async for chunk in _drain(queue, heartbeat_s, deadline, drained):
            yield chunk
        if not drained.complete:
            body = {"job": job, "status": None, "reason": "follow time limit reached"}
            yield format_event(orjson.dumps(body), event="end")
            return
        error = producer.exception() if producer.done() else None
        if error is not None:
            yield _error_event(error)
            return
        yield format_event(orjson.dumps({"job": job, "status": done.status}), event="end")
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await producer


class _Drained:
    complete = False


async def _drain(
    queue: asyncio.Queue[bytes | None], heartbeat_s: float, deadline: float, drained: _Drained
) -> AsyncIterator[bytes]:
    """Chunks from the producer, bursts joined, a keep-alive comment when it is quiet.
    Stops at the producer's end (drained.complete) or at `deadline` (loop time)."""
    loop = asyncio.get_running_loop()
    while (remaining := deadline - loop.time()) > 0:
        try:
            item = await asyncio.wait_for(queue.get(), min(heartbeat_s, remaining))
        except TimeoutError:
            if deadline - loop.time() > 0:
                yield format_comment("keep-alive")
            continue
        parts: list[bytes] = []
        while item is not None:
            parts.append(item)
            if len(parts) >= _BATCH or queue.empty():
                break
            item = queue.get_nowait()
        if parts:
            yield b"".join(parts)
        if item is None:
            drained.complete = True
            return


def _error_event(error: BaseException) -> bytes:
    if isinstance(error, ConveyorError):
        message = str(error)
    else:
        log.error("sse.follow_failed", exc_info=error)
        message = "Reading the log failed; see the server log."
    return format_event(orjson.dumps({"code": "log_unreadable", "message": message}), event="error")
