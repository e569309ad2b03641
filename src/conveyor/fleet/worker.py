"""A fleet worker: a Celery worker that runs `conveyor.attempt` tasks on this host.

    worker = FleetWorker(name, queues, concurrency, broker_url, host, grace_s=600)
    exit_code = worker.serve()      # blocks until SIGTERM/SIGINT and its running jobs end

Process model: Celery's `threads` pool (concurrency N: N attempts at once) hands each task
to ONE asyncio loop that this worker runs in a thread of its own; the task's thread waits
for the attempt there. The attempt runs through `host` (fleet.host.AttemptHost: checkout,
files from the server, engine.local.LocalExecutor), whose steps each run in their own
session and process group (engine.runner), so a cancel stops the whole group, and the
Celery process never forks jobs of its own. The same loop sends heartbeats into the
registry (fleet.registry) every second and listens to the cancel channel: a cancel
published for an attempt running here reaches `host.cancel` at once (and a cancel key is
also checked every second, for one published before the attempt started).

One attempt: the liveness key is set, the claim taken (a message delivered twice is
dropped: never run twice), `started` written, then the output in batches (every
OUTPUT_BATCH_S) and the result (fleet.events). A task is acknowledged when it ends
(fleet.app: acks late).

SIGTERM (or SIGINT): Celery stops taking tasks and waits for the running ones (its warm
shutdown); after `grace_s` the worker cancels them, and they are recorded `canceled` with
the reason `worker shutdown`. Must not: touch the database or decide job outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from conveyor.clock import SYSTEM_CLOCK, Clock
from conveyor.engine.executor import (
    AttemptResult,
    AttemptSpec,
    OutputSink,
    attempt_spec_from_dict,
)
from conveyor.fleet.app import ATTEMPT_TASK, celery_app
from conveyor.fleet.events import (
    ALIVE_EVERY_S,
    BROKER_ERRORS,
    BROKER_RETRY_S,
    CANCEL_CHANNEL,
    AttemptChannel,
    attempt_of,
    with_broker,
)
from conveyor.fleet.registry import (
    HEARTBEAT_EVERY_S,
    WorkerInfo,
    publish_worker,
    remove_worker,
)
from conveyor.fleet.routing import consumed_queues
from conveyor.masking import Masker
from conveyor.model import LogRecord, Status

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["SHUTDOWN_REASON", "AttemptRunner", "FleetWorker"]

log = structlog.get_logger(__name__)

OUTPUT_BATCH_S = 0.05  # output lines written within this time go out as one stream entry
SHUTDOWN_REASON = "worker shutdown"


class AttemptRunner(Protocol):
    """What runs an attempt on this host (fleet.host.AttemptHost, or a local stand-in in
    tests): Executor semantics, with the task's origin (FLEET.md) as data."""

    async def run(
        self, spec: AttemptSpec, origin: Mapping[str, Any], on_output: OutputSink
    ) -> AttemptResult: ...

    def cancel(self, run_id: str, job: str) -> None: ...

    async def prepare(self) -> None:
        """Once, on the worker's loop, before the first attempt (leftovers of a killed
        worker removed)."""
        ...

    async def close(self) -> None:
        """Once, on the worker's loop, after the last attempt (its clients closed)."""
        ...


class _Outbox:
    """An attempt's output on its way to the stream: batched, in order."""

    def __init__(self, channel: AttemptChannel, last_line: int) -> None:
        self.channel = channel
        self.last_line = last_line
        self.pending: list[LogRecord] = []
        self.task: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()

    def add(self, records: Sequence[LogRecord]) -> None:
        if records:
            self.last_line = records[-1].n
        self.pending.extend(records)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._send_soon())

    async def _send_soon(self) -> None:
        await asyncio.sleep(OUTPUT_BATCH_S)
        self.task = None
        await self.send()

    async def send(self) -> None:
        async with self.lock:  # entries keep the order of the lines
            batch, self.pending = self.pending, []
            if batch:
                await with_broker(lambda: self.channel.output(batch))

    async def close(self) -> None:
        if self.task is not None:
            await self.task
        await self.send()


