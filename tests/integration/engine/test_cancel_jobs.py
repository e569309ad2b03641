"""Canceling some jobs of an executing run alone (`LiveRun.cancel_jobs`, what a newer run
does to an older one's interruptible jobs): a scripted runner (no processes) and a memory
store; the cancel is made after each number of event-loop turns, from before the execution
starts to after it ended, so it lands in every gap: before the job tasks begin, while a job
waits for the job it needs, while it runs, after it ended. Whatever the moment, the run
ends, the other jobs run as they would, a canceled job never runs afterwards, and each job
it reached is `canceled` with the reason, as is the run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from conveyor.engine.live import LiveRun
from conveyor.engine.runner import LineSink, StepResult, StepSpec
from conveyor.engine.scheduler import RunControls, execute_run
from conveyor.model import Plan, RunRecord, Status, Stream, When
from tests.fakes.memory_store import MemoryRunStore
from tests.integration.engine.helpers import job, make_plan, planned, run_setup

REASON = "superseded by run r2 (a newer commit of the same branch or request)"
TURNS = 120
SLOW_TURNS = {"deploy": 40, "lint": 20}


class TurnRunner:
    """Every step succeeds after its job's number of loop turns; records which jobs began."""

    def __init__(self) -> None:
        self.began: list[str] = []

    async def run_step(self, spec: StepSpec, on_lines: LineSink) -> StepResult:
        self.began.append(spec.job)
        on_lines(Stream.STDOUT, [spec.script])
        for _ in range(SLOW_TURNS.get(spec.job, 1)):
            await asyncio.sleep(0)
        return StepResult(0)


def _plan() -> Plan:
    return make_plan(
        planned(job("deploy", "echo deploy")),  # not interruptible: runs on
        planned(job("build", "echo build")),
        planned(job("lint", "echo lint", interruptible=True), ("build",)),
        planned(job("report", "echo report", interruptible=True), ("lint",)),
        planned(job("notify", "echo notify"), ("report",)),
    )


async def _execute(plan: Plan, tmp_path: Path, live: LiveRun, runner: TurnRunner) -> RunRecord:
    store = MemoryRunStore()
    run = store.create_run(
        RunRecord("r1", "t", "main", "", plan.event.kind, Status.PENDING, datetime.now(UTC))
    )
    setup = run_setup(store, tmp_path / "ws", runner=runner)
    return await execute_run(plan, run, setup, controls=RunControls(live=live))


async def _cancel_after(turns: int, tmp_path: Path) -> tuple[RunRecord, TurnRunner, int]:
    runner, live = TurnRunner(), LiveRun()
    began_before: list[int] = []

    async def cancel() -> None:
        for _ in range(turns):
            await asyncio.sleep(0)
        began_before.append(len(runner.began))
        live.cancel_jobs(("lint", "report"), REASON)

    async with asyncio.timeout(10):
        final, _ = await asyncio.gather(_execute(_plan(), tmp_path, live, runner), cancel())
    return final, runner, began_before[0]


async def test_cancel_jobs_at_any_moment_cancels_only_those_jobs(tmp_path: Path) -> None:
    outcomes = set()
    for turns in range(TURNS):
        final, runner, began = await _cancel_after(turns, tmp_path / str(turns))
        jobs = {j.name: j for j in final.jobs}
        assert (jobs["deploy"].status, jobs["build"].status) == (
            Status.SUCCESS,
            Status.SUCCESS,
        ), turns
        for name in ("lint", "report"):
            if jobs[name].status is Status.CANCELED:
                assert jobs[name].reason == REASON, turns
                assert name not in runner.began[began:], turns  # never began afterwards
            else:
                assert jobs[name].status is Status.SUCCESS, turns
        canceled = {n for n in ("lint", "report") if jobs[n].status is Status.CANCELED}
        if canceled:
            assert (final.status, final.reason) == (Status.CANCELED, REASON), turns
            assert jobs["notify"].status is Status.SKIPPED, turns
        else:
            assert (final.status, final.reason) == (Status.SUCCESS, None), turns
        outcomes.add((jobs["lint"].status, jobs["report"].status))
    assert {
        (Status.CANCELED, Status.CANCELED),  # before lint ended (waiting or running)
        (Status.SUCCESS, Status.CANCELED),  # after lint, before report ended
        (Status.SUCCESS, Status.SUCCESS),  # after both ended: nothing left to cancel
    } <= outcomes, outcomes


async def test_cancel_jobs_before_the_execution_starts(tmp_path: Path) -> None:
    runner, live = TurnRunner(), LiveRun()
    live.cancel_jobs(("lint", "report"), REASON)
    final = await _execute(_plan(), tmp_path, live, runner)
    assert {j.name: j.status for j in final.jobs} == {
        "deploy": Status.SUCCESS,
        "build": Status.SUCCESS,
        "lint": Status.CANCELED,
        "report": Status.CANCELED,
        "notify": Status.SKIPPED,
    }
    assert sorted(runner.began) == ["build", "deploy"]


async def test_a_delayed_job_canceled_alone_does_not_hold_the_run(tmp_path: Path) -> None:
    plan = make_plan(
        planned(job("build", "echo build")),
        planned(job("later", "echo later", interruptible=True), start_in_s=300, when=When.DELAYED),
    )
    runner, live = TurnRunner(), LiveRun()

    async def cancel() -> None:
        while "build" not in runner.began:
            await asyncio.sleep(0)
        live.cancel_jobs(("later",), REASON)

    async with asyncio.timeout(10):  # far below the 300 s delay
        final, _ = await asyncio.gather(_execute(plan, tmp_path, live, runner), cancel())
    assert {j.name: (j.status, j.reason) for j in final.jobs} == {
        "build": (Status.SUCCESS, None),
        "later": (Status.CANCELED, REASON),
    }
    assert runner.began == ["build"]


async def test_a_job_canceled_alone_and_retried_runs_again(tmp_path: Path) -> None:
    # A person retries the superseded job while the run still executes: it runs.
    runner, live = TurnRunner(), LiveRun()
    live.cancel_jobs(("lint", "report"), REASON)

    async def retry() -> None:
        while "deploy" not in runner.began:
            await asyncio.sleep(0)
        assert live.retry("lint")

    async with asyncio.timeout(10):
        final, _ = await asyncio.gather(_execute(_plan(), tmp_path, live, runner), retry())
    jobs = {j.name: j for j in final.jobs}
    assert (jobs["lint"].status, jobs["lint"].reason) == (Status.SUCCESS, None)
    assert runner.began.count("lint") == 1
    # The jobs after it that never ran are decided again (engine.resume), as after any retry.
    assert (jobs["report"].status, jobs["notify"].status) == (Status.SUCCESS, Status.SUCCESS)
    assert final.status is Status.SUCCESS
