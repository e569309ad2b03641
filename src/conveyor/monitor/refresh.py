"""Refreshes of single targets on demand (upstream webhooks), de-duplicated and rate-limited
per target.

`Refresher.request(target)` starts a fetch at once when none runs for that target; while one
runs, further requests queue exactly one follow-up fetch (the event may describe a change
the running fetch already missed), and every later request joins that follow-up. Two fetch
starts of one target are at least `min_gap_s` apart. A burst of N events for one target
therefore costs one or two fetches, never N. What a fetch does (and its per-target guard)
belongs to the caller (`Syncer.refresh`); this module only schedules.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from enum import StrEnum

from conveyor.settings.monitor import Target

__all__ = ["Refresh", "Refresher"]


class Refresh(StrEnum):
    """What a request did: a fetch `started`, one `queued` behind the running fetch, or
    `coalesced` into the one already queued."""

    STARTED = "started"
    QUEUED = "queued"
    COALESCED = "coalesced"


class Refresher:
    def __init__(self, fetch: Callable[[Target], Awaitable[None]], *, min_gap_s: float) -> None:
        self._fetch = fetch
        self.min_gap_s = min_gap_s
        self._running: dict[str, asyncio.Task[None]] = {}
        self._queued: set[str] = set()
        self._started_at: dict[str, float] = {}  # loop time of the last fetch start

    def request(self, target: Target) -> Refresh:
        key = target.key
        if key not in self._running:
            self._running[key] = asyncio.create_task(
                self._run(target), name=f"conveyor-refresh-{key}"
            )
            return Refresh.STARTED
        if key in self._queued:
            return Refresh.COALESCED
        self._queued.add(key)
        return Refresh.QUEUED

    async def _run(self, target: Target) -> None:
        key = target.key
        loop = asyncio.get_running_loop()
        try:
            while True:
                wait_s = self._started_at.get(key, -math.inf) + self.min_gap_s - loop.time()
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
                self._queued.discard(key)
                self._started_at[key] = loop.time()
                await self._fetch(target)
                if key not in self._queued:
                    return
        finally:
            del self._running[key]

    async def aclose(self) -> None:
        """Cancel every refresh in flight and wait for them to end."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._queued.clear()
