"""The engine's own runner on a real SQLite store: records and process groups written in
batches (engine/journal.py) are right while a step runs and after the run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from conveyor.engine.scheduler import execute_run
from conveyor.model import RunRecord, Status
from conveyor.store import open_store
from tests.integration.engine.helpers import job, make_plan, planned, run_setup


async def test_store_shows_live_groups_and_final_records(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    release = tmp_path / "release"
    plan = make_plan(
        planned(job("two-steps", "true", "echo second")),
        planned(job("slow", f"touch {marker} && while [ ! -e {release} ]; do sleep 0.01; done")),
        planned(job("fails", "exit 3", allow_failure=True)),
    )
    store = open_store(tmp_path / "home")
    try:
        run = store.create_run(
            RunRecord(
                run_id="r1",
                repo="t",
                ref="main",
                sha="",
                event=plan.event.kind,
                status=Status.PENDING,
                created_at=datetime.now(UTC),
            )
        )
        (tmp_path / "ws").mkdir()
        execution = asyncio.create_task(
            execute_run(
                plan,
                run,
                run_setup(store, tmp_path / "ws", concurrency=3, grace_s=0.3),
            )
        )
        for _ in range(500):  # at most 5 s
            if marker.exists() or execution.done():
                break
            await asyncio.sleep(0.01)
        assert marker.exists(), execution
        # The step's process exists; its group and running record reach the store right
        # after the runner learns of it (one batch), not necessarily before `touch` runs.
        seen: tuple[Status | None, list[str]] = (None, [])
        for _ in range(500):  # at most 5 s
            live = store.get_run("r1")
            assert live is not None
            seen = (
                {j.name: j.status for j in live.jobs}["slow"],
                [p.job for p in store.processes("r1")],
            )
            if seen[0] is Status.RUNNING and "slow" in seen[1]:
                break
            await asyncio.sleep(0.01)
        assert seen[0] is Status.RUNNING, seen
        assert "slow" in seen[1], seen
        release.touch()
        record = await execution
        stored = store.get_run("r1")
        assert stored is not None
        assert {j.name: str(j.status) for j in stored.jobs} == {
            "two-steps": "success",
            "slow": "success",
            "fails": "failed",
        }
        assert [s.status for s in stored.jobs[0].steps] == [Status.SUCCESS, Status.SUCCESS]
        attempts = [[j.attempt for j in store.job_attempts("r1", n)] for n in ("two-steps", "slow")]
        assert attempts == [[0, 1], [0, 1]]  # the pending record, then one row per attempt
        assert (record.status, store.processes("r1")) == (Status.SUCCESS, [])
    finally:
        store.close()
