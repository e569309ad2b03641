"""The Redis-restart fault, with a redis-server of the test's own that keeps its data
(append-only file, as docs/workers.md asks of a production broker): a job queued before
the restart runs after it, and a job running across it is recorded, its lines once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import redis
from conveyor.engine.executor import AttemptSpec, WorkspaceSource
from conveyor.fleet.executor import CeleryExecutor, FleetClient
from conveyor.model import LogRecord, Status, Step
from tests.fleet_worker import start_fleet_worker, stop_fleet_worker
from tests.redis import RedisServer, start_redis


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "redis", appendonly=True)
    yield server
    server.stop()


def _spec(tmp_path: Path, job: str, script: str) -> AttemptSpec:
    return AttemptSpec(
        run_id="rr", job=job, attempt=1, first_line=1,
        workspace=WorkspaceSource(str(tmp_path), False, "", str(tmp_path)),
        env={"PATH": os.environ["PATH"]}, steps=(Step("s", script),),
    )  # fmt: skip


async def test_a_job_queued_before_a_redis_restart_runs_after_it(
    broker: RedisServer, tmp_path: Path
) -> None:
    fleet = FleetClient(broker.url())
    lines: list[LogRecord] = []
    running = asyncio.ensure_future(
        CeleryExecutor(fleet, {}, pending_timeout_s=60).run(
            _spec(tmp_path, "queued", "echo survived"), lines.extend
        )
    )
    client = redis.Redis.from_url(broker.url())
    async with asyncio.timeout(10):
        while not client.llen("default"):
            await asyncio.sleep(0.02)
    client.close()
    await asyncio.to_thread(broker.restart)
    worker = await asyncio.to_thread(start_fleet_worker, broker.url(), "after", ("default",))
    try:
        async with asyncio.timeout(30):
            result = await running
    finally:
        await asyncio.to_thread(stop_fleet_worker, worker)
        await fleet.close()
    assert result.status is Status.SUCCESS
    assert [r.text for r in lines] == ["survived"]


async def test_a_job_running_across_a_redis_restart_is_recorded_once(
    broker: RedisServer, tmp_path: Path
) -> None:
    fleet = FleetClient(broker.url())
    worker = await asyncio.to_thread(start_fleet_worker, broker.url(), "through", ("default",))
    lines: list[LogRecord] = []
    spec = _spec(tmp_path, "across", "echo one; sleep 1.5; echo two")
    running = asyncio.ensure_future(
        CeleryExecutor(fleet, {}, pending_timeout_s=60).run(spec, lines.extend)
    )
    try:
        async with asyncio.timeout(20):
            while not lines:
                await asyncio.sleep(0.02)
        await asyncio.to_thread(broker.restart)
        async with asyncio.timeout(30):
            result = await running
    finally:
        await asyncio.to_thread(stop_fleet_worker, worker)
        await fleet.close()
    assert result.status is Status.SUCCESS
    assert [(r.n, r.text) for r in lines] == [(1, "one"), (2, "two")]
