"""A real fleet worker (Celery, threads pool, the broker of a test) in a subprocess, whose
attempts run through a LocalExecutor on the spec's own folders (a shared-disk stand-in for
fleet.host.AttemptHost: the executor conformance test's specs name no repository).

    python -m tests.fleet_worker REDIS_URL NAME QUEUE...     # runs until SIGTERM

`start_fleet_worker` starts one and waits until it is in the registry. Must not reach into
conveyor's internals beyond the worker's public parts.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
from conveyor.engine.executor import AttemptResult, AttemptSpec, OutputSink
from conveyor.engine.local import LocalExecutor
from conveyor.engine.runner import LocalRunner, ProcessGroups
from conveyor.engine.workspace import JobWorkspaces

__all__ = ["SharedDiskHost", "start_fleet_worker"]

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0


class SharedDiskHost:
    """Runs an attempt with LocalExecutor in the folders its spec names."""

    def __init__(self) -> None:
        self.executors: dict[tuple[str, str], LocalExecutor] = {}

    async def run(
        self, spec: AttemptSpec, origin: Mapping[str, Any], on_output: OutputSink
    ) -> AttemptResult:
        source = spec.workspace
        run_dir = Path(source.job_dir).parent / f".fleet-run-{spec.job}-{spec.attempt}"
        workspaces = JobWorkspaces(
            Path(source.directory), isolate=source.isolate, sha=source.sha, root=run_dir / "work"
        )
        executor = LocalExecutor(LocalRunner(grace_s=0.3, groups=ProcessGroups()), workspaces,
                                 run_dir, None)  # fmt: skip
        self.executors[(spec.run_id, spec.job)] = executor
        try:
            return await executor.run(spec, on_output)
        finally:
            self.executors.pop((spec.run_id, spec.job), None)
            await workspaces.close()

    def cancel(self, run_id: str, job: str) -> None:
        executor = self.executors.get((run_id, job))
        if executor is not None:
            executor.cancel(run_id, job)

    async def prepare(self) -> None:
        return None

    async def close(self) -> None:
        return None


def start_fleet_worker(
    redis_url: str,
    name: str,
    queues: tuple[str, ...],
    concurrency: int = 4,
    *,
    quiet: bool = False,
) -> subprocess.Popen[bytes]:
    """A worker subprocess, registered (heartbeat seen) before this returns; `quiet`: its
    log lines go nowhere (benches)."""
    argv = [sys.executable, "-m", "tests.fleet_worker", redis_url, name, str(concurrency), *queues]
    out = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(
        argv, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=out
    )
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while not client.hexists("conveyor:workers", name):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"fleet worker {name} did not start")
            time.sleep(0.05)
    finally:
        client.close()
    return process


def stop_fleet_worker(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: list[str]) -> int:
    from conveyor.fleet.worker import FleetWorker

    url, name, concurrency, *queues = argv
    worker = FleetWorker(name, queues, int(concurrency), url, SharedDiskHost(), grace_s=2.0)
    return worker.serve()


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    sys.exit(main(sys.argv[1:]))
