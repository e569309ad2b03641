"""The scheduler across the Executor boundary, with the scripted executor and a fake clock:
what it hands over, how a stop reaches the attempts (a cancel message each), and whose
time the records carry."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from conveyor.engine.executor import AttemptResult, AttemptSpec, OutputSink
from conveyor.engine.scheduler import RunControls, RunSetup, execute_run
from conveyor.model import JobRecord, RunRecord, Status
from tests.fakes.clock import FakeClock
from tests.fakes.executor import ScriptedExecutor
from tests.fakes.memory_logs import MemoryLogs
from tests.fakes.memory_store import MemoryRunStore
from tests.integration.engine.helpers import job, make_plan, planned, statuses


async def _execute(
    tmp_path: Path,
    *jobs: object,
    executor: ScriptedExecutor,
    clock: FakeClock | None = None,
    cancel: asyncio.Event | None = None,
    store: MemoryRunStore | None = None,
) -> RunRecord:
    store = store or MemoryRunStore()
    plan = make_plan(*jobs)  # type: ignore[arg-type]
    run = store.create_run(
        RunRecord("r1", "t", "main", "", plan.event.kind, Status.PENDING, datetime.now(UTC))
    )
    setup = RunSetup(
        store=store,
        logs=MemoryLogs(),
        workspace=tmp_path,
        run_dir=tmp_path / "run",
        concurrency=2,
        secrets={"TOKEN": "s3cr3t-value"},
        base_env=os.environ,
        executor=executor,
        clock=clock or FakeClock(),
    )
    return await execute_run(plan, run, setup, controls=RunControls(cancel=cancel))


async def test_scheduler_hands_each_attempt_over_as_a_spec(tmp_path: Path) -> None:
    executor = ScriptedExecutor()
    build = job("build", "echo hi", secrets=("TOKEN",), timeout_s=42.0)
    record = await _execute(tmp_path, planned(build), executor=executor)
    (spec,) = executor.specs
    assert statuses(record) == {"build": "success"}
    assert record.jobs[0].worker == "fake"  # the job record names where its attempt ran
    assert (spec.job, spec.attempt, spec.first_line, spec.timeout_s) == ("build", 1, 1, 42.0)
    assert (spec.env["CONVEYOR_ATTEMPT"], spec.workspace.job_dir) == ("1", str(tmp_path))
    assert (spec.secrets, spec.mask) == ({"TOKEN": "s3cr3t-value"}, ("s3cr3t-value",))


async def test_scheduler_retry_numbers_lines_after_the_previous_attempt(tmp_path: Path) -> None:
    from conveyor.model import Retry

    executor = ScriptedExecutor()
    flaky = job("flaky", "echo try\nexit 1", retry=Retry(max=1))
    await _execute(tmp_path, planned(flaky), executor=executor)
    first, second = executor.specs
    # attempt 1 wrote "try" and its failure line, the scheduler "retrying" and "attempt 2"
    assert (first.first_line, second.first_line, second.attempt) == (1, 5, 2)


async def test_scheduler_stop_sends_a_cancel_message_per_running_attempt(tmp_path: Path) -> None:
    executor, cancel = ScriptedExecutor(), asyncio.Event()
    slow = (planned(job("a", "sleep 30")), planned(job("b", "sleep 30")))
    running = asyncio.ensure_future(_execute(tmp_path, *slow, executor=executor, cancel=cancel))
    while len(executor.specs) < 2:
        await asyncio.sleep(0.01)
    cancel.set()
    async with asyncio.timeout(10):
        record = await running
    assert sorted(executor.cancels) == [("r1", "a"), ("r1", "b")]
    assert (record.status, statuses(record)) == (
        Status.CANCELED,
        {"a": "canceled", "b": "canceled"},
    )


async def test_scheduler_records_carry_the_clock_time(tmp_path: Path) -> None:
    clock = FakeClock()
    record = await _execute(
        tmp_path, planned(job("a", "exit 0")), executor=ScriptedExecutor(), clock=clock
    )
    assert record.started_at == record.finished_at == clock.now()
    assert record.jobs[0].started_at == clock.now()


class PlacingExecutor(ScriptedExecutor):
    """The scripted executor as an engine.executor.Placement: it places nothing until
    `worker_up` is set (or answers `failure`), and reports each start on `fake`."""

    def __init__(self, failure: str | None = None) -> None:
        super().__init__()
        self.failure = failure
        self.worker_up = asyncio.Event()
        self.starts: dict[tuple[str, str], Callable[[str], None]] = {}
        self.store: MemoryRunStore | None = None
        self.running_records: list[JobRecord] = []

    async def place(self, spec: AttemptSpec, on_waiting: Callable[[str], None]) -> str | None:
        if self.worker_up.is_set():
            return None
        on_waiting("no worker for tags [gpu]")
        if self.failure is not None:
            return self.failure
        await self.worker_up.wait()
        return None

    def watch_start(self, spec: AttemptSpec, on_start: Callable[[str], None]) -> None:
        self.starts[(spec.run_id, spec.job)] = on_start

    async def run(self, spec: AttemptSpec, on_output: OutputSink) -> AttemptResult:
        self.starts.pop((spec.run_id, spec.job))(self.worker)  # it starts on `fake`
        run = self.store.get_run(spec.run_id) if self.store is not None else None
        if run is not None:
            self.running_records.extend(run.jobs)
        return await super().run(spec, on_output)


async def test_a_job_waits_pending_with_the_reason_until_a_worker_can_take_it(
    tmp_path: Path,
) -> None:
    executor = PlacingExecutor()
    store = executor.store = MemoryRunStore()
    running = asyncio.ensure_future(
        _execute(tmp_path, planned(job("train", "echo hi")), executor=executor, store=store)
    )

    def jobs() -> tuple[JobRecord, ...]:
        run = store.get_run("r1")
        return run.jobs if run is not None else ()

    async with asyncio.timeout(10):
        while not jobs() or jobs()[0].reason is None:
            await asyncio.sleep(0.01)
    waiting = jobs()[0]
    assert (waiting.status, waiting.reason, executor.specs) == (
        Status.PENDING, "no worker for tags [gpu]", [],
    )  # fmt: skip
    executor.worker_up.set()
    async with asyncio.timeout(10):
        record = await running
    assert (statuses(record), record.jobs[0].worker) == ({"train": "success"}, "fake")
    (seen,) = executor.running_records  # the running record names its worker
    assert (seen.status, seen.worker) == (Status.RUNNING, "fake")


async def test_a_job_no_worker_takes_fails_with_the_placement_reason(tmp_path: Path) -> None:
    executor = PlacingExecutor(failure="stuck_or_timeout_failure")
    record = await _execute(tmp_path, planned(job("train", "echo hi")), executor=executor)
    assert (record.status, record.jobs[0].status) == (Status.FAILED, Status.FAILED)
    assert record.jobs[0].reason == "stuck_or_timeout_failure"
    assert executor.specs == []  # never handed over


async def test_a_run_stopped_while_a_job_waits_for_a_worker_cancels_it(tmp_path: Path) -> None:
    executor, cancel = PlacingExecutor(), asyncio.Event()
    running = asyncio.ensure_future(
        _execute(tmp_path, planned(job("train", "echo hi")), executor=executor, cancel=cancel)
    )
    await asyncio.sleep(0.05)
    cancel.set()
    async with asyncio.timeout(10):
        record = await running
    assert (record.status, statuses(record)) == (Status.CANCELED, {"train": "canceled"})