class FleetWorker:
    """One `conveyor worker` process (module docstring)."""

    def __init__(
        self,
        name: str,
        queues: Sequence[str],
        concurrency: int,
        broker_url: str,
        host: AttemptRunner,
        *,
        grace_s: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.name = name
        self.queues = tuple(queues) or ("default",)
        self.consumed = consumed_queues(self.queues)
        self.concurrency = concurrency
        self.broker_url = broker_url
        self.host = host
        self.grace_s = grace_s
        self.clock = clock
        self.running: dict[str, AttemptSpec] = {}
        self.is_stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._redis: Redis | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._background: list[asyncio.Task[None]] = []

    # ---------------------------------------------------------------- the loop thread
    def start(self) -> None:
        """Start the worker's asyncio loop (heartbeats, cancel listener) in its thread."""
        self._thread = threading.Thread(target=self._loop_main, name="fleet-loop", daemon=True)
        self._thread.start()
        self._ready.wait()
        self.call(self.host.prepare()).result()

    def stop(self) -> None:
        """Leave the registry and stop the loop (after Celery has stopped)."""
        loop = self.loop
        if loop is None:
            return
        with contextlib.suppress(Exception):
            self.call(self._leave()).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.loop = None

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if self.loop is None:
            raise RuntimeError("fleet worker: the loop is not running")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def _loop_main(self) -> None:
        from redis.asyncio import Redis

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        self._redis = Redis.from_url(
            self.broker_url,
            decode_responses=True,
            health_check_interval=10,
            max_connections=max(100, 4 * self.concurrency + 10),
        )
        self._background = [
            loop.create_task(self._heartbeats()),
            loop.create_task(self._listen_cancels()),
        ]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            for task in self._background:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*self._background, return_exceptions=True))
            loop.run_until_complete(self._redis.aclose())
            loop.close()

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("fleet worker: not started")
        return self._redis

    # ---------------------------------------------------------------- registry, cancels
    def info(self) -> WorkerInfo:
        return WorkerInfo(
            name=self.name,
            queues=self.queues,
            concurrency=self.concurrency,
            running=tuple(sorted(self.running)),
            heartbeat_at=self.clock.now(),
            hostname=socket.gethostname(),
            pid=os.getpid(),
        )

    async def _heartbeats(self) -> None:
        while True:
            try:
                if not self.is_stopping:
                    await publish_worker(self.redis, self.info())
            except BROKER_ERRORS as exc:  # the broker away: try again next beat
                log.warning("worker.heartbeat_failed", worker=self.name, error=type(exc).__name__)
            await asyncio.sleep(HEARTBEAT_EVERY_S)

    async def _leave(self) -> None:
        try:
            await remove_worker(self.redis, self.name)
        finally:
            await self.host.close()

    async def _listen_cancels(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(CANCEL_CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._cancel_here(str(message["data"]))
            except asyncio.CancelledError:
                raise
            except BROKER_ERRORS as exc:  # the broker away: subscribe again
                log.warning(
                    "worker.cancel_listen_failed", worker=self.name, error=type(exc).__name__
                )
                await asyncio.sleep(BROKER_RETRY_S)

    def _cancel_here(self, aid: str) -> None:
        spec = self.running.get(aid)
        if spec is not None:
            log.info("worker.cancel", worker=self.name, attempt=aid)
            self.host.cancel(spec.run_id, spec.job)

    def cancel_all(self) -> None:
        """Cancel every running attempt (the grace period is over)."""
        for aid in list(self.running):
            self._cancel_here(aid)

    # ---------------------------------------------------------------- one attempt
    def run_task(self, spec_data: Mapping[str, Any], origin: Mapping[str, Any]) -> None:
        """The body of task `conveyor.attempt`, in a Celery pool thread."""
        self.call(self.attempt(spec_data, origin)).result()

    async def attempt(self, spec_data: Mapping[str, Any], origin: Mapping[str, Any]) -> None:
        spec = attempt_spec_from_dict(spec_data)
        aid = attempt_of(spec)
        channel = AttemptChannel(self.redis, aid)
        await with_broker(lambda: channel.mark_alive(self.name))
        if not await with_broker(lambda: channel.try_claim(self.name)):
            log.info("worker.attempt_dropped", worker=self.name, attempt=aid)
            return
        self.running[aid] = spec
        keeper = asyncio.create_task(self._keep_alive(channel, spec))
        try:
            await with_broker(lambda: channel.started(self.name))
            log.info("worker.attempt_started", worker=self.name, attempt=aid)
            result = await self._run(spec, origin, channel)
            done = result._replace(worker=self.name)
            await with_broker(lambda: channel.finished(done))
            log.info("worker.attempt_finished", worker=self.name, attempt=aid,
                     status=str(result.status))  # fmt: skip
        finally:
            keeper.cancel()
            self.running.pop(aid, None)

    async def _run(
        self, spec: AttemptSpec, origin: Mapping[str, Any], channel: AttemptChannel
    ) -> AttemptResult:
        if await with_broker(channel.is_cancel_requested):
            return AttemptResult(Status.CANCELED, (), spec.first_line - 1)
        outbox = _Outbox(channel, spec.first_line - 1)
        try:
            result = await self.host.run(spec, origin, outbox.add)
        except Exception as exc:  # the per-attempt guard: the worker failed, not the job
            log.error("worker.attempt_crashed", worker=self.name, exc_info=True)
            reason = Masker(spec.mask).mask(f"worker {self.name}: {type(exc).__name__}: {exc}")
            await outbox.close()
            return AttemptResult(Status.FAILED, (), outbox.last_line, reason=reason)
        await outbox.close()
        if self.is_stopping and result.status is Status.CANCELED:
            return result._replace(reason=SHUTDOWN_REASON)
        return result

    async def _keep_alive(self, channel: AttemptChannel, spec: AttemptSpec) -> None:
        while True:
            await asyncio.sleep(ALIVE_EVERY_S)
            try:
                await channel.mark_alive(self.name)
                if await channel.is_cancel_requested():
                    self.host.cancel(spec.run_id, spec.job)
            except BROKER_ERRORS as exc:  # the broker away: the job goes on; beat again
                log.warning("worker.alive_failed", worker=self.name, error=type(exc).__name__)

    # ---------------------------------------------------------------- Celery
    def serve(self, *, loglevel: str = "WARNING") -> int:
        """Run the Celery worker until it is stopped (module docstring); its exit code."""
        from celery.signals import worker_shutting_down

        app = celery_app(self.broker_url, name="conveyor-worker")

        @app.task(name=ATTEMPT_TASK, acks_late=True)  # type: ignore[untyped-decorator]  # Celery is untyped
        def attempt(spec: dict[str, Any], origin: dict[str, Any]) -> None:
            self.run_task(spec, origin)

        def shutting_down(**_: object) -> None:
            self.begin_shutdown()

        worker_shutting_down.connect(shutting_down, weak=False)
        self.start()
        try:
            worker = app.Worker(
                hostname=f"{self.name}@{socket.gethostname()}",
                pool_cls="threads",
                concurrency=self.concurrency,
                queues=list(self.consumed),
                loglevel=loglevel,
                quiet=True,
                without_heartbeat=True,
                without_mingle=True,
                without_gossip=True,
                optimization="fair",
            )
            worker.start()
            return int(worker.exitcode or 0)
        finally:
            worker_shutting_down.disconnect(shutting_down)
            self.stop()

    def begin_shutdown(self) -> None:
        """Celery stops taking tasks; running attempts get `grace_s`, then are canceled."""
        if self.is_stopping:
            return
        self.is_stopping = True
        log.info("worker.stopping", worker=self.name, running=len(self.running),
                 grace_s=self.grace_s)  # fmt: skip
        timer = threading.Timer(self.grace_s, self._grace_over)
        timer.daemon = True
        timer.start()

    def _grace_over(self) -> None:
        loop = self.loop
        if loop is not None and self.running:
            log.warning("worker.grace_passed", worker=self.name, canceling=sorted(self.running))
            loop.call_soon_threadsafe(self.cancel_all)
