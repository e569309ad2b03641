"""Notifications (the queue's RunListener): background, ordered per run, failures logged."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from structlog.testing import capture_logs

from conveyor.errors import UpstreamRateLimited
from conveyor.model import EventKind, RunRecord, Status
from conveyor.notify.base import Notifications

RUN = RunRecord(
    run_id="r1",
    repo="acme/app",
    ref="main",
    sha="b" * 40,
    event=EventKind.PUSH,
    status=Status.RUNNING,
    created_at=datetime(2026, 11, 23, tzinfo=UTC),
)


class Recording:
    """A notifier whose first call can be held back on an event."""

    target = "fake"

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.calls: list[str] = []
        self.gate = gate

    async def run_started(self, run: RunRecord) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.calls.append(f"started:{run.run_id}")

    async def run_finished(self, run: RunRecord) -> None:
        self.calls.append(f"finished:{run.run_id}")


class Failing:
    target = "flaky"

    async def run_started(self, run: RunRecord) -> None:
        raise UpstreamRateLimited("flaky: upstream 429 after 5 attempts", reset_at=None)

    async def run_finished(self, run: RunRecord) -> None:
        raise RuntimeError("bug")


class Hanging:
    target = "slow"

    async def run_started(self, run: RunRecord) -> None:
        await asyncio.Event().wait()

    async def run_finished(self, run: RunRecord) -> None:
        return


async def test_run_started_returns_before_the_notifier_finishes() -> None:
    gate = asyncio.Event()
    notifier = Recording(gate)
    notifications = Notifications([notifier])
    await notifications.run_started(RUN)
    assert (notifications.in_flight, notifier.calls) == (1, [])
    gate.set()
    await notifications.drain(5)
    assert notifier.calls == ["started:r1"]


async def test_finished_waits_for_started_of_the_same_run() -> None:
    gate = asyncio.Event()
    notifier = Recording(gate)
    notifications = Notifications([notifier])
    await notifications.run_started(RUN)
    await notifications.run_finished(RUN)
    await asyncio.sleep(0)
    gate.set()
    await notifications.drain(5)
    assert notifier.calls == ["started:r1", "finished:r1"]


async def test_upstream_failure_is_logged_with_run_id_and_kind() -> None:
    notifications = Notifications([Failing()])
    with capture_logs() as logs:
        await notifications.run_started(RUN)
        await notifications.drain(5)
    assert [(e["event"], e["run_id"], e["target"], e["kind"]) for e in logs] == [
        ("notify.failed", "r1", "flaky", "rate_limited")
    ]


async def test_notifier_bug_is_logged_as_error_and_contained() -> None:
    notifications = Notifications([Failing()])
    with capture_logs() as logs:
        await notifications.run_finished(RUN)
        await notifications.drain(5)
    assert [(e["event"], e["log_level"]) for e in logs] == [("notify.crashed", "error")]


async def test_deadline_stops_a_hanging_notifier() -> None:
    notifications = Notifications([Hanging()], deadline_s=0.01)
    with capture_logs() as logs:
        await notifications.run_started(RUN)
        await notifications.drain(5)
    assert [(e["event"], e["kind"]) for e in logs] == [("notify.failed", "deadline")]


async def test_aclose_cancels_what_is_left() -> None:
    notifications = Notifications([Hanging()])
    await notifications.run_started(RUN)
    with capture_logs() as logs:
        await notifications.aclose(timeout_s=0.01)
    assert notifications.in_flight == 0
    assert [(e["event"], e["run_id"], e["kind"]) for e in logs] == [
        ("notify.failed", "r1", "shutdown")
    ]
