"""Who hears of a server run's start and end (`RunListener`: commit statuses, Slack), and
telling them without ever holding up a queue worker: each call in its own task with a
deadline, a listener's failure logged, the calls still pending awaited (briefly) at stop.

Must not: execute runs or write records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import structlog

from conveyor.model import RunRecord

__all__ = ["LISTENER_DEADLINE_S", "Listeners", "RunListener"]

log = structlog.get_logger(__name__)

LISTENER_DEADLINE_S = 10.0


class RunListener(Protocol):
    """Told about each run's start and end; must return quickly (work in the background)."""

    async def run_started(self, run: RunRecord) -> None: ...

    async def run_finished(self, run: RunRecord) -> None: ...


class Listeners:
    """The queue's listeners and their calls in flight."""

    def __init__(self, listeners: Sequence[RunListener] = ()) -> None:
        self.listeners: list[RunListener] = list(listeners)
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, listener: RunListener) -> None:
        self.listeners.append(listener)

    def run_started(self, run: RunRecord) -> None:
        self._tell("run_started", run)

    def run_finished(self, run: RunRecord) -> None:
        self._tell("run_finished", run)

    async def wait(self) -> None:
        """Let the calls in flight finish, for at most one deadline."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=LISTENER_DEADLINE_S)

    def _tell(self, method: str, run: RunRecord) -> None:
        for listener in self.listeners:
            task = asyncio.create_task(self._call(listener, method, run))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _call(self, listener: RunListener, method: str, run: RunRecord) -> None:
        try:
            async with asyncio.timeout(LISTENER_DEADLINE_S):
                await getattr(listener, method)(run)
        except Exception:  # a listener's bug or hang must not reach the engine
            log.error("run.listener_failed", run_id=run.run_id, method=method, exc_info=True)
