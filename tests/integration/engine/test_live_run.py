"""`engine.live.LiveRun`: the hand-over between playing a manual job live and resuming
the ended run. A scripted runner (no processes) and a memory store; a play is made after
each number of event-loop turns, from before the execution starts to after it ended, so one
play lands in every gap, including the one where the last job has ended but the run is not
recorded yet. Whatever the moment, the play is refused (job not manual yet), runs live
exactly once, or answers False with the job still `manual` in the final record, ready to be
resumed: never lost, never run twice. And the other early hand-over: a cancel set before the
execution starts (the server's worker was still checking out) runs no job at all."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

from conveyor.engine.live import LiveRun
from conveyor.engine.resume import check_playable, plan_resume
from conveyor.engine.runner import LineSink, StepResult, StepSpec
from conveyor.engine.scheduler import RunControls, execute_run
from conveyor.errors import ConflictError
from conveyor.model import Plan, RunRecord, Status, Stream, When
from tests.fakes.memory_store import MemoryRunStore
from tests.integration.engine.helpers import job, make_plan, planned, run_setup

SLOW_TURNS = 30
TURNS = 150  # more loop turns than the whole run takes


class Landed(Enum):
    REFUSED = "refused"  # deploy was not waiting to be played yet: ConflictError
    BEFORE_START = "before start"  # False, not started: the caller records it in the store
    LIVE = "live"  # True: it runs in this execution
    HANDED_OVER = "handed over"  # False once started: the caller resumes the ended run


class CountingRunner:
    """Every step succeeds, `slow` after SLOW_TURNS loop turns (so plays land live while it
    runs), the others at once; counts the steps of each job."""

    def __init__(self) -> None:
        self.runs: dict[str, int] = {}

    async def run_step(self, spec: StepSpec, on_lines: LineSink) -> StepResult:
        self.runs[spec.job] = self.runs.get(spec.job, 0) + 1
        on_lines(Stream.STDOUT, [spec.script])
        for _ in range(SLOW_TURNS if spec.job == "slow" else 1):
            await asyncio.sleep(0)
        return StepResult(0)


def _plan() -> Plan:
    return make_plan(
        planned(job("build", "echo build")),
        planned(job("slow", "echo slow")),
        planned(job("deploy", "echo deploy"), ("build",), when=When.MANUAL),
        planned(job("smoke", "echo smoke"), ("deploy",)),
    )


async def _execute(
    tmp_path: Path, live: LiveRun, runner: CountingRunner, cancel: asyncio.Event | None = None
) -> RunRecord:
    plan, store = _plan(), MemoryRunStore()
    run = store.create_run(
        RunRecord("r1", "t", "main", "", plan.event.kind, Status.PENDING, datetime.now(UTC))
    )
    (tmp_path / "ws").mkdir(parents=True, exist_ok=True)
    return await execute_run(
        plan,
        run,
        run_setup(store, tmp_path / "ws", runner=runner),
        controls=RunControls(
            cancel=cancel,
            live=live,
        ),
    )


async def _play_after(turns: int, tmp_path: Path) -> tuple[Landed, RunRecord, CountingRunner]:
    runner, live = CountingRunner(), LiveRun()
    landed: list[Landed] = []

    async def play() -> None:
        for _ in range(turns):
            await asyncio.sleep(0)
        try:
            is_live = live.play("deploy")
        except ConflictError:
            landed.append(Landed.REFUSED)
            return
        if is_live:
            landed.append(Landed.LIVE)
        else:
            landed.append(Landed.HANDED_OVER if live.is_started else Landed.BEFORE_START)

    final, _ = await asyncio.gather(_execute(tmp_path, live, runner), play())
    return landed[0], final, runner


def _statuses(run: RunRecord) -> dict[str, tuple[Status, int]]:
    return {j.name: (j.status, j.attempt) for j in run.jobs}


async def test_live_run_play_at_any_moment_is_live_or_handed_over_never_lost(
    tmp_path: Path,
) -> None:
    seen: set[Landed] = set()
    for turns in range(TURNS):
        landed, final, runner = await _play_after(turns, tmp_path / str(turns))
        seen.add(landed)
        if landed is Landed.LIVE:
            assert (_statuses(final), runner.runs) == (
                {
                    "build": (Status.SUCCESS, 1),
                    "slow": (Status.SUCCESS, 1),
                    "deploy": (Status.SUCCESS, 1),
                    "smoke": (Status.SUCCESS, 1),
                },
                {"build": 1, "slow": 1, "deploy": 1, "smoke": 1},
            ), turns
        else:
            # Not run here: the final record still offers deploy to be played, and a
            # resume of that record runs it and the job it held back.
            check_playable(final, "deploy", is_cancel_requested=False)
            resume = plan_resume(_plan(), final.jobs, {"deploy"})
            ran = {"build": 1, "slow": 1}
            assert (resume.rerun, runner.runs) == (("deploy", "smoke"), ran), turns
    assert {Landed.LIVE, Landed.HANDED_OVER} <= seen, seen


async def test_live_run_answers_false_and_is_ended_after_the_run(tmp_path: Path) -> None:
    landed, final, _ = await _play_after(TURNS, tmp_path)
    assert (landed, final.status, _statuses(final)["deploy"]) == (
        Landed.HANDED_OVER,
        Status.SUCCESS,
        (Status.MANUAL, 0),
    )


async def test_cancel_set_before_the_execution_starts_runs_no_job(tmp_path: Path) -> None:
    cancel, runner = asyncio.Event(), CountingRunner()
    cancel.set()
    final = await _execute(tmp_path, LiveRun(), runner, cancel)
    assert (final.status, runner.runs, {j.status for j in final.jobs}) == (
        Status.CANCELED,
        {},
        {Status.CANCELED},
    )
