"""The registry of workers: the Redis hash `conveyor:workers`, name → JSON
{queues, concurrency, running: [attempt ids], heartbeat_at, hostname, pid}.

Each `conveyor worker` writes its entry every HEARTBEAT_EVERY_S and removes it when it
stops; the server reads it to know whether a live worker consumes a job's queue (a job
waits `pending`, reason `no worker for tags [gpu]`, until one does) and for
`GET /api/v1/workers`. A worker is live while its last heartbeat is younger than
STALE_AFTER_S (by the reader's clock: the hosts' clocks are assumed NTP-synchronised, to
well under that margin). Must not: run jobs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from conveyor.fleet.routing import consumed_queues
from conveyor.records import format_ts, parse_ts

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "HEARTBEAT_EVERY_S",
    "STALE_AFTER_S",
    "WORKERS_KEY",
    "WorkerInfo",
    "has_live_worker",
    "list_workers",
    "publish_worker",
    "remove_worker",
    "worker_to_dict",
]

WORKERS_KEY = "conveyor:workers"
HEARTBEAT_EVERY_S = 1.0
STALE_AFTER_S = 10.0


class WorkerInfo(NamedTuple):
    name: str
    queues: tuple[str, ...]  # the tags it was started with (`--queue`)
    concurrency: int
    running: tuple[str, ...]  # attempt ids
    heartbeat_at: datetime
    hostname: str
    pid: int

    def is_live(self, now: datetime) -> bool:
        return now - self.heartbeat_at < timedelta(seconds=STALE_AFTER_S)


def worker_to_dict(info: WorkerInfo) -> dict[str, Any]:
    return {**info._asdict(), "queues": list(info.queues), "running": list(info.running),
            "heartbeat_at": format_ts(info.heartbeat_at)}  # fmt: skip


def _worker_from_json(text: str | bytes) -> WorkerInfo | None:
    try:
        data = json.loads(text)
        heartbeat_at = parse_ts(data["heartbeat_at"])
        if heartbeat_at is None:
            return None
        return WorkerInfo(
            name=str(data["name"]),
            queues=tuple(data["queues"]),
            concurrency=int(data["concurrency"]),
            running=tuple(data["running"]),
            heartbeat_at=heartbeat_at,
            hostname=str(data["hostname"]),
            pid=int(data["pid"]),
        )
    except (ValueError, KeyError, TypeError):  # an entry of another version: not a worker
        return None


async def publish_worker(redis: Redis, info: WorkerInfo) -> None:
    await redis.hset(WORKERS_KEY, info.name, json.dumps(worker_to_dict(info)))


async def remove_worker(redis: Redis, name: str) -> None:
    await redis.hdel(WORKERS_KEY, name)


async def list_workers(redis: Redis) -> list[WorkerInfo]:
    """Every registered worker, by name (stale ones included: the reader decides)."""
    entries = await redis.hgetall(WORKERS_KEY)
    workers = (_worker_from_json(text) for text in entries.values())
    return sorted((w for w in workers if w is not None), key=lambda w: w.name)


def has_live_worker(workers: Iterable[WorkerInfo], queue: str, now: datetime) -> bool:
    """Whether a live worker consumes `queue` (fleet.routing)."""
    return any(w.is_live(now) and queue in consumed_queues(w.queues) for w in workers)
