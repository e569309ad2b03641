"""What the server and a worker say about one attempt, through Redis (FLEET.md's keys).

An attempt's id is `A = {run_id}:{job}:{attempt}`. For each attempt:

    conveyor:events:A   a stream: `kind` = started | output | result, `data` = JSON
                        (started: {"worker": name}; output: LogRecord dicts; result: the
                        AttemptResult dict). The worker writes, the server reads from 0, so a
                        server restarted mid-job reads it again from where it had recorded.
    conveyor:claim:A    SET NX by the worker before it starts: a message delivered twice
                        (visibility timeout, a worker lost after the claim) is dropped, so an
                        attempt never runs twice, at once or after its end.
    conveyor:alive:A    the worker's name, TTL ALIVE_TTL_S, refreshed every ALIVE_EVERY_S
                        while the attempt runs: when it is gone and no result came, the
                        worker was lost (the attempt ends `runner_interrupted`).
    conveyor:cancel:A   set by the server to cancel, with a PUBLISH of A on conveyor:cancel:
                        the worker running A hears it at once; one that picks A up later
                        finds the key and answers `canceled` without running it.

The registry of workers is the hash `conveyor:workers` (fleet.registry). `AttemptChannel`
wraps these keys for one attempt over a redis.asyncio client. Must not: run jobs or decide
statuses.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from conveyor.engine.executor import (
    AttemptResult,
    AttemptSpec,
    attempt_result_from_dict,
    attempt_result_to_dict,
)
from conveyor.fleet.app import VISIBILITY_TIMEOUT_S
from conveyor.model import LogRecord
from conveyor.records import log_from_dict, log_to_dict

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "ALIVE_EVERY_S",
    "ALIVE_TTL_S",
    "BROKER_ERRORS",
    "BROKER_PATIENCE_S",
    "BROKER_RETRY_S",
    "CANCEL_CHANNEL",
    "AttemptChannel",
    "Event",
    "attempt_id",
    "attempt_of",
    "with_broker",
]

ALIVE_TTL_S = 3
ALIVE_EVERY_S = 1.0
CANCEL_CHANNEL = "conveyor:cancel"
# A claim outlives any redelivery of its message (the visibility timeout) by a day.
CLAIM_TTL_S = VISIBILITY_TIMEOUT_S + 24 * 3600
# A finished attempt's stream and cancel key stay a day (a restarted server re-reads them).
DONE_TTL_S = 24 * 3600
CANCEL_TTL_S = 7 * 24 * 3600

STARTED, OUTPUT, RESULT = "started", "output", "result"

# Redis not answering (a restart, a network cut): the server and the workers wait for it,
# trying every BROKER_RETRY_S, for up to BROKER_PATIENCE_S before giving up.
BROKER_ERRORS = (RedisError, OSError, OperationalError)
BROKER_RETRY_S = 0.5
BROKER_PATIENCE_S = 300.0

T = TypeVar("T")


async def with_broker(call: Callable[[], Awaitable[T]]) -> T:
    """`call()`, again every BROKER_RETRY_S while Redis does not answer, for up to
    BROKER_PATIENCE_S (then its error): an attempt's events survive a short outage."""
    deadline = time.monotonic() + BROKER_PATIENCE_S
    while True:
        try:
            return await call()
        except BROKER_ERRORS:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(BROKER_RETRY_S)


def attempt_id(run_id: str, job: str, attempt: int) -> str:
    return f"{run_id}:{job}:{attempt}"


def attempt_of(spec: AttemptSpec) -> str:
    return attempt_id(spec.run_id, spec.job, spec.attempt)


class Event(NamedTuple):
    """One entry of an attempt's stream, decoded. `stream_id` is where to read on from."""

    stream_id: str
    kind: str
    worker: str = ""
    records: tuple[LogRecord, ...] = ()
    result: AttemptResult | None = None


def _decode(stream_id: str, fields: dict[str, str]) -> Event:
    kind, data = fields["kind"], json.loads(fields["data"])
    if kind == OUTPUT:
        return Event(stream_id, kind, records=tuple(log_from_dict(d) for d in data))
    if kind == RESULT:
        return Event(stream_id, kind, result=attempt_result_from_dict(data))
    return Event(stream_id, kind, worker=str(data.get("worker", "")))


class AttemptChannel:
    """The keys of attempt `aid` on the Redis client `redis` (decode_responses=True)."""

    __slots__ = ("aid", "alive", "cancel_key", "claim", "redis", "stream")

    def __init__(self, redis: Redis, aid: str) -> None:
        self.redis = redis
        self.aid = aid
        self.stream = f"conveyor:events:{aid}"
        self.claim = f"conveyor:claim:{aid}"
        self.alive = f"conveyor:alive:{aid}"
        self.cancel_key = f"conveyor:cancel:{aid}"

    # ---------------------------------------------------------------- worker side
    async def try_claim(self, worker: str) -> bool:
        """Claim the attempt for `worker`: False when it was claimed before (never twice)."""
        return bool(await self.redis.set(self.claim, worker, nx=True, ex=CLAIM_TTL_S))

    async def mark_alive(self, worker: str) -> None:
        await self.redis.set(self.alive, worker, ex=ALIVE_TTL_S)

    async def started(self, worker: str) -> None:
        await self.redis.xadd(
            self.stream, {"kind": STARTED, "data": json.dumps({"worker": worker})}
        )

    async def output(self, records: Sequence[LogRecord]) -> None:
        if records:
            data = json.dumps([log_to_dict(r) for r in records])
            await self.redis.xadd(self.stream, {"kind": OUTPUT, "data": data})

    async def finished(self, result: AttemptResult) -> None:
        """The result, then the stream kept DONE_TTL_S and the liveness key dropped."""
        data = json.dumps(attempt_result_to_dict(result))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.stream, {"kind": RESULT, "data": data})
            pipe.expire(self.stream, DONE_TTL_S)
            pipe.delete(self.alive)
            await pipe.execute()

    # ---------------------------------------------------------------- server side
    async def read(self, after: str, block_ms: int | None) -> list[Event]:
        """The events after stream id `after` ("0": all), waiting up to `block_ms` for one."""
        answer: Any = await self.redis.xread({self.stream: after}, block=block_ms)
        return [_decode(sid, fields) for _, entries in answer or () for sid, fields in entries]

    async def is_claimed(self) -> bool:
        return bool(await self.redis.exists(self.claim))

    async def is_alive(self) -> bool:
        return bool(await self.redis.exists(self.alive))

    async def request_cancel(self) -> None:
        await self.redis.set(self.cancel_key, "1", ex=CANCEL_TTL_S)
        await self.redis.publish(CANCEL_CHANNEL, self.aid)

    async def is_cancel_requested(self) -> bool:
        return bool(await self.redis.exists(self.cancel_key))

    async def forget(self) -> None:
        """Once the server recorded the result: the stream goes (the claim stays)."""
        await self.redis.delete(self.stream, self.alive)
