"""Scheduled runs: when each `[[schedules]]` entry is due, and the loop that fires it.

    next_run_at(schedule, after)    # the first tick after `after` (croniter, in its time zone)
    loop = ScheduleLoop(schedules, fire, state, clock)
    await loop.start()              # a tick missed while the server was down fires once now
    await loop.run_now("nightly")   # by hand (the API); the schedule's own ticks are unchanged
    await loop.stop()

The loop keeps, per schedule, the time it last fired in a `ScheduleState` (a JSON file under
conveyor's home: `FileScheduleState`). A schedule is due when its first tick after that time
has passed; it then fires once and the time is set to now, so any number of ticks missed
while the server was down give exactly one run. A schedule seen for the first time starts
counting from now (no run for ticks before it was configured). The clock is injected (tests
jump a fake one); the loop wakes at the next tick, or every `poll_s` at most, so a schedule
fires within `poll_s` of its tick even when the clock jumps. Firing is `fire(schedule)` (the
queue's trigger, event `schedule`); a failure (unknown ref, unreachable remote) is logged and
the schedule waits for its next tick. Must not: parse cron by hand, or run git itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

import orjson
import structlog
from croniter import croniter

from conveyor.clock import Clock
from conveyor.errors import ConveyorError
from conveyor.model import EventKind
from conveyor.settings.schedules import ScheduleSettings

if TYPE_CHECKING:
    from conveyor.runs.queue import RunQueue

__all__ = [
    "FileScheduleState",
    "Fire",
    "ScheduleLoop",
    "ScheduleState",
    "fire_on",
    "next_run_at",
]

log = structlog.get_logger(__name__)

Fire = Callable[[ScheduleSettings], Awaitable[str]]  # the id of the run it queued
_FIRE_DEADLINE_S = 600.0  # a fetch of the ref has its own git timeout; this bounds the rest


def next_run_at(schedule: ScheduleSettings, after: datetime) -> datetime:
    """The schedule's first tick strictly after `after` (aware), in UTC. The cron expression
    is read in the schedule's time zone (so "0 3 * * *" in Europe/Paris is 03:00 Paris time,
    summer and winter)."""
    local = after.astimezone(ZoneInfo(schedule.timezone))
    tick: datetime = croniter(schedule.cron, local).get_next(datetime)
    return tick.astimezone(UTC)


def fire_on(queue: RunQueue) -> Fire:
    """Fire a schedule through the server's queue: a `schedule` run of its ref (resolved
    by fetching the mirror) with its variables."""

    async def fire(schedule: ScheduleSettings) -> str:
        run = await queue.trigger(
            schedule.repo, schedule.ref, variables=schedule.variables, kind=EventKind.SCHEDULE
        )
        return run.run_id

    return fire


class ScheduleState(Protocol):
    """When each schedule last fired, kept across restarts."""

    def load(self) -> dict[str, datetime]:
        """Schedule id -> when it last fired (aware UTC); empty when nothing was kept."""
        ...

    def save(self, schedule_id: str, fired_at: datetime) -> None:
        """Keep `fired_at` as the time `schedule_id` last fired."""
        ...


class FileScheduleState:
    """`ScheduleState` in one JSON file (`<home>/schedules.json`), replaced whole on each
    save so a crash leaves the old or the new content, never half of it. An unreadable file
    is logged and read as empty (the schedules then count from now)."""

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, datetime]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("schedule.state_unreadable", path=str(self.path), error=str(exc))
            return {}
        if not isinstance(data, dict):
            return {}
        found: dict[str, datetime] = {}
        for key, value in data.items():
            with contextlib.suppress(TypeError, ValueError):
                at = datetime.fromisoformat(value)
                if at.tzinfo is not None:
                    found[str(key)] = at.astimezone(UTC)
        return found

    def save(self, schedule_id: str, fired_at: datetime) -> None:
        data = {k: v.isoformat() for k, v in self.load().items()}
        data[schedule_id] = fired_at.astimezone(UTC).isoformat()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_bytes(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
        partial.replace(self.path)


class ScheduleLoop:
    """Fires the schedules on their ticks (module docstring)."""

    def __init__(
        self,
        schedules: Sequence[ScheduleSettings],
        fire: Fire,
        state: ScheduleState,
        clock: Clock,
        *,
        poll_s: float = 0.5,
    ) -> None:
        self.schedules = tuple(schedules)
        self._fire = fire
        self._state = state
        self._clock = clock
        self._poll_s = poll_s
        self._last: dict[str, datetime] = {}
        self._task: asyncio.Task[None] | None = None
        self._firing: set[asyncio.Task[None]] = set()

    @property
    def is_running(self) -> bool:
        return self._task is not None and not self._task.done()

    def last_fired(self) -> Mapping[str, datetime]:
        return dict(self._last)

    def next_runs(self) -> dict[str, datetime]:
        """Schedule id -> when it fires next (a schedule already due: its missed tick)."""
        now = self._clock.now()
        return {s.id: next_run_at(s, self._last.get(s.id, now)) for s in self.schedules}

    async def start(self) -> None:
        if not self.schedules:
            return
        kept = await asyncio.to_thread(self._state.load)
        now = self._clock.now()
        self._last = {s.id: kept.get(s.id, now) for s in self.schedules}
        for schedule in self.schedules:
            if schedule.id not in kept:  # new: count from now, and remember it
                await asyncio.to_thread(self._state.save, schedule.id, now)
        self._task = asyncio.create_task(self._loop(), name="schedules")
        log.info("schedules.started", count=len(self.schedules))

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._firing) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def run_now(self, schedule_id: str) -> str:
        """Fire `schedule_id` now, by hand; the id of the queued run. Its ticks are
        unchanged (as GitLab's "run pipeline schedule")."""
        schedule = next((s for s in self.schedules if s.id == schedule_id), None)
        if schedule is None:
            raise KeyError(schedule_id)
        run_id = await self._fire(schedule)
        log.info("schedule.run_by_hand", schedule=schedule_id, run_id=run_id)
        return run_id

    async def _loop(self) -> None:
        while True:
            now = self._clock.now()
            for schedule in self.schedules:
                if next_run_at(schedule, self._last[schedule.id]) <= now:
                    await self._mark_fired(schedule, now)
                    task = asyncio.create_task(self._fire_logged(schedule))
                    self._firing.add(task)
                    task.add_done_callback(self._firing.discard)
            await asyncio.sleep(self._pause_s(now))

    async def _mark_fired(self, schedule: ScheduleSettings, now: datetime) -> None:
        # Kept before the run is queued: a crash in between loses one run, never doubles it.
        self._last[schedule.id] = now
        try:
            await asyncio.to_thread(self._state.save, schedule.id, now)
        except OSError as exc:
            log.warning("schedule.state_not_saved", schedule=schedule.id, error=str(exc))

    def _pause_s(self, now: datetime) -> float:
        due = min(next_run_at(s, self._last[s.id]) for s in self.schedules)
        return max(0.0, min(self._poll_s, (due - now).total_seconds()))

    async def _fire_logged(self, schedule: ScheduleSettings) -> None:
        try:
            async with asyncio.timeout(_FIRE_DEADLINE_S):
                run_id = await self._fire(schedule)
        except (ConveyorError, KeyError, TimeoutError) as exc:
            reason = str(exc) if not isinstance(exc, KeyError) else "its repo is not configured"
            log.warning("schedule.not_fired", schedule=schedule.id, reason=reason)
            return
        except Exception:  # the per-schedule guard: one broken fire must not stop the loop
            log.error("schedule.fire_crashed", schedule=schedule.id, exc_info=True)
            return
        log.info("schedule.fired", schedule=schedule.id, repo=schedule.repo, run_id=run_id)
