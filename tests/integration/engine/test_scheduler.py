"""execute_run with real processes: order, skips, retries, allowed failures, manual jobs,
fail_fast, cancellation, timeouts, masking, resource groups, after_steps, artifacts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from conveyor.masking import MASK
from conveyor.model import Artifacts, Need, Retry, Status, Step, Stream, When
from tests.integration.engine.helpers import job, make_plan, planned, run_plan, statuses


async def test_scheduler_runs_dag_in_order(tmp_path: Path) -> None:
    plan = make_plan(
        planned(job("a", "echo a >> order")),
        planned(job("b", "echo b >> order"), ("a",)),
        planned(job("c", "echo c >> order"), ("b",)),
    )
    record, store, _logs = await run_plan(plan, tmp_path, concurrency=3)
    assert record.status == Status.SUCCESS
    assert (tmp_path / "ws" / "order").read_text() == "a\nb\nc\n"
    assert store.get_run("r1").status == Status.SUCCESS  # type: ignore[union-attr]


async def test_scheduler_writes_numbered_lines(tmp_path: Path) -> None:
    plan = make_plan(planned(job("a", "echo one; echo two >&2")))
    _, _, logs = await run_plan(plan, tmp_path)
    got = sorted((r.n, r.text, str(r.stream), r.step) for r in logs.records)
    assert got == [
        (1, "one", "stdout", "echo one; echo two >&2"),
        (2, "two", "stderr", "echo one; echo two >&2"),
    ]


async def test_scheduler_skips_dependants_of_failure_transitively(tmp_path: Path) -> None:
    plan = make_plan(
        planned(job("a", "exit 4")),
        planned(job("b", "true"), ("a",)),
        planned(job("c", "true"), ("b",)),
        planned(job("cleanup", "true"), ("c",), when=When.ON_FAILURE),
        planned(job("report", "true"), ("a",), when=When.ALWAYS),
    )
    record, _, logs = await run_plan(plan, tmp_path)
    expected = {
        "a": "failed",
        "b": "skipped",
        "c": "skipped",
        "cleanup": "success",
        "report": "success",
    }
    assert (Status.FAILED, expected) == (record.status, statuses(record))
    assert record.jobs[1].reason == "needed job a failed"
    assert record.jobs[0].exit_code == 4
    assert any("not run: needed job a failed" in t for t in logs.texts("b"))


async def test_scheduler_allowed_failure_passes(tmp_path: Path) -> None:
    plan = make_plan(
        planned(job("lint", "exit 1", allow_failure=True)),
        planned(job("next", "true"), ("lint",)),
    )
    record, _, _ = await run_plan(plan, tmp_path)
    assert (
        record.status,
        statuses(record),
    ) == (Status.SUCCESS, {"lint": "failed", "next": "success"})
    assert record.jobs[0].allow_failure


async def test_scheduler_allow_failure_exit_codes(tmp_path: Path) -> None:
    plan = make_plan(
        planned(job("a", "exit 3", allow_failure_exit_codes=frozenset({3}))),
        planned(job("b", "exit 4", allow_failure_exit_codes=frozenset({3}))),
    )
    record, _, _ = await run_plan(plan, tmp_path)
    assert (
        record.status,
        record.jobs[0].allow_failure,
        record.jobs[1].allow_failure,
    ) == (Status.FAILED, True, False)


async def test_scheduler_retries_and_records_every_attempt(tmp_path: Path) -> None:
    flaky = 'n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; [ "$n" -ge 1 ]'
    plan = make_plan(planned(job("flaky", flaky, retry=Retry(max=2))))
    record, store, logs = await run_plan(plan, tmp_path)
    attempts = store.job_attempts("r1", "flaky")
    assert (record.status, record.jobs[0].attempt) == (Status.SUCCESS, 2)
    assert [(a.attempt, str(a.status)) for a in attempts] == [
        (0, "pending"),
        (1, "failed"),
        (2, "success"),
    ]
    assert any(t.startswith("retrying") for t in logs.texts("flaky"))


async def test_scheduler_stores_a_retry_in_its_delay_as_the_attempt_it_waits_to_run(
    tmp_path: Path,
) -> None:
    # The owed attempt is in the store (a restarted server resumes it: engine.resume), and
    # a cancel during the delay ends that attempt, the failed one kept in the history.
    from tests.fakes.memory_store import MemoryRunStore

    store, cancel = MemoryRunStore(), asyncio.Event()
    plan = make_plan(planned(job("flaky", "exit 3", retry=Retry(max=1, delay_s=30))))
    seen: list[tuple[str, int]] = []

    async def cancel_once_waiting() -> None:
        while True:
            run = store.get_run("r1")
            latest = run.jobs[0] if run is not None and run.jobs else None
            if latest is not None and latest.attempt == 2:
                seen.append((str(latest.status), latest.attempt))
                cancel.set()
                return
            await asyncio.sleep(0.02)

    async with asyncio.timeout(10):
        watcher = asyncio.create_task(cancel_once_waiting())
        record, _, logs = await run_plan(plan, tmp_path, store=store, cancel=cancel)
        await watcher
    attempts = store.job_attempts("r1", "flaky")
    assert seen == [("pending", 2)]
    assert (record.status, record.jobs[0].attempt, record.jobs[0].reason) == (
        Status.CANCELED,
        2,
        "run canceled",
    )
    assert [(a.attempt, str(a.status)) for a in attempts] == [
        (0, "pending"),
        (1, "failed"),
        (2, "canceled"),
    ]
    assert "retrying in 30s: step 'exit 3' exited with code 3" in logs.texts("flaky")


async def test_scheduler_retry_exhausted_fails(tmp_path: Path) -> None:
    plan = make_plan(planned(job("bad", "exit 2", retry=Retry(max=1))))
    record, store, _ = await run_plan(plan, tmp_path)
    assert (
        record.status,
        record.jobs[0].attempt,
        len(store.job_attempts("r1", "bad")) - 1,
    ) == (Status.FAILED, 2, 2)


async def test_scheduler_manual_job_waits_unless_played(tmp_path: Path) -> None:
    jobs = (
        planned(job("deploy", "touch deployed"), when=When.MANUAL),
        planned(job("notify", "true"), ("deploy",)),
    )
    record, _, _ = await run_plan(make_plan(*jobs), tmp_path)
    assert (
        record.status,
        statuses(record),
    ) == (Status.SUCCESS, {"deploy": "manual", "notify": "skipped"})
    assert record.jobs[1].reason == "waiting for manual job deploy"
    played, _, _ = await run_plan(make_plan(*jobs), tmp_path / "p", play=frozenset({"deploy"}))
    assert statuses(played) == {"deploy": "success", "notify": "success"}


async def test_scheduler_non_blocking_manual_holds_back_only_explicit_needs(
    tmp_path: Path,
) -> None:
    plan = make_plan(
        planned(job("approve", "true"), when=When.MANUAL, allow_failure=True),
        planned(job("deploy", "true", stage="deploy"), ("approve",)),
        planned(job("release", "true", needs=(Need("approve"),)), ("approve",)),
    )
    record, _, _ = await run_plan(plan, tmp_path)
    assert (record.status, statuses(record)) == (
        Status.SUCCESS,
        {"approve": "manual", "deploy": "success", "release": "skipped"},
    )
    assert record.jobs[2].reason == "waiting for manual job approve"


async def test_scheduler_fail_fast_cancels_running_jobs(tmp_path: Path) -> None:
    plan = make_plan(
        planned(job("slow", "sleep 30")),
        planned(job("bad", "sleep 0.3; exit 1")),
        planned(job("later", "true"), ("slow",)),
        fail_fast=True,
    )
    started = time.monotonic()
    record, _, _ = await run_plan(plan, tmp_path)
    assert (
        record.status,
        statuses(record),
    ) == (Status.FAILED, {"slow": "canceled", "bad": "failed", "later": "canceled"})
    assert time.monotonic() - started < 10


async def test_scheduler_cancel_event_cancels_run(tmp_path: Path) -> None:
    cancel = asyncio.Event()
    plan = make_plan(planned(job("slow", "sleep 30")), planned(job("next", "true"), ("slow",)))
    asyncio.get_running_loop().call_later(0.5, cancel.set)
    record, store, _ = await run_plan(plan, tmp_path, cancel=cancel)
    assert (
        record.status,
        statuses(record),
    ) == (Status.CANCELED, {"slow": "canceled", "next": "canceled"})
    assert (store.get_run("r1").status, store.processes("r1")) == (Status.CANCELED, [])  # type: ignore[union-attr]


async def test_scheduler_polls_store_for_cancel(tmp_path: Path) -> None:
    from tests.fakes.memory_store import MemoryRunStore

    store = MemoryRunStore()
    plan = make_plan(planned(job("slow", "sleep 30")))
    asyncio.get_running_loop().call_later(0.3, store.request_cancel, "r1")
    record, _, _ = await run_plan(plan, tmp_path, store=store)
    assert record.status == Status.CANCELED


async def test_scheduler_job_timeout_fails_job(tmp_path: Path) -> None:
    plan = make_plan(planned(job("hang", "sleep 30", timeout_s=0.5)))
    record, _, logs = await run_plan(plan, tmp_path)
    assert (
        record.status,
        record.jobs[0].reason,
        record.jobs[0].exit_code,
    ) == (Status.FAILED, "job timed out after 0.5s", None)
    assert any(
        r.stream is Stream.SYSTEM and r.text == "job timed out after 0.5s" for r in logs.records
    )


async def test_scheduler_step_timeout(tmp_path: Path) -> None:
    j = job("a", "true")
    j = type(j)(
        name="a", stage="test", mark=j.mark, steps=(Step("slow", "sleep 30", timeout_s=0.3),)
    )
    record, _, _ = await run_plan(make_plan(planned(j)), tmp_path)
    assert record.jobs[0].reason == "step 'slow' timed out after 0.3s"


async def test_scheduler_masks_secrets(tmp_path: Path) -> None:
    plan = make_plan(planned(job("a", 'echo "token=$TOKEN"; exit 1', secrets=("TOKEN",))))
    record, _, logs = await run_plan(plan, tmp_path, secrets={"TOKEN": "s3cr3t-value"})
    assert [f"token={MASK}"] == [t for t in logs.texts("a") if t.startswith("token")]
    assert "s3cr3t-value" not in repr(record)


async def test_scheduler_concurrency_limit(tmp_path: Path) -> None:
    script = "echo start >> log; sleep 0.3; echo end >> log"
    plan = make_plan(*(planned(job(f"j{i}", script)) for i in range(3)))
    await run_plan(plan, tmp_path, concurrency=1)
    lines = (tmp_path / "ws" / "log").read_text().split()
    assert lines == ["start", "end"] * 3


async def test_scheduler_resource_group_serialises(tmp_path: Path) -> None:
    script = "echo start >> log; sleep 0.3; echo end >> log"
    plan = make_plan(*(planned(job(f"j{i}", script, resource_group="prod")) for i in range(2)))
    await run_plan(plan, tmp_path, concurrency=4)
    assert (tmp_path / "ws" / "log").read_text().split() == ["start", "end"] * 2


async def test_scheduler_after_steps_run_after_failure(tmp_path: Path) -> None:
    plan = make_plan(
        planned(
            job("a", "exit 1", after_steps=(Step("after", "echo after-$CI_JOB_STATUS; exit 5"),))
        )
    )
    record, _, logs = await run_plan(plan, tmp_path)
    assert (
        record.jobs[0].status,
        record.jobs[0].reason,
    ) == (Status.FAILED, "step 'exit 1' exited with code 1")
    assert "after-failed" in logs.texts("a")


async def test_scheduler_delayed_job_waits(tmp_path: Path) -> None:
    plan = make_plan(planned(job("later", "true"), when=When.DELAYED, start_in_s=0.3))
    started = time.monotonic()
    record, _, _ = await run_plan(plan, tmp_path)
    assert record.status == Status.SUCCESS
    assert time.monotonic() - started >= 0.3


async def test_scheduler_isolated_jobs_get_artifacts(tmp_path: Path) -> None:
    plan = make_plan(
        planned(
            job(
                "build",
                "mkdir -p dist; echo bin > dist/app; echo tmp > scratch",
                artifacts=Artifacts(paths=("dist",)),
            )
        ),
        planned(
            job("test", "cat dist/app; test ! -e scratch"), ("build",), artifacts_from=("build",)
        ),
        isolate_jobs=True,
    )
    record, _, logs = await run_plan(plan, tmp_path)
    assert (
        record.status,
        [t for t in logs.texts("test") if t == "bin"],
    ) == (Status.SUCCESS, ["bin"])
    assert not (tmp_path / "ws" / "dist").exists()
    assert (tmp_path / "run" / "artifacts" / "build" / "dist" / "app").is_file()


async def test_scheduler_missing_workdir_fails_job(tmp_path: Path) -> None:
    record, _, _ = await run_plan(make_plan(planned(job("a", "true", workdir="nope"))), tmp_path)
    assert "does not exist" in (record.jobs[0].reason or "")
