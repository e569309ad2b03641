"""CeleryExecutor: the server's Executor (engine.executor) for attempts that run on workers.

    fleet = FleetClient(broker_url)                        # one per server: Celery + Redis
    executor = CeleryExecutor(fleet, origin, pending_timeout_s=3600)   # one per run
    failure = await executor.place(spec, on_waiting)       # a live worker for its tags?
    result = await executor.run(spec, on_output)           # send, follow its events

`place` (engine.executor.Placement) waits until a live worker consumes the job's queue
(fleet.routing, fleet.registry); meanwhile the job is `pending` with the reason
`no worker for tags [gpu]`, and past `pending_timeout_s` it fails `stuck_or_timeout_failure`.
`run` sends task `conveyor.attempt` (kwargs spec + origin, JSON) to that queue, then reads
the attempt's stream (fleet.events) and hands each output batch to `on_output` as it comes,
until the result. It ends the attempt itself in three cases: `cancel` before a worker took
it (`canceled` at once; the cancel key makes a later pick-up drop it), the worker lost (the
attempt is claimed but its liveness key expired with no result: `failed`, reason
`runner_interrupted`, which `retry: when: [runner_interrupted]` retries), and the queue
left without a live worker for `pending_timeout_s` (`stuck_or_timeout_failure`).

An attempt already claimed or with events (a server restarted mid-run) is not sent again:
its stream is read from the start and its lines numbered below `spec.first_line` dropped, so
the log files get no duplicate numbers. `cancel` sets the attempt's cancel key and publishes
it: the worker running it stops its process groups within a second. Must not: run jobs,
touch the store, or decide retries (status.py does).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import structlog

from conveyor.clock import SYSTEM_CLOCK, Clock
from conveyor.engine.executor import (
    AttemptResult,
    AttemptSpec,
    OutputSink,
    attempt_spec_to_dict,
)
from conveyor.fleet.app import ATTEMPT_TASK, celery_app
from conveyor.fleet.events import (
    BROKER_ERRORS,
    BROKER_PATIENCE_S,
    BROKER_RETRY_S,
    OUTPUT,
    RESULT,
    STARTED,
    AttemptChannel,
    attempt_of,
    with_broker,
)
from conveyor.fleet.registry import has_live_worker, list_workers
from conveyor.fleet.routing import queue_for, tags_of_queue
from conveyor.model import Status
from conveyor.status import RUNNER_INTERRUPTED, STUCK_OR_TIMEOUT

if TYPE_CHECKING:
    from celery import Celery
    from redis.asyncio import Redis

__all__ = ["CeleryExecutor", "FleetClient", "job_queue", "waiting_reason"]

log = structlog.get_logger(__name__)

READ_BLOCK_S = 0.5  # how long one read of an attempt's stream waits for events
PLACE_POLL_S = 1.0  # how often a waiting job looks for a worker again
CANCEL_AGAIN_S = 5.0  # a cancel not answered yet is published again this often
LOST_CHECKS = 2  # reads in a row that find a claimed attempt without its liveness key
# Each followed attempt holds one connection in a blocking read (redis-py's default pool
# stops at 100): up to this many attempts at once per server (Redis' maxclients: 10,000).
MAX_CONNECTIONS = 5000
BROKER_LOST = "runner_system_failure: the broker (Redis) did not answer"


class FleetClient:
    """The server's connections to the fleet: the Celery app (to send) and a redis.asyncio
    client (to read events and the registry). One per server; `close` at shutdown."""

    def __init__(self, broker_url: str) -> None:
        from redis.asyncio import Redis

        self.app: Celery = celery_app(broker_url)
        self.redis: Redis = Redis.from_url(
            broker_url,
            decode_responses=True,
            health_check_interval=10,
            retry_on_timeout=True,
            max_connections=MAX_CONNECTIONS,
        )
        # The server is stopping and leaves the attempts running on their workers (a
        # restart re-attaches): cancelled followers send no cancel.
        self.is_detaching = False

    def send(self, spec: AttemptSpec, origin: Mapping[str, str]) -> None:
        """Send the attempt to its queue (a blocking call: run it in a thread)."""
        self.app.send_task(
            ATTEMPT_TASK,
            kwargs={"spec": attempt_spec_to_dict(spec), "origin": dict(origin)},
            queue=job_queue(spec),
            task_id=attempt_of(spec),
        )

    async def close(self) -> None:
        await self.redis.aclose()
        self.app.close()


def job_queue(spec: AttemptSpec) -> str:
    return queue_for(spec.tags)


def waiting_reason(queue: str) -> str:
    """What a job waiting for a worker shows (its record's reason)."""
    tags = tags_of_queue(queue)
    if not tags:
        return "no worker for untagged jobs (queue default)"
    return f"no worker for tags [{', '.join(tags)}]"


class CeleryExecutor:
    """Runs the attempts of one run on the fleet (module docstring). `origin`: where the
    worker gets the files (FLEET.md: repo, clone_url, server_url, token)."""

    def __init__(
        self,
        fleet: FleetClient,
        origin: Mapping[str, str],
        *,
        pending_timeout_s: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.fleet = fleet
        self.origin = origin
        self.pending_timeout_s = pending_timeout_s
        self.clock = clock
        self._cancels: dict[tuple[str, str], asyncio.Event] = {}
        self._channels: dict[tuple[str, str], AttemptChannel] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._on_start: dict[tuple[str, str], Callable[[str], None]] = {}

    async def place(self, spec: AttemptSpec, on_waiting: Callable[[str], None]) -> str | None:
        with contextlib.suppress(*BROKER_ERRORS):  # Redis away: the loop below waits
            if await AttemptChannel(self.fleet.redis, attempt_of(spec)).is_claimed():
                return None  # a worker took it before a server restart: `run` follows it
        queue = job_queue(spec)
        deadline = time.monotonic() + self.pending_timeout_s
        is_told = False
        while True:
            with contextlib.suppress(*BROKER_ERRORS):  # Redis away: no worker seen
                workers = await list_workers(self.fleet.redis)
                if has_live_worker(workers, queue, self.clock.now()):
                    return None
            if not is_told:
                on_waiting(waiting_reason(queue))
                is_told = True
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                return STUCK_OR_TIMEOUT
            await asyncio.sleep(min(PLACE_POLL_S, left_s))

    def watch_start(self, spec: AttemptSpec, on_start: Callable[[str], None]) -> None:
        self._on_start[(spec.run_id, spec.job)] = on_start

    async def run(self, spec: AttemptSpec, on_output: OutputSink) -> AttemptResult:
        key = (spec.run_id, spec.job)
        channel = AttemptChannel(self.fleet.redis, attempt_of(spec))
        cancel = self._cancels[key] = asyncio.Event()
        self._channels[key] = channel
        try:
            return await self._follow(spec, channel, on_output, cancel)
        except asyncio.CancelledError:  # our caller is cancelled: stop the remote attempt
            if not self.fleet.is_detaching:
                with contextlib.suppress(Exception):
                    await asyncio.shield(channel.request_cancel())
            raise
        finally:
            self._cancels.pop(key, None)
            self._channels.pop(key, None)
            self._on_start.pop(key, None)

    def cancel(self, run_id: str, job: str) -> None:
        key = (run_id, job)
        event, channel = self._cancels.get(key), self._channels.get(key)
        if event is None or channel is None:
            return
        event.set()
        task = asyncio.get_running_loop().create_task(channel.request_cancel())
        self._sending.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:  # Redis away: the follower
            log.warning("fleet.cancel_not_sent", error=type(task.exception()).__name__)

    async def _follow(
        self,
        spec: AttemptSpec,
        channel: AttemptChannel,
        on_output: OutputSink,
        cancel: asyncio.Event,
    ) -> AttemptResult:
        redis = self.fleet.redis

        async def send_once() -> None:  # not again when a worker has it (a restart)
            if not await channel.is_claimed() and not await redis.exists(channel.stream):
                await asyncio.to_thread(self.fleet.send, spec, self.origin)

        await with_broker(send_once)
        queue = job_queue(spec)
        after, worker, line = "0", "", spec.first_line - 1
        lost_checks = 0
        unplaced_since: float | None = None
        lost_broker_at: float | None = None
        cancel_sent_at = time.monotonic()

        def ended(status: Status, reason: str | None = None) -> AttemptResult:
            return AttemptResult(status, (), line, reason=reason, worker=worker or "-")

        while True:
            try:
                events = await channel.read(after, int(READ_BLOCK_S * 1000))
                lost_broker_at = None
                for event in events:
                    after = event.stream_id
                    if event.kind == OUTPUT:
                        fresh = [r for r in event.records if r.n > line]
                        if fresh:
                            line = fresh[-1].n
                            on_output(fresh)
                    elif event.kind == STARTED:
                        worker = event.worker
                        on_start = self._on_start.pop((spec.run_id, spec.job), None)
                        if on_start is not None:
                            on_start(worker)
                    elif event.kind == RESULT and event.result is not None:
                        await channel.forget()
                        return event.result
                if events:
                    lost_checks = 0
                    continue
                if not await channel.is_claimed():  # still queued
                    if cancel.is_set():
                        return ended(Status.CANCELED)
                    workers = await list_workers(redis)
                    if has_live_worker(workers, queue, self.clock.now()):
                        unplaced_since = None
                    elif unplaced_since is None:
                        unplaced_since = time.monotonic()
                    elif time.monotonic() - unplaced_since >= self.pending_timeout_s:
                        await channel.request_cancel()  # a late pick-up drops it
                        return ended(Status.FAILED, STUCK_OR_TIMEOUT)
                    continue
                if cancel.is_set() and time.monotonic() - cancel_sent_at > CANCEL_AGAIN_S:
                    cancel_sent_at = time.monotonic()  # `cancel` sent it too: once more,
                    await channel.request_cancel()  # in case Redis was away then
                if await channel.is_alive():
                    lost_checks = 0
                    continue
                lost_checks += 1
                if lost_checks >= LOST_CHECKS and not await redis.exists(channel.alive):
                    last = await channel.read(after, None)
                    if any(e.kind == RESULT for e in last):
                        continue  # the result came just now: read it on the next turn
                    await channel.request_cancel()  # should the worker come back: stop
                    return ended(Status.FAILED, RUNNER_INTERRUPTED)
            except BROKER_ERRORS:
                if lost_broker_at is None:
                    lost_broker_at = time.monotonic()
                    log.warning("fleet.broker_unavailable", attempt=channel.aid)
                elif time.monotonic() - lost_broker_at > BROKER_PATIENCE_S:
                    return ended(Status.FAILED, BROKER_LOST)
                await asyncio.sleep(BROKER_RETRY_S)
