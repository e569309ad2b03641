"""The schedule loop with a clock that jumps (tests/fakes/clock.py): a schedule fires within
1 s of its tick, ticks missed while the server was down give exactly one run, and a run by
hand leaves the ticks alone. No test sleeps until a tick: the clock is moved."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from conveyor.errors import GitError
from conveyor.runs.schedules import ScheduleLoop, next_run_at
from conveyor.settings.schedules import ScheduleSettings
from tests.fakes.clock import FakeClock
from tests.fakes.schedule_state import MemoryScheduleState

NIGHTLY = ScheduleSettings(
    id="nightly", repo="acme/app", ref="main", cron="0 3 * * *", timezone="Europe/Paris"
)
# 2026-01-02 01:59:59 UTC is 02:59:59 in Paris (winter, UTC+1): one second before the tick.
BEFORE_TICK = datetime(2026, 1, 2, 1, 59, 59, tzinfo=UTC)


class Fired:
    """The `fire` of the loop: records each schedule fired and wakes the test."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.fired: list[tuple[str, datetime]] = []
        self.event = asyncio.Event()

    async def __call__(self, schedule: ScheduleSettings) -> str:
        self.fired.append((schedule.id, self.clock.now()))
        self.event.set()
        return f"run-{len(self.fired)}"

    async def wait(self, timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                await self.event.wait()
        except TimeoutError:
            return False
        self.event.clear()
        return True


def test_next_run_at_reads_the_cron_in_the_schedules_time_zone() -> None:
    assert next_run_at(NIGHTLY, BEFORE_TICK) == datetime(2026, 1, 2, 2, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert next_run_at(NIGHTLY, summer) == datetime(2026, 7, 2, 1, 0, tzinfo=UTC)


async def test_schedule_fires_within_one_second_of_its_tick() -> None:
    clock = FakeClock(BEFORE_TICK)
    fired = Fired(clock)
    loop = ScheduleLoop([NIGHTLY], fired, MemoryScheduleState(), clock, poll_s=0.05)
    await loop.start()
    try:
        assert not await fired.wait(0.2)  # a second before the tick: nothing
        clock.advance(1)
        started = asyncio.get_running_loop().time()
        assert await fired.wait(1.0)
        assert asyncio.get_running_loop().time() - started < 1.0
    finally:
        await loop.stop()
    assert fired.fired == [("nightly", datetime(2026, 1, 2, 2, 0, tzinfo=UTC))]


async def test_schedule_fires_once_per_tick() -> None:
    clock = FakeClock(BEFORE_TICK)
    fired = Fired(clock)
    loop = ScheduleLoop([NIGHTLY], fired, MemoryScheduleState(), clock, poll_s=0.02)
    await loop.start()
    try:
        clock.advance(1)
        assert await fired.wait(1.0)
        clock.advance(3600)  # an hour later: the next tick is tomorrow
        assert not await fired.wait(0.2)
        clock.advance(23 * 3600)
        assert await fired.wait(1.0)
    finally:
        await loop.stop()
    assert [at.day for _, at in fired.fired] == [2, 3]


async def test_server_down_across_ticks_gives_exactly_one_catch_up_run() -> None:
    # Last fired on the 2nd; the server comes back on the 6th: four ticks were missed.
    state = MemoryScheduleState({"nightly": datetime(2026, 1, 2, 2, 0, tzinfo=UTC)})
    clock = FakeClock(datetime(2026, 1, 6, 12, 0, tzinfo=UTC))
    fired = Fired(clock)
    loop = ScheduleLoop([NIGHTLY], fired, state, clock, poll_s=0.02)
    await loop.start()
    try:
        assert await fired.wait(1.0)
        assert not await fired.wait(0.2)
    finally:
        await loop.stop()
    assert fired.fired == [("nightly", datetime(2026, 1, 6, 12, 0, tzinfo=UTC))]
    assert state.kept["nightly"] == datetime(2026, 1, 6, 12, 0, tzinfo=UTC)
    assert loop.next_runs() == {"nightly": datetime(2026, 1, 7, 2, 0, tzinfo=UTC)}


async def test_new_schedule_counts_from_now_and_is_remembered() -> None:
    state = MemoryScheduleState()
    clock = FakeClock(datetime(2026, 1, 6, 12, 0, tzinfo=UTC))
    fired = Fired(clock)
    loop = ScheduleLoop([NIGHTLY], fired, state, clock, poll_s=0.02)
    await loop.start()
    try:
        assert not await fired.wait(0.2)
    finally:
        await loop.stop()
    assert fired.fired == []
    assert state.kept == {"nightly": datetime(2026, 1, 6, 12, 0, tzinfo=UTC)}


async def test_run_by_hand_fires_now_and_keeps_the_ticks() -> None:
    clock = FakeClock(BEFORE_TICK)
    fired = Fired(clock)
    loop = ScheduleLoop([NIGHTLY], fired, MemoryScheduleState(), clock, poll_s=0.02)
    await loop.start()
    try:
        before = loop.next_runs()
        assert await loop.run_now("nightly") == "run-1"
        assert loop.next_runs() == before
    finally:
        await loop.stop()


async def test_a_failing_fire_is_logged_and_the_loop_goes_on() -> None:
    clock = FakeClock(BEFORE_TICK)
    calls: list[datetime] = []
    fired_again = asyncio.Event()

    async def fire(schedule: ScheduleSettings) -> str:
        calls.append(clock.now())
        if len(calls) == 1:
            raise GitError("git fetch: ref 'main' not found")
        fired_again.set()
        return "run-2"

    loop = ScheduleLoop([NIGHTLY], fire, MemoryScheduleState(), clock, poll_s=0.02)
    await loop.start()
    try:
        clock.advance(1)
        await asyncio.sleep(0.1)
        clock.advance(24 * 3600)
        async with asyncio.timeout(1.0):
            await fired_again.wait()
    finally:
        await loop.stop()
    assert len(calls) == 2
    assert loop.is_running is False


async def test_no_schedules_starts_no_task() -> None:
    clock = FakeClock(BEFORE_TICK)
    loop = ScheduleLoop([], Fired(clock), MemoryScheduleState(), clock)
    await loop.start()
    assert (loop.is_running, loop.next_runs()) == (False, {})
    await loop.stop()
