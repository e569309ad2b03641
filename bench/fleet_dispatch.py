"""Fleet figure 1 (issue 10): what sending a job through Celery costs.

200 attempts of `true`, one after the other, through `fleet.executor.CeleryExecutor` with
ONE real worker process (Celery, threads pool, a real redis-server on loopback), against
the same 200 attempts through `engine.local.LocalExecutor` in this process. The worker
runs each attempt with a LocalExecutor on the spec's folder (tests/fleet_worker.py:
the dispatch is measured, not a checkout). Goal: at most 15 ms extra per job.

    .venv/bin/python bench/fleet_dispatch.py [--jobs 200] [--concurrency 1] [--rounds 5]

Extra per job = (Celery wall time - local wall time) / jobs, medians of rounds that
alternate local and Celery (machine load hits both alike). The helpers here (a broker, a
worker, N attempts through an executor) are shared with bench/fleet_scale.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.redis, tests.fleet_worker

from tests.fleet_worker import start_fleet_worker, stop_fleet_worker  # noqa: E402
from tests.redis import start_redis  # noqa: E402

from conveyor.engine.executor import AttemptSpec, Executor, WorkspaceSource  # noqa: E402
from conveyor.model import Step  # noqa: E402


def spec(folder: Path, n: int, script: str) -> AttemptSpec:
    return AttemptSpec(
        run_id="bench", job=f"j{n}", attempt=1, first_line=1,
        workspace=WorkspaceSource(str(folder), False, "", str(folder)),
        env={"PATH": os.environ["PATH"]}, steps=(Step("s", script),),
    )  # fmt: skip


async def run_all(executor: Executor, specs: list[AttemptSpec], concurrency: int) -> float:
    """Wall time of every spec through `executor`, `concurrency` at once; all must pass."""
    slots = asyncio.Semaphore(concurrency)

    async def one(item: AttemptSpec) -> None:
        async with slots:
            result = await executor.run(item, lambda records: None)
        if result.status != "success":
            raise RuntimeError(f"{item.job}: {result.status} {result.reason}")

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for item in specs:
            group.create_task(one(item))
    return time.perf_counter() - started


@contextlib.contextmanager
def fleet(workers: int, concurrency: int) -> Iterator[str]:
    """A redis-server and `workers` worker processes consuming `default`; its URL."""
    base = Path(tempfile.mkdtemp(prefix="cvr-bench-fleet-"))
    server = start_redis(base / "redis")
    processes = []
    try:
        for n in range(workers):
            processes.append(
                start_fleet_worker(
                    server.url(), f"bench-{n}", ("default",), concurrency, quiet=True
                )
            )
        yield server.url()
    finally:
        for process in processes:
            stop_fleet_worker(process)
        server.stop()


async def through_celery(url: str, specs: list[AttemptSpec], concurrency: int) -> float:
    from conveyor.fleet.executor import CeleryExecutor, FleetClient

    client = FleetClient(url)
    try:
        executor = CeleryExecutor(client, {}, pending_timeout_s=60)
        await run_all(executor, specs[:5], concurrency)  # connections, imports: warm
        return await run_all(executor, specs[5:], concurrency)
    finally:
        await client.close()


async def through_local(folder: Path, specs: list[AttemptSpec], concurrency: int) -> float:
    from conveyor.engine.local import LocalExecutor
    from conveyor.engine.runner import LocalRunner, ProcessGroups
    from conveyor.engine.workspace import JobWorkspaces

    workspaces = JobWorkspaces(folder, isolate=False, sha="", root=folder / "run" / "work")
    runner = LocalRunner(grace_s=0.3, groups=ProcessGroups())
    executor = LocalExecutor(runner, workspaces, folder / "run", None)
    try:
        await run_all(executor, specs[:5], concurrency)
        return await run_all(executor, specs[5:], concurrency)
    finally:
        await workspaces.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cvr-bench-dispatch-"))
    specs = [spec(folder, n, "true") for n in range(args.jobs + 5)]
    local: list[float] = []
    celery: list[float] = []
    with fleet(1, args.concurrency) as url:
        for n in range(args.rounds):  # alternating, so machine load hits both alike
            local.append(asyncio.run(through_local(folder, specs, args.concurrency)))
            round_specs = [item._replace(run_id=f"bench{n}") for item in specs]
            celery.append(asyncio.run(through_celery(url, round_specs, args.concurrency)))
    local_s, celery_s = statistics.median(local), statistics.median(celery)
    extra_ms = (celery_s - local_s) / args.jobs * 1000
    print(f"{args.jobs} jobs of `true`, concurrency {args.concurrency}, medians of {args.rounds}")
    print(f"  local executor:     {local_s:.3f} s  ({local_s / args.jobs * 1000:.2f} ms/job)")
    print(f"  Celery, one worker: {celery_s:.3f} s  ({celery_s / local_s:.2f}x)")
    print(f"  extra per job:      {extra_ms:.2f} ms  (goal <= 15 ms)")
    print(f"  rounds: local {[round(x, 2) for x in local]}, celery {[round(x, 2) for x in celery]}")


if __name__ == "__main__":
    main()
