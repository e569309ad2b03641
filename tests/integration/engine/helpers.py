"""Small Plans built straight from model classes, and runs on the in-memory fakes, for engine
tests."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.engine.runner import LocalRunner, ProcessGroups
from conveyor.engine.scheduler import RunControls, RunSetup, execute_run
from conveyor.model import (
    Event,
    EventKind,
    Job,
    Mark,
    Pipeline,
    Plan,
    PlannedJob,
    RunRecord,
    Status,
    Step,
    When,
)
from tests.fakes.memory_logs import MemoryLogs
from tests.fakes.memory_store import MemoryRunStore

MARK = Mark(".conveyor.yml", 1, 1)


def job(name: str, *runs: str, stage: str = "test", **fields: Any) -> Job:
    steps = tuple(Step(name=run, run=run) for run in runs)
    return Job(name=name, stage=stage, steps=steps, mark=MARK, **fields)


def planned(
    j: Job,
    depends_on: tuple[str, ...] = (),
    *,
    when: When = When.ON_SUCCESS,
    allow_failure: bool | None = None,
    artifacts_from: tuple[str, ...] = (),
    start_in_s: float | None = None,
) -> PlannedJob:
    return PlannedJob(
        job=j,
        depends_on=depends_on,
        artifacts_from=artifacts_from,
        when=when,
        allow_failure=j.allow_failure if allow_failure is None else allow_failure,
        start_in_s=start_in_s,
    )


def make_plan(*jobs: PlannedJob, event: Event | None = None, **pipeline: Any) -> Plan:
    pipe = Pipeline(name="t", file=".conveyor.yml", jobs=tuple(p.job for p in jobs), **pipeline)
    return Plan(pipe, event or Event(kind=EventKind.PUSH, ref="main", sha=""), tuple(jobs))


async def run_plan(
    plan: Plan,
    tmp_path: Path,
    *,
    store: MemoryRunStore | None = None,
    logs: MemoryLogs | None = None,
    concurrency: int = 4,
    secrets: Mapping[str, str] | None = None,
    play: frozenset[str] = frozenset(),
    cancel: asyncio.Event | None = None,
    workspace: Path | None = None,
) -> tuple[RunRecord, MemoryRunStore, MemoryLogs]:
    store = store or MemoryRunStore()
    logs = logs or MemoryLogs()
    run = store.create_run(
        RunRecord(
            run_id="r1",
            repo="t",
            ref=plan.event.ref,
            sha=plan.event.sha,
            event=plan.event.kind,
            status=Status.PENDING,
            created_at=datetime.now(UTC),
        )
    )
    ws = workspace or tmp_path / "ws"
    ws.mkdir(parents=True, exist_ok=True)
    record = await execute_run(
        plan,
        run,
        RunSetup(
            store=store,
            logs=logs,
            workspace=ws,
            run_dir=tmp_path / "run",
            concurrency=concurrency,
            secrets=secrets or {},
            base_env=os.environ,
            play=play,
            runner=LocalRunner(store=store, grace_s=0.3, groups=ProcessGroups()),
            grace_s=0.3,
        ),
        controls=RunControls(
            cancel=cancel,
        ),
    )
    return record, store, logs


def run_setup(store: MemoryRunStore, workspace: Path, **fields: Any) -> RunSetup:
    """A RunSetup for engine tests: a fresh MemoryLogs, the run folder beside `workspace`,
    concurrency 2, no secrets, conveyor's environment; `fields` override."""
    workspace.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "store": store,
        "logs": MemoryLogs(),
        "workspace": workspace,
        "run_dir": workspace.parent / "run",
        "concurrency": 2,
        "secrets": {},
        "base_env": os.environ,
        **fields,
    }
    return RunSetup(**values)


def statuses(record: RunRecord) -> dict[str, str]:
    return {j.name: str(j.status) for j in record.jobs}
