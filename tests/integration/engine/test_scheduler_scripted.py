"""execute_run with a scripted StepRunner and an observer: no processes, exact control."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from conveyor.engine.runner import LineSink, StepResult, StepSpec
from conveyor.engine.scheduler import RunControls, execute_run
from conveyor.model import JobRecord, LogRecord, RunRecord, Status, Stream, When
from tests.fakes.memory_store import MemoryRunStore
from tests.integration.engine.helpers import job, make_plan, planned, run_setup, statuses


class ScriptedRunner:
    """Each step's script is `<exit code>` or `raise`; it prints the script first."""

    def __init__(self) -> None:
        self.specs: list[StepSpec] = []

    async def run_step(self, spec: StepSpec, on_lines: LineSink) -> StepResult:
        self.specs.append(spec)
        on_lines(Stream.STDOUT, [f"running {spec.script}"])
        if spec.script == "raise":
            raise RuntimeError("runner broke")
        return StepResult(int(spec.script))


class Recorder:
    def __init__(self) -> None:
        self.updates: list[tuple[str, Status]] = []
        self.lines: list[str] = []

    def job_updated(self, record: JobRecord) -> None:
        self.updates.append((record.name, record.status))

    def lines_written(self, job: str, records: Sequence[LogRecord]) -> None:
        self.lines.extend(f"{job}: {r.text}" for r in records)


async def _execute(
    tmp_path: Path, *jobs: object, cancel: asyncio.Event | None = None, **pipeline: object
) -> tuple[RunRecord, Recorder, ScriptedRunner]:
    store = MemoryRunStore()
    plan = make_plan(*jobs, **pipeline)  # type: ignore[arg-type]
    run = store.create_run(
        RunRecord("r1", "t", "main", "", plan.event.kind, Status.PENDING, datetime.now(UTC))
    )
    recorder, runner = Recorder(), ScriptedRunner()
    record = await execute_run(
        plan,
        run,
        run_setup(store, tmp_path / "ws", runner=runner),
        controls=RunControls(
            cancel=cancel,
            observer=recorder,
        ),
    )
    return record, recorder, runner


async def test_scripted_observer_sees_every_change_and_line(tmp_path: Path) -> None:
    _, recorder, _ = await _execute(tmp_path, planned(job("a", "0")))
    assert recorder.updates == [("a", Status.PENDING), ("a", Status.RUNNING), ("a", Status.SUCCESS)]
    assert recorder.lines == ["a: running 0"]


async def test_scripted_runner_crash_fails_job_not_run(tmp_path: Path) -> None:
    record, _, _ = await _execute(
        tmp_path, planned(job("a", "raise")), planned(job("b", "0"), ("a",))
    )
    assert statuses(record) == {"a": "failed", "b": "skipped"}
    assert record.jobs[0].reason == "conveyor error: RuntimeError: runner broke"


async def test_scripted_steps_stop_at_first_failure(tmp_path: Path) -> None:
    record, _, runner = await _execute(tmp_path, planned(job("a", "0", "2", "0")))
    steps = [(s.name, str(s.status), s.exit_code) for s in record.jobs[0].steps]
    assert (steps, len(runner.specs)) == ([("0", "success", 0), ("2", "failed", 2)], 2)


async def test_scripted_fail_fast_stops_once(tmp_path: Path) -> None:
    record, _, _ = await _execute(
        tmp_path,
        planned(job("a", "1")),
        planned(job("b", "1")),
        planned(job("c", "0"), ("a", "b"), when=When.ALWAYS),
        fail_fast=True,
    )
    assert record.status is Status.FAILED
    assert record.jobs[2].status is Status.CANCELED


async def test_scripted_cancel_during_delay(tmp_path: Path) -> None:
    cancel = asyncio.Event()
    asyncio.get_running_loop().call_later(0.1, cancel.set)
    record, _, runner = await _execute(
        tmp_path, planned(job("later", "0"), when=When.DELAYED, start_in_s=30), cancel=cancel
    )
    assert (record.status, record.jobs[0].status, runner.specs) == (
        Status.CANCELED,
        Status.CANCELED,
        [],
    )
